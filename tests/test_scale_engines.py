"""Reports at scale: the DuckDB engine agrees with the Python engine to the token on dirty
logs, several logs and globs are read as one (rotated sets included), memory is flat."""

from __future__ import annotations

import json
import random
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_scale_rules import MALFORMED, good

from agent_usage import EventLog, follow, read_events, report
from agent_usage._match import MAX_LINE
from agent_usage._report import GROUP_KEYS, Aggregate, EventSource

pytest.importorskip("duckdb")

MODELS = ("claude-sonnet-4-5", "gpt-5-mini", "acme-7b")


def event(rng: random.Random, i: int) -> dict[str, Any]:
    """A valid event with 1-3 models (some unpriced), an offset timestamp, a host."""
    names = rng.sample(MODELS, rng.randint(1, 3))
    shares = {}
    for name in names:
        inp, out = rng.randint(1, 50_000), rng.randint(0, 5_000)
        priced = name != "acme-7b"
        shares[name] = {
            "provider": "x",
            "input_tokens": inp,
            "output_tokens": out,
            "total_tokens": inp + out,
            "cache_read_input_tokens": inp // 3,
            "cache_creation_input_tokens": inp // 7,
            "cache_creation_1h_input_tokens": inp // 14,
            "reasoning_tokens": out // 2,
            "llm_calls": rng.randint(1, 4),
            "cost_usd": round(inp * 3e-6 + out * 15e-6, 8) if priced else None,
            "cache_savings_usd": round(-inp * 1e-7, 8) if priced else None,
        }
    offset = rng.choice(["+00:00", "+05:00", "Z", "-07:00", ""])
    e = good(f"2026-11-{1 + i % 5:02d}T{i % 24:02d}:30:00{offset}")
    e["session_id"] = f"s{i % 7}" if i % 11 else None
    e["host"] = f"w{i % 3}"
    e["model"] = names[0] if len(names) == 1 else "mixed"
    e["models"] = shares
    for f in ("input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens",
              "cache_creation_input_tokens", "cache_creation_1h_input_tokens",
              "reasoning_tokens", "llm_calls"):  # fmt: skip
        e[f] = sum(s[f] for s in shares.values())
    costs = [s["cost_usd"] for s in shares.values()]
    e["cost_usd"] = None if None in costs else sum(costs)
    e["cache_savings_usd"] = (
        None if None in costs else sum(s["cache_savings_usd"] for s in shares.values())
    )
    e["llm_calls_without_usage"] = i % 4
    if i % 13 == 0:
        del e["models"]  # an older writer: the label is the model
    if i % 17 == 0:
        e["reasoning_tokens"] = None  # not reported
    return e


@pytest.fixture
def dirty_logs(tmp_path: Path) -> tuple[list[str], dict[str, int]]:
    """Two workers' logs (one rotated), every malformed kind, torn lines, foreign events.

    Returns the paths to pass and the expected totals of the valid events written.
    """
    rng = random.Random(16)
    expected = {"events": 0, "input_tokens": 0, "output_tokens": 0}
    logs = []
    for worker in ("a", "b"):
        path = tmp_path / worker / "events.jsonl"
        path.parent.mkdir()
        with EventLog(path, max_bytes=20_000, backup_count=None) as log:
            for i in range(150):
                e = event(rng, i)
                log.append(e)
                expected["events"] += 1
                expected["input_tokens"] += e["input_tokens"]
                expected["output_tokens"] += e["output_tokens"]
                log.append({"type": "tool_call", "session_id": ["x"], "input_tokens": "many"})
        with open(path, "a") as f:
            for line in MALFORMED.values():
                f.write(line + "\n")
            f.write('{"type": "llm_usage", "input_tokens": 5\n[1, 2]\n\n"llm_usage"\n')
            f.write('{"type": "llm_usage", "timestamp": "2026-11-01T00:00:00Z", "torn')
        logs.append(path)
    assert len(list(logs[0].parent.iterdir())) > 3  # rotated
    return [str(logs[0]), str(tmp_path / "b" / "*.jsonl")], expected


@pytest.mark.parametrize("by", list(GROUP_KEYS))
def test_duckdb_agrees_with_python_on_dirty_logs(
    dirty_logs: tuple[list[str], dict[str, int]], by: str
) -> None:
    """Same rows, same totals, same malformed count; totals are what was written."""
    paths, expected = dirty_logs
    aggs = {e: Aggregate(by=by).feed(EventSource(paths, engine=e)) for e in ("python", "duckdb")}
    py, db = aggs["python"], aggs["duckdb"]
    total = py.total_row()
    assert {k: total[k] for k in expected} == expected
    assert py.malformed == db.malformed == 2 * len(MALFORMED)
    assert _exact(db.total_row()) == _exact(total)
    assert db.total_row()["cost_usd"] == pytest.approx(total["cost_usd"])
    key = py.key_name
    py_rows = {r[key]: r for r in py.rows()}
    db_rows = {r[key]: r for r in db.rows()}
    assert {k: _exact(r) for k, r in db_rows.items()} == {k: _exact(r) for k, r in py_rows.items()}
    for k, r in py_rows.items():
        for f in ("cost_usd", "cache_savings_usd"):
            assert db_rows[k][f] == pytest.approx(r[f]), (k, f)
    assert db.statuses == py.statuses


