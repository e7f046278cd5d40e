"""One validity rule for every command: a malformed `llm_usage` line is skipped and counted
the same way by `report`, every `report --by`, the dashboard and the exporters' source,
never summed, never a crash; days and hours are UTC (issue 12 items 8, 9, 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_usage import report
from agent_usage._cli import main
from agent_usage._dashboard import Dashboard
from agent_usage._report import GROUP_KEYS, Aggregate, EventSource

SONNET = "claude-sonnet-4-5"


def good(ts: str = "2026-11-20T09:00:00+00:00", session: str = "s1") -> dict[str, Any]:
    """A well-formed one-model event: 100 in, 10 out, $0.01."""
    share = {
        "provider": "anthropic",
        "input_tokens": 100,
        "output_tokens": 10,
        "total_tokens": 110,
        "cache_read_input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": 0,
        "llm_calls": 1,
        "cost_usd": 0.01,
        "cache_savings_usd": 0.001,
    }
    return {
        "type": "llm_usage",
        "schema": 1,
        "timestamp": ts,
        "session_id": session,
        "host": "w1",
        "model": SONNET,
        "status": "ok",
        **{k: v for k, v in share.items() if k != "provider"},
        "llm_calls_without_usage": 0,
        "models": {SONNET: share},
    }


def with_field(path: tuple[str, ...], value: Any) -> str:
    """A good event with one field (maybe inside `models`) replaced, as a JSON line.

    Written with the stdlib so that values orjson refuses (ints past 64 bits) reach the log.
    """
    e = good()
    target = e
    for key in path[:-1]:
        target = target[key]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(e)


_DROP = object()
SHARE = ("models", SONNET)

# Each line is an llm_usage event a reader must refuse whole.
MALFORMED = {
    "session_id list": with_field(("session_id",), ["a", "b"]),
    "session_id object": with_field(("session_id",), {"id": 1}),
    "session_id number": with_field(("session_id",), 7),
    "model list without models": with_field(("models",), _DROP).replace(
        f'"model": "{SONNET}"', '"model": ["a"]'
    ),
    "host object": with_field(("host",), {"name": "w1"}),
    "count 1e308": with_field(("input_tokens",), 1e308),
    "cost 1e308": with_field(("cost_usd",), 1e308),
    "savings -1e308": with_field(("cache_savings_usd",), -1e308),
    "negative count": with_field(("input_tokens",), -1000),
    "bool count": with_field(("input_tokens",), True),
    "float count": with_field(("output_tokens",), 1.5),
    "whole float count": with_field(("output_tokens",), 10.0),
    "absurd count": with_field(("total_tokens",), 10**30),
    "just past the cap": with_field(("llm_calls",), 10**15 + 1),
    "string count": with_field(("input_tokens",), "100"),
    "negative cost": with_field(("cost_usd",), -0.5),
    "string cost": with_field(("cost_usd",), "0.01"),
    "bool without usage": with_field(("llm_calls_without_usage",), True),
    "timestamp not a date": with_field(("timestamp",), "not a date"),
    "timestamp number": with_field(("timestamp",), 1764000000),
    "timestamp missing": with_field(("timestamp",), _DROP),
    "timestamp bare date": with_field(("timestamp",), "2026-11-20"),
    "models a list": with_field(("models",), [1, 2]),
    "share negative": with_field((*SHARE, "output_tokens"), -10),
    "share float": with_field((*SHARE, "input_tokens"), 100.5),
    "share absurd cost": with_field((*SHARE, "cost_usd"), 1e300),
    "share not an object": with_field(SHARE, "lots"),
}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture(params=list(MALFORMED), ids=list(MALFORMED))
def dirty(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Two good events around one malformed line, and a foreign event with odd fields."""
    foreign = {"type": "tool_call", "timestamp": "yesterday", "session_id": ["x"], "model": 5}
    return write(
        tmp_path / "events.jsonl",
        [json.dumps(good()), MALFORMED[request.param], json.dumps(foreign), json.dumps(good())],
    )


def test_malformed_line_is_skipped_by_every_grouping(dirty: Path) -> None:
    """Every --by sums the two good events (200 in, 20 out, $0.02) and counts one malformed."""
    for by in GROUP_KEYS:
        agg = Aggregate(by=by).feed(EventSource(dirty))
        total = agg.total_row()
        assert (total["events"], total["input_tokens"], total["output_tokens"]) == (2, 200, 20), by
        assert total["cost_usd"] == pytest.approx(0.02)
        assert sum(r["events"] for r in agg.rows()) == 2, by
        assert agg.malformed == 1, by


