"""`agent_usage._check.check`: breaches of session/day limits, calls without usage, unpriced models.

The logs are written line by line here, so every expected figure is one the
test put in the log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from logs import one_model_event

from agent_usage._check import check


def line(
    ts: str,
    session: str | None,
    cost: float | None,
    *,
    model: str = "claude-sonnet-4-5",
    tokens: int = 100,
    calls: int = 1,
    without: int = 0,
) -> dict[str, Any]:
    """One `llm_usage` event of one model."""
    return one_model_event(
        ts=ts, session=session, model=model, inp=tokens, calls=calls, without=without, cost=cost
    )


def write(path: Path, *events: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Two days; session a spends 3.5 + 2.0, b 1.0, c 4.0 (day two); one unpriced model."""
    return write(
        tmp_path / "events.jsonl",
        line("2026-11-21T10:00:00+00:00", "a", 3.5),
        line("2026-11-21T11:00:00+00:00", "b", 1.0),
        line("2026-11-22T09:00:00+00:00", "a", 2.0, calls=6, without=4),
        line("2026-11-22T09:30:00+00:00", "c", 4.0),
        line("2026-11-22T10:00:00+00:00", "c", None, model="my-local-model", calls=3),
    )


def test_no_limits_no_breaches(log: Path) -> None:
    """Without limits or rules nothing is a breach; the events are still counted."""
    result = check(log)
    assert result.breaches == []
    assert result.events == 5


def test_session_over_limit(log: Path) -> None:
    """Sessions over the USD limit, one breach each, costliest first; at the limit is fine."""
    result = check(log, session_usd=4.0)
    assert [(b.kind, b.key, b.value, b.limit) for b in result.breaches] == [
        ("session_usd", "a", 5.5, 4.0)
    ]
    assert result.breaches[0].message == ("session a: $5.5 spent, over the $4 limit (2 event(s))")


def test_day_over_limit_in_time_order(log: Path) -> None:
    """Days over the USD limit; --since narrows the window."""
    result = check(log, day_usd=4.4)
    assert [(b.key, b.value) for b in result.breaches] == [("2026-11-21", 4.5), ("2026-11-22", 6.0)]
    assert "1 event(s) unpriced" in result.breaches[1].message
    assert [b.key for b in check(log, day_usd=4.4, since="2026-11-22").breaches] == ["2026-11-22"]
    assert check(log, day_usd=4.4, until="2026-11-21T10:30").breaches == []


def test_calls_without_usage_share(log: Path) -> None:
    """A model for which more than PCT percent of calls reported no usage is a breach."""
    # claude-sonnet-4-5: 1 + 1 + 6 + 1 calls with usage, 4 without: 4 of 13 = 30.77%
    (breach,) = check(log, max_without_usage=30).breaches
    assert (breach.kind, breach.key, breach.value, breach.limit) == (
        "without_usage",
        "claude-sonnet-4-5",
        30.7692,
        30.0,
    )
    assert breach.message == (
        "model claude-sonnet-4-5: 30.77% of calls reported no usage (4 of 13), over 30%"
    )
    assert check(log, max_without_usage=31).breaches == []


def test_unpriced_models(log: Path) -> None:
    """--fail-on-unpriced names each model without a price; prices= fixes it."""
    (breach,) = check(log, fail_on_unpriced=True).breaches
    assert (breach.kind, breach.key, breach.value) == ("unpriced", "my-local-model", 1)
    priced = check(
        log, fail_on_unpriced=True, prices={"my-local-model": {"input": 1.0, "output": 1.0}}
    )
    assert priced.breaches == []


def test_json_ready(log: Path) -> None:
    """as_dict is what --format json prints: breaches plus what was read."""
    out = check(log, session_usd=5.0, day_usd=5.0).as_dict()
    assert out == {
        "breaches": [
            {
                "kind": "session_usd",
                "key": "a",
                "value": 5.5,
                "limit": 5.0,
                "message": "session a: $5.5 spent, over the $5 limit (2 event(s))",
            },
            {
                "kind": "day_usd",
                "key": "2026-11-22",
                "value": 6.0,
                "limit": 5.0,
                "message": (
                    "day 2026-11-22: $6 spent, over the $5 limit (3 event(s), 1 event(s) unpriced)"
                ),
            },
        ],
        "events": 5,
        "skipped_lines": 0,
        "malformed_events": 0,
    }


def test_several_logs_and_dirty_lines(tmp_path: Path, log: Path) -> None:
    """Several logs add up; torn and wrongly typed lines are skipped and counted, never summed.

    A non-JSON line that cannot hold an llm_usage event is not even looked at (the
    reader's type filter), so only the torn one counts as skipped.
    """
    other = tmp_path / "worker2.jsonl"
    bad = line("2026-11-22T12:00:00+00:00", "b", 9.0)
    bad["total_tokens"] = "many"
    other.write_text(
        json.dumps(line("2026-11-22T11:00:00+00:00", "b", 3.5))
        + "\nnot json\n"
        + json.dumps(bad)
        + '\n{"type": "llm_usage", "session_id": "b", "cost_u'
    )
    result = check([log, other], session_usd=4.0)
    assert [(b.key, b.value) for b in result.breaches] == [("a", 5.5), ("b", 4.5)]
    # The one validity rule (the report's reader): a count of the wrong type makes the
    # event malformed, never summed; the non-JSON and the torn line are skipped.
    assert (result.events, result.skipped, result.malformed) == (6, 2, 1)