def _exact(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in row.items() if k not in ("cost_usd", "cache_savings_usd", "cache_hit_rate")
    }


def test_bounds_agree_across_engines(dirty_logs: tuple[list[str], dict[str, int]]) -> None:
    """--since/--until cut at the same instants in both engines."""
    paths, _ = dirty_logs
    kwargs: dict[str, Any] = {"since": "2026-11-02T03:00:00+02:00", "until": "2026-11-04"}
    rows = [report(paths, by="day", engine=e, **kwargs) for e in ("python", "duckdb")]
    assert [_exact(r) for r in rows[0]] == [_exact(r) for r in rows[1]]
    assert [r["day"] for r in rows[0]] == ["2026-11-02", "2026-11-03", "2026-11-04"]


def test_several_logs_read_as_one(tmp_path: Path) -> None:
    """Paths, globs and a log named twice: each file once, rotated siblings included."""
    for worker in ("w1", "w2"):
        with EventLog(tmp_path / f"{worker}.jsonl", max_bytes=2_000, backup_count=None) as log:
            for i in range(20):
                log.append({**good(session=worker), "input_tokens": i})
    assert len(list(tmp_path.iterdir())) > 4
    expected = {"w1": 20, "w2": 20}
    for paths in (
        [tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"],
        [str(tmp_path / "*.jsonl")],
        [tmp_path / "w1.jsonl", str(tmp_path / "w*.jsonl"), tmp_path / "w1.jsonl"],
    ):
        rows = report(paths)  # type: ignore[arg-type]
        assert {r["session_id"]: r["events"] for r in rows} == expected
        assert {r["session_id"]: r["input_tokens"] for r in rows} == {"w1": 190, "w2": 190}


def test_a_glob_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    """A glob without a match is FileNotFoundError, like a missing path."""
    with pytest.raises(FileNotFoundError):
        report([str(tmp_path / "*.jsonl")])


def test_memory_is_flat_with_several_rotated_files(tmp_path: Path) -> None:
    """Peak memory of a report does not grow with the log: 4x the lines, same peak."""
    peaks = []
    line = json.dumps(good()) + "\n"
    for n in (20_000, 80_000):
        path = tmp_path / f"{n}.jsonl"
        path.write_text(line * n)
        tracemalloc.start()
        report(path, by="day")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.3 + 100_000


def padded_line(session: str, length: int) -> bytes:
    """A valid event's line (newline included) padded in its metadata to `length` bytes."""
    event = good(session=session)
    event["metadata"] = {"pad": ""}
    short = orjson.dumps(event) + b"\n"
    event["metadata"]["pad"] = "x" * (length - len(short))
    line = orjson.dumps(event) + b"\n"
    assert len(line) == length
    return line


@pytest.mark.parametrize("extra", [0, 1], ids=["at-the-limit", "one-byte-over"])
def test_every_reader_draws_the_line_at_the_same_length(tmp_path: Path, extra: int) -> None:
    """A line of MAX_LINE bytes counts in every reader; one byte more only in DuckDB's engine."""
    path = tmp_path / "events.jsonl"
    small = orjson.dumps(good(session="small")) + b"\n"
    path.write_bytes(small + padded_line("big", MAX_LINE + extra) + small)
    counted = extra == 0

    reader = read_events(path, types={"llm_usage"})
    assert [e["session_id"] for e in reader] == ["small", "big", "small"][:: 1 if counted else 2]
    assert reader.skipped == (0 if counted else 1)

    stop = threading.Event()
    deadline = threading.Timer(10, stop.set)  # a follower that never gets there fails
    deadline.start()
    followed = []
    try:
        for e in follow(path, types={"llm_usage"}, from_start=True, stop=stop, poll_interval=0.01):
            followed.append(e["session_id"])
            if followed.count("small") == 2:
                break
    finally:
        deadline.cancel()
    assert followed == (["small", "big", "small"] if counted else ["small", "small"])

    rows = {r["session_id"]: r["events"] for r in report(path, engine="python")}
    assert rows == ({"small": 2, "big": 1} if counted else {"small": 2})
    # DuckDB cannot be told to skip it (maximum_object_size is no limit): a known difference.
    rows = {r["session_id"]: r["events"] for r in report(path, engine="duckdb")}
    assert rows == {"small": 2, "big": 1}
