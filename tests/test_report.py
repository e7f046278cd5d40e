"""`report()` and `agent-usage report`: sums per group, time filters, formats, bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from agent_usage import EventLog, report
from agent_usage._cli import main


def model_row(
    inp: int,
    out: int,
    *,
    read: int = 0,
    write: int = 0,
    reasoning: int = 0,
    calls: int = 1,
    cost: float | None = None,
    saved: float | None = None,
    provider: str = "anthropic",
) -> dict[str, Any]:
    """One model's share of an event, as the writer lays it out."""
    return {
        "provider": provider,
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "reasoning_tokens": reasoning,
        "llm_calls": calls,
        "cost_usd": cost,
        "cache_savings_usd": saved,
    }


def event(
    ts: str,
    session: str | None,
    models: dict[str, dict[str, Any]],
    *,
    without: int = 0,
    status: str = "ok",
    label: str | None = None,
) -> dict[str, Any]:
    """An `llm_usage` event whose totals are the sums of its models."""
    e: dict[str, Any] = {
        "type": "llm_usage",
        "schema": 1,
        "timestamp": ts,
        "session_id": session,
        "model": label or (next(iter(models)) if len(models) == 1 else "mixed"),
        "status": status,
    }
    for f in ("input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens",
              "cache_creation_input_tokens", "reasoning_tokens", "llm_calls"):  # fmt: skip
        e[f] = sum(m[f] for m in models.values())
    costs = [m["cost_usd"] for m in models.values()]
    e["cost_usd"] = None if None in costs else sum(costs)
    saved = [m["cache_savings_usd"] for m in models.values()]
    e["cache_savings_usd"] = None if None in saved else sum(saved)
    e["llm_calls_without_usage"] = without
    e["models"] = models
    return e


SONNET = "claude-sonnet-4-5"
MINI = "gpt-5-mini"
ACME = "acme-7b"