def test_report_cli_and_dashboard_agree_on_a_malformed_line(
    dirty: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report --by X --format json` and the dashboard: same two events, no traceback."""
    for by in GROUP_KEYS:
        assert main(["report", str(dirty), "--by", by, "--format", "json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert sum(r["input_tokens"] for r in rows) == 200, by
    assert main(["dashboard", str(dirty), "-o", str(tmp_path / "d.html")]) == 0
    assert "wrote" in capsys.readouterr().err
    for events in (EventSource(dirty), list(EventSource(dirty))):
        d = Dashboard(events)
        assert (d.total["events"], d.total["input_tokens"]) == (2, 200)
        assert sum(d.status.values()) == 2


def test_dict_events_follow_the_same_rule(dirty: Path) -> None:
    """Feeding the event dicts themselves (not the source) skips the same line."""
    lines = dirty.read_text().splitlines()
    events = [e for e in map(json.loads, lines) if e.get("type") == "llm_usage"]
    agg = Aggregate(by="session").feed(events)
    assert agg.total_row()["events"] == 2
    assert agg.malformed == 1


def test_event_source_yields_only_valid_events(dirty: Path) -> None:
    """What exporters back-fill from is what reports sum: the two good events."""
    source = EventSource(dirty)
    assert [e["input_tokens"] for e in source] == [100, 100]
    assert source.malformed == 1


def test_null_and_missing_counts_read_as_zero(tmp_path: Path) -> None:
    """Null or missing counts are "not reported" (older writers), not malformed."""
    e = good()
    e["reasoning_tokens"] = None
    del e["cache_read_input_tokens"]
    path = write(tmp_path / "events.jsonl", [json.dumps(e), json.dumps(good())])
    agg = Aggregate(by="day").feed(EventSource(path))
    row = agg.total_row()
    assert (row["events"], row["cache_read_input_tokens"], agg.malformed) == (2, 40, 0)


def test_the_cap_itself_is_summed(tmp_path: Path) -> None:
    """10**15 tokens is implausible but allowed: the bound is inclusive."""
    e = good()
    e["input_tokens"] = 10**15
    path = write(tmp_path / "events.jsonl", [json.dumps(e), json.dumps(good())])
    (row,) = report(path)
    assert row["input_tokens"] == 10**15 + 100


@pytest.mark.parametrize(
    ("ts", "day", "hour"),
    [
        ("2026-11-20T02:30:00+05:00", "2026-11-19", "2026-11-19T21"),
        ("2026-11-19T22:30:00-03:00", "2026-11-20", "2026-11-20T01"),
        ("2026-11-20T02:30:00Z", "2026-11-20", "2026-11-20T02"),
        ("2026-11-20T02:30:00", "2026-11-20", "2026-11-20T02"),  # naive: UTC
        ("2026-11-20T23:59:59.999999+00:00", "2026-11-20", "2026-11-20T23"),
    ],
    ids=["plus-5", "minus-3", "Z", "naive", "utc"],
)
def test_days_and_hours_are_utc(tmp_path: Path, ts: str, day: str, hour: str) -> None:
    """A timestamp with an offset lands in its UTC day and hour."""
    path = write(tmp_path / "events.jsonl", [json.dumps(good(ts))])
    assert [r["day"] for r in report(path, by="day")] == [day]
    assert [r["hour"] for r in report(path, by="hour")] == [hour]


def test_bounds_compare_in_utc(tmp_path: Path) -> None:
    """--since/--until compare instants: 02:30+05:00 on the 20th is the 19th in UTC."""
    path = write(tmp_path / "events.jsonl", [json.dumps(good("2026-11-20T02:30:00+05:00"))])
    assert report(path, since="2026-11-20") == []
    assert [r["events"] for r in report(path, until="2026-11-19")] == [1]


def test_by_host(tmp_path: Path) -> None:
    """--by host groups events by their host field; events without one under null."""
    a, b, none = good(), good(), good()
    b["host"] = "w2"
    del none["host"]
    path = write(tmp_path / "events.jsonl", [json.dumps(e) for e in (a, b, b, none)])
    rows = {r["host"]: r["events"] for r in report(path, by="host")}
    assert rows == {"w1": 1, "w2": 2, None: 1}