def test_a_log_named_twice_is_read_once(log: Path) -> None:
    """As in `report`: the same file by two names (path and glob) counts once."""
    result = check([log, log.parent / "*.jsonl"], session_usd=4.0)
    assert result.events == 5
    assert [(b.key, b.value) for b in result.breaches] == [("a", 5.5)]


def test_control_characters_made_visible(tmp_path: Path) -> None:
    """A session id from the log cannot put escape sequences on the operator's terminal."""
    path = write(tmp_path / "e.jsonl", line("2026-11-22T09:00:00+00:00", "x\x1b[2Jy", 9.0))
    (breach,) = check(path, session_usd=1.0).breaches
    assert "\x1b" not in breach.message
    assert "x\\x1b[2Jy" in breach.message


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"session_usd": -1}, ValueError, "session_usd must be a finite number >= 0, got -1"),
        ({"day_usd": float("nan")}, ValueError, "day_usd"),
        ({"day_usd": "5"}, TypeError, "day_usd must be a number, got '5'"),
        ({"max_without_usage": 101}, ValueError, "between 0 and 100, got 101"),
        ({"since": "yesterday"}, ValueError, "'yesterday'"),
    ],
    ids=["negative", "nan", "string", "percent", "since"],
)
def test_bad_input(log: Path, kwargs: dict[str, Any], error: type[Exception], text: str) -> None:
    """Bad limits and bounds raise, naming the value."""
    with pytest.raises(error, match=None) as info:
        check(log, **kwargs)
    assert text in str(info.value)


def test_missing_log(tmp_path: Path) -> None:
    """A log that does not exist raises FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        check(tmp_path / "nope.jsonl", session_usd=1.0)


# ------------------------------------------------------------------ the command


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    """`agent-usage check ...` in a subprocess: (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent_usage", "check", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_breaches_exit_1(log: Path) -> None:
    """One line per breach on stdout, exit code 1."""
    code, out, err = run_cli(log, "--session-usd", "4", "--day-usd", "5", "--fail-on-unpriced")
    assert code == 1, err
    assert out.splitlines() == [
        "session a: $5.5 spent, over the $4 limit (2 event(s))",
        "day 2026-11-22: $6 spent, over the $5 limit (3 event(s), 1 event(s) unpriced)",
        "model my-local-model: no known price in 1 event(s); add it with --prices / prices=",
    ]
    assert err == ""


def test_cli_clean_exit_0(log: Path) -> None:
    """No breach: nothing on stdout, exit code 0."""
    assert run_cli(log, "--session-usd", "6", "--max-without-usage", "31%") == (0, "", "")


def test_cli_json(log: Path) -> None:
    """--format json prints the breaches and what was read, exit code still 1."""
    code, out, _ = run_cli(log, "--day-usd", "4.4", "--since", "2026-11-22", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert [(b["kind"], b["key"], b["value"], b["limit"]) for b in doc["breaches"]] == [
        ("day_usd", "2026-11-22", 6.0, 4.4)
    ]
    assert (doc["events"], doc["skipped_lines"], doc["malformed_events"]) == (3, 0, 0)
    code, out, _ = run_cli(log, "--day-usd", "100", "--format", "json")
    assert (code, json.loads(out)["breaches"]) == (0, [])


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--session-usd", "-3"], "must be a positive number"),
        (["--day-usd", "lots"], "not a number: 'lots'"),
        (["--max-without-usage", "120"], "must be between 0 and 100"),
        (["--since", "last week", "--day-usd", "1"], "not an ISO date"),
        (["--since", "2026-11-23", "--until", "2026-11-22", "--day-usd", "1"], "not before"),
        (["--format", "xml", "--day-usd", "1"], "invalid choice: 'xml'"),
        ([], "nothing to check"),
    ],
    ids=["negative", "not-a-number", "percent", "since", "empty-range", "format", "no-rule"],
)
def test_cli_bad_input_exit_2(log: Path, args: list[str], text: str) -> None:
    """Bad options: one line on stderr, exit code 2, no traceback."""
    code, out, err = run_cli(log, *args)
    assert (code, out) == (2, "")
    assert text in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_missing_log_exit_2(tmp_path: Path) -> None:
    """A log that does not exist: one line, exit code 2."""
    code, _, err = run_cli(tmp_path / "nope.jsonl", "--day-usd", "1")
    assert code == 2
    assert err.strip() == f"agent-usage check: error: no such file: {tmp_path / 'nope.jsonl'}"
