"""`agent-usage export parquet`: a dataset by UTC day that DuckDB reads back to the
report's totals, with a stable typed schema, appendable day by day."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_scale_rules import MALFORMED, good

from agent_usage import EventLog, report
from agent_usage._cli import main
from agent_usage._parquet import SCHEMA_FIELDS, export_parquet

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Five days of events (offsets, a session-less one, 1h writes), rotated, plus garbage."""
    path = tmp_path / "logs" / "events.jsonl"
    path.parent.mkdir()
    with EventLog(path, max_bytes=8_000, backup_count=None) as w:
        for i in range(60):
            e = good(f"2026-11-{1 + i % 5:02d}T{i % 24:02d}:10:00{'+05:00' if i % 3 else 'Z'}")
            e["session_id"] = None if i % 9 == 0 else f"s{i % 4}"
            e["input_tokens"] = 100 + i
            e["cache_creation_1h_input_tokens"] = i
            e["metadata"] = {"app": "x", "i": i}
            if i % 7 == 0:
                e["cost_usd"] = None  # unpriced
            w.append(e)
            w.append({"type": "tool_call", "timestamp": "2026-11-01T00:00:00Z"})
    with open(path, "a") as f:
        f.write("\n".join(MALFORMED.values()) + '\n{"type": "llm_usage", "torn\n')
    return path


def read_back(out: Path, sql: str) -> list[tuple[Any, ...]]:
    """Query the dataset with DuckDB as a warehouse would (Hive partitions)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    view = f"read_parquet('{out}/**/*.parquet', hive_partitioning = true)"
    rows: list[tuple[Any, ...]] = con.execute(sql.format(view=view)).fetchall()
    return rows


def test_duckdb_reads_back_the_report_totals(log: Path, tmp_path: Path) -> None:
    """Per day and per session, events and every count equal the report's; costs too."""
    out = tmp_path / "dataset"
    written = export_parquet(log, out)
    assert sum(written.values()) == 60
    by_day = {r["day"]: r for r in report(log, by="day")}
    assert written == {d: r["events"] for d, r in by_day.items()}
    got = read_back(
        out,
        "SELECT CAST(day AS VARCHAR), count(*), sum(input_tokens), sum(output_tokens),"
        " sum(cache_creation_1h_input_tokens), sum(cost_usd) FROM {view} GROUP BY 1 ORDER BY 1",
    )
    for day, events, inp, out_tokens, ch1h, cost in got:
        row = by_day[day]
        assert (events, inp, out_tokens, ch1h) == (
            row["events"],
            row["input_tokens"],
            row["output_tokens"],
            row["cache_creation_1h_input_tokens"],
        )
        assert cost == pytest.approx(row["cost_usd"])
    sessions = dict(read_back(out, "SELECT session_id, sum(input_tokens) FROM {view} GROUP BY 1"))
    assert sessions == {r["session_id"]: r["input_tokens"] for r in report(log)}


def test_schema_is_stable_and_typed(log: Path, tmp_path: Path) -> None:
    """One column per event field in a fixed order, typed; JSON objects stay JSON."""
    out = tmp_path / "dataset"
    export_parquet(log, out)
    columns = read_back(out, "DESCRIBE SELECT * FROM {view}")
    names = [c[0] for c in columns]
    assert names == [*SCHEMA_FIELDS, "day"]
    types = {c[0]: c[1] for c in columns}
    assert types["input_tokens"] == "BIGINT"
    assert types["cost_usd"] == "DOUBLE"
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    (meta,) = read_back(out, "SELECT metadata FROM {view} WHERE input_tokens = 101")
    assert json.loads(meta[0]) == {"app": "x", "i": 1}
    (row,) = read_back(out, "SELECT host, models FROM {view} WHERE input_tokens = 101")
    assert row[0] == "w1" and "claude-sonnet-4-5" in json.loads(row[1])


def test_offset_timestamps_land_in_their_utc_day(tmp_path: Path) -> None:
    """02:30+05:00 on the 20th is written under day=2026-11-19."""
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(good("2026-11-20T02:30:00+05:00")) + "\n")
    assert export_parquet(path, tmp_path / "out") == {"2026-11-19": 1}
    assert os.listdir(tmp_path / "out") == ["day=2026-11-19"]


def test_appendable_day_by_day_without_duplicates(log: Path, tmp_path: Path) -> None:
    """Days exported apart add up to the whole; exporting a day again replaces it."""
    out = tmp_path / "dataset"
    assert max(export_parquet(log, out, until="2026-11-02")) == "2026-11-02"
    export_parquet(log, out, since="2026-11-03")
    export_parquet(log, out, since="2026-11-02", until="2026-11-02")  # again: replaced
    ((events, tokens),) = read_back(out, "SELECT count(*), sum(input_tokens) FROM {view}")
    total = sum(r["events"] for r in report(log, by="day"))
    assert (events, tokens) == (total, sum(r["input_tokens"] for r in report(log)))
    export_parquet(log, out)  # the whole log again: still no duplicates
    assert read_back(out, "SELECT count(*) FROM {view}") == [(total,)]


def test_files_are_private(log: Path, tmp_path: Path) -> None:
    """The dataset carries session ids: its files are 0600 like the log."""
    out = tmp_path / "dataset"
    export_parquet(log, out)
    modes = {p.stat().st_mode & 0o777 for p in out.rglob("*.parquet")}
    assert modes == {0o600}


def test_cli_export_parquet(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`agent-usage export parquet PATH... -o DIR` prints a line per day; -o is required."""
    out = tmp_path / "dataset"
    assert main(["export", "parquet", str(log), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    days = [r["day"] for r in report(log, by="day")]
    assert [line.split(":")[0] for line in lines] == [f"day={d}" for d in days]
    assert main(["export", "parquet", str(log)]) == 2
    assert "-o DIR" in capsys.readouterr().err