EVENTS = [
    event(
        "2026-11-20T09:15:00.000001+00:00",
        "s1",
        {SONNET: model_row(1000, 100, read=600, reasoning=20, cost=0.01, saved=0.002)},
    ),
    event(
        "2026-11-20T09:45:00+00:00",
        "s1",
        {
            SONNET: model_row(2000, 200, read=1000, write=500, cost=0.02, saved=0.003),
            MINI: model_row(
                400, 40, reasoning=30, calls=2, cost=0.001, saved=0.0, provider="openai"
            ),
        },
        without=1,
    ),
    event("2026-11-21T10:00:00+00:00", "s2", {ACME: model_row(300, 30, calls=3)}, without=2),
    event(
        "2026-11-22T23:59:59.999999+00:00",
        "s2",
        {MINI: model_row(100, 10, cost=0.0005, provider="openai")},
    ),
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """A log of EVENTS mixed with another event type and two bad lines."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as w:
        for e in EVENTS:
            w.append(e)
            w.append({"type": "tool_call", "timestamp": e["timestamp"], "session_id": "x"})
    with open(path, "a") as f:  # two bad lines that could have been llm_usage events
        f.write('{"type": "llm_usage", "input_tokens": 12\n"llm_usage"\n')
    return path


def by_key(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


def test_by_session_sums_every_field(log: Path) -> None:
    """By session, each row sums every token field, calls, cost and savings."""
    rows = by_key(report(log), "session_id")
    s1 = rows["s1"]
    assert s1["events"] == 2
    assert s1["input_tokens"] == 3400
    assert s1["output_tokens"] == 340
    assert s1["total_tokens"] == 3740
    assert s1["cache_read_input_tokens"] == 1600
    assert s1["cache_creation_input_tokens"] == 500
    assert s1["reasoning_tokens"] == 50
    assert s1["llm_calls"] == 4
    assert s1["llm_calls_without_usage"] == 1
    assert s1["cost_usd"] == pytest.approx(0.031)
    assert s1["unpriced_events"] == 0
    assert s1["cache_savings_usd"] == pytest.approx(0.005)
    assert s1["cache_hit_rate"] == pytest.approx(1600 / 3400)


def test_cost_is_null_only_when_no_event_in_the_group_was_priced(log: Path) -> None:
    """A partly unpriced group shows the priced sum and counts the unpriced events."""
    s2 = by_key(report(log), "session_id")["s2"]
    assert s2["cost_usd"] == pytest.approx(0.0005)
    assert s2["unpriced_events"] == 1
    acme = by_key(report(log, by="model"), "model")[ACME]
    assert acme["cost_usd"] is None
    assert acme["cache_savings_usd"] is None
    assert acme["unpriced_events"] == 1


def test_priced_share_of_a_partly_unpriced_event_counts(tmp_path: Path) -> None:
    """An event with a null cost (one model unpriced) still adds its priced models' cost."""
    path = tmp_path / "events.jsonl"
    mixed = event(
        "2026-11-20T10:00:00+00:00",
        "s1",
        {SONNET: model_row(100, 10, cost=0.5, saved=0.1), ACME: model_row(100, 10)},
    )
    assert mixed["cost_usd"] is None
    with EventLog(path) as w:
        w.append(mixed)
    (row,) = report(path)
    assert row["cost_usd"] == pytest.approx(0.5)
    assert row["cache_savings_usd"] == pytest.approx(0.1)
    assert row["unpriced_events"] == 1
    models = by_key(report(path, by="model"), "model")
    assert models[SONNET]["cost_usd"] == pytest.approx(0.5)
    assert models[ACME]["cost_usd"] is None


def test_by_model_splits_mixed_invokes(log: Path) -> None:
    """By model, a mixed event's tokens and cost go to each model it used."""
    rows = by_key(report(log, by="model"), "model")
    assert set(rows) == {SONNET, MINI, ACME, "mixed"}
    assert rows[SONNET]["input_tokens"] == 3000
    assert rows[SONNET]["events"] == 2
    assert rows[MINI]["input_tokens"] == 500
    assert rows[MINI]["llm_calls"] == 3
    assert rows[MINI]["cost_usd"] == pytest.approx(0.0015)
    # Calls without usage name no model: they stay under the event's label.
    assert rows["mixed"]["llm_calls_without_usage"] == 1
    assert rows["mixed"]["input_tokens"] == 0
    assert rows[ACME]["llm_calls_without_usage"] == 2
    assert sum(r["input_tokens"] for r in rows.values()) == sum(e["input_tokens"] for e in EVENTS)


@pytest.mark.parametrize(
    ("by", "key", "expected"),
    [
        ("day", "day", {"2026-11-20": 2, "2026-11-21": 1, "2026-11-22": 1}),
        ("hour", "hour", {"2026-11-20T09": 2, "2026-11-21T10": 1, "2026-11-22T23": 1}),
        ("session", "session_id", {"s1": 2, "s2": 2}),
    ],
    ids=["day", "hour", "session"],
)
def test_time_and_session_groups(log: Path, by: str, key: str, expected: dict[str, int]) -> None:
    """Day and hour keys are UTC slices of the timestamp; each row carries its key name."""
    rows = report(log, by=by)
    assert {r[key]: r["events"] for r in rows} == expected
    if by in ("day", "hour"):
        assert [r[key] for r in rows] == sorted(expected)  # time order


@pytest.mark.parametrize(
    ("since", "until", "sessions_events"),
    [
        ("2026-11-21", None, 2),
        (None, "2026-11-21", 3),  # a bare date includes that whole day
        ("2026-11-20T09:30:00Z", "2026-11-21T10:00:00+00:00", 1),  # until is exclusive
        ("2026-11-20T10:30:00+01:00", None, 3),  # offsets are converted to UTC
        ("2026-11-22T23:59:59.999999", None, 1),
    ],
    ids=["since-date", "until-date", "window", "offset", "microseconds"],
)
def test_since_until(log: Path, since: str | None, until: str | None, sessions_events: int) -> None:
    """--since is inclusive, --until exclusive, a bare --until date includes its day."""
    rows = report(log, since=since, until=until)
    assert sum(r["events"] for r in rows) == sessions_events


def test_top_keeps_the_costliest(log: Path) -> None:
    """top=N keeps the N groups with the highest cost, then tokens."""
    rows = report(log, by="model", top=2)
    assert [r["model"] for r in rows] == [SONNET, MINI]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "week"}, "unknown grouping 'week'"),
        ({"since": "last tuesday"}, "not an ISO date"),
        ({"until": "2026-13-01"}, "not an ISO date"),
        ({"top": 0}, "top must be a positive integer"),
    ],
    ids=["by", "since", "until", "top"],
)
def test_bad_arguments_raise_value_error(log: Path, kwargs: dict[str, Any], message: str) -> None:
    """Bad options raise ValueError naming the bad value."""
    with pytest.raises(ValueError, match=message):
        report(log, **kwargs)


def test_malformed_event_is_dropped_whole(tmp_path: Path) -> None:
    """An event with a non-numeric count is skipped entirely; a null count reads as 0."""
    path = tmp_path / "events.jsonl"
    good = EVENTS[0]
    with EventLog(path) as w:
        w.append(good)
        w.append({**good, "output_tokens": "lots"})
        w.append({**good, "reasoning_tokens": None, "cache_savings_usd": None})
    (row,) = report(path)
    assert row["events"] == 2
    assert row["output_tokens"] == 200
    assert row["reasoning_tokens"] == 20
    assert row["cache_savings_usd"] == pytest.approx(0.002)


def test_prices_reprice_events(log: Path) -> None:
    """With prices, every event is re-priced before it is summed (unknown models too)."""
    prices = {ACME: {"input": 1.0, "output": 10.0}}
    acme = by_key(report(log, by="model", prices=prices), "model")[ACME]
    assert acme["cost_usd"] == pytest.approx((300 * 1.0 + 30 * 10.0) / 1e6)
    assert acme["unpriced_events"] == 0


def test_memory_stays_flat(tmp_path: Path) -> None:
    """Peak memory does not grow with the number of events (streaming).

    Both logs are several read chunks long, so the peak is the chunk's, not the log's.
    """
    peaks = []
    for n in (8_000, 32_000):
        path = tmp_path / f"{n}.jsonl"
        with EventLog(path) as w:
            for i in range(n):
                w.append({**EVENTS[1], "session_id": f"s{i % 10}"})
        tracemalloc.start()
        report(path)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.5 + 100_000


# --- CLI -----------------------------------------------------------------------


def test_cli_json_matches_the_library(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json prints the same rows as report(), and one note about bad lines."""
    assert main(["report", str(log), "--by", "day", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == report(log, by="day")
    assert err.strip() == "agent-usage: note: skipped 2 bad line(s)"


def test_cli_csv(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format csv has a header with the key and the event field names."""
    assert main(["report", str(log), "--by", "model", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["model"] for r in rows} == {SONNET, MINI, ACME, "mixed"}
    acme = next(r for r in rows if r["model"] == ACME)
    assert acme["cost_usd"] == ""
    assert acme["input_tokens"] == "300"


def test_cli_table_fits_80_columns(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The table is humanised, fits 80 columns, and marks partly unpriced costs."""
    assert main(["report", str(log), "--since", "2026-11-20", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    lines = out.splitlines()
    assert lines[0].split() == [
        "session_id", "events", "calls", "input", "output", "cache", "reason", "cost", "saved"
    ]  # fmt: skip
    s1 = next(line for line in lines if line.startswith("s1 "))
    assert s1.split() == ["s1", "2", "4", "3.4k", "340", "47.1%", "50", "$0.03", "$0.0050"]
    s2 = next(line for line in lines if line.startswith("s2 "))
    assert "$0.0005*" in s2
    assert "* 1 event(s) used a model with no price" in out
    assert "3 LLM call(s) reported no usage" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "{missing}"], "no such file"),
        (["report", "{dir}"], "directory"),
        (["report", "{log}", "--since", "yesterday"], "not an ISO date or datetime: 'yesterday'"),
        (["report", "{log}", "--until", "2026-02-30"], "not an ISO date or datetime"),
        (["report", "{log}", "--by", "week"], "argument --by: invalid choice: 'week'"),
        (["report", "{log}", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["report", "{log}", "--top", "0"], "argument --top: must be at least 1, got 0"),
        (["report", "{log}", "--prices", "{missing_prices}"], "cannot be read"),
    ],
    ids=["missing", "directory", "since", "until", "by", "format", "top", "prices"],
)
def test_cli_bad_input_is_one_line_exit_2(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Bad input: one line on stderr naming the problem, exit code 2, no traceback."""
    values = {
        "log": str(log),
        "missing": str(tmp_path / "nope.jsonl"),
        "missing_prices": str(tmp_path / "nope.toml"),
        "dir": str(tmp_path),
    }
    assert main([a.format(**values) for a in args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("agent-usage report: error: ")
    assert message in err


def test_cli_unreadable_file(log: Path, unprivileged: list[str]) -> None:
    """A file that cannot be read is a one-line error naming it, not a traceback."""
    script = str(Path(sys.executable).with_name("agent-usage"))
    log.chmod(0)
    try:
        done = subprocess.run(
            [*unprivileged, script, "report", str(log)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        log.chmod(0o600)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"agent-usage report: error: cannot read {log}: Permission denied\n"


def test_console_script_in_a_subprocess(log: Path) -> None:
    """The installed `agent-usage report` runs end to end in a fresh process."""
    script = str(Path(sys.executable).with_name("agent-usage"))
    done = subprocess.run(
        [script, "report", str(log), "--by", "model"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert SONNET in done.stdout
    assert "Traceback" not in done.stderr
    bad = subprocess.run(
        [script, "report", str(log), "--since", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, a long read draws a progress bar and then clears it."""
    import pty

    path = tmp_path / "events.jsonl"
    with EventLog(path) as w:
        for i in range(10_000):
            w.append({**EVENTS[0], "session_id": f"s{i % 3}"})
    master, slave = pty.openpty()
    try:
        try:
            done = subprocess.run(
                [str(Path(sys.executable).with_name("agent-usage")), "report", str(path)],
                stdout=subprocess.PIPE,
                stderr=slave,
                timeout=60,
                check=False,
            )
        finally:
            os.close(slave)
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
    assert done.returncode == 0
    assert b"reading [" in err
    assert err.endswith(b"\r")  # the bar is wiped before the report is read
    assert b"s0" in done.stdout


def test_cli_prices_file(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--prices FILE re-prices with the user's TOML prices (per million tokens)."""
    prices = tmp_path / "prices.toml"
    prices.write_text(f'["{ACME}"]\ninput = 1.0\noutput = 10.0\n')
    assert (
        main(["report", str(log), "--by", "model", "--format", "json", "--prices", str(prices)])
        == 0
    )
    acme = by_key(json.loads(capsys.readouterr().out), "model")[ACME]
    assert acme["cost_usd"] == pytest.approx((300 * 1.0 + 30 * 10.0) / 1e6)


def test_by_model_drops_an_event_with_a_malformed_share_whole(tmp_path: Path) -> None:
    """A share with a non-numeric count makes its whole event malformed, in every grouping."""
    path = tmp_path / "events.jsonl"
    bad = event(
        "2026-11-20T10:00:00+00:00",
        "s1",
        {SONNET: model_row(100, 10, cost=0.5), MINI: model_row(100, 10, cost=0.25)},
    )
    bad["models"][MINI]["output_tokens"] = "ten"
    with EventLog(path) as w:
        w.append(EVENTS[0])
        w.append(bad)
    rows = by_key(report(path, by="model"), "model")
    assert rows[SONNET]["events"] == 1
    assert rows[SONNET]["input_tokens"] == 1000
    assert MINI not in rows
    (session,) = report(path, by="session")
    assert session["events"] == 1
