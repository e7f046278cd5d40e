"""`agent-usage demo`: a real LangGraph agent whose log carries exact tokens and cost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from logs import TOKEN_FIELDS

from agent_usage import read_events
from agent_usage._cli import main

# Public list prices, USD per million tokens (input, cache read, cache write 5m,
# cache write 1h, output), typed in by hand from the providers' price pages.
LIST_PRICES = {
    "claude-sonnet-4-5-20250929": (3.00, 0.30, 3.75, 6.00, 15.00),
    "gpt-5-mini-2025-08-07": (0.25, 0.025, 0.25, 0.25, 2.00),
}


def hand_cost(model: str, row: dict[str, int], write_1h: int) -> float:
    """Cost of one model's row, from the list prices above."""
    rate_in, rate_read, rate_5m, rate_1h, rate_out = LIST_PRICES[model]
    read = row["cache_read_input_tokens"]
    written = row["cache_creation_input_tokens"]
    uncached = row["input_tokens"] - read - written
    dollars_per_m = (
        uncached * rate_in
        + read * rate_read
        + (written - write_1h) * rate_5m
        + write_1h * rate_1h
        + row["output_tokens"] * rate_out
    )
    return dollars_per_m / 1e6


def hand_savings(model: str, row: dict[str, int], write_1h: int) -> float:
    """What cache reads saved at the uncached rate, minus the write premium."""
    rate_in, rate_read, rate_5m, rate_1h, _ = LIST_PRICES[model]
    written_5m = row["cache_creation_input_tokens"] - write_1h
    dollars_per_m = (
        row["cache_read_input_tokens"] * (rate_in - rate_read)
        - written_5m * (rate_5m - rate_in)
        - write_1h * (rate_1h - rate_in)
    )
    return dollars_per_m / 1e6


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run `agent-usage demo` once: its log and what it printed."""
    path = tmp_path_factory.mktemp("demo") / "events.jsonl"
    argv = [sys.executable, "-m", "agent_usage", "demo", "--log", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return path, done.stdout


def test_demo_writes_one_event_per_invoke(demo: tuple[Path, str]) -> None:
    """Four sessions of three turns: twelve ok events, three per session."""
    events = list(read_events(demo[0], types={"llm_usage"}))
    assert len(events) == 12
    assert {e["status"] for e in events} == {"ok"}
    sessions = sorted(e["session_id"] for e in events)
    assert sessions == sorted(f"demo-session-{n}" for n in range(1, 5) for _ in range(3))
    assert all(e["metadata"] == {"app": "agent-usage-demo"} for e in events)


def test_demo_counts_the_model_inside_the_tool(demo: tuple[Path, str]) -> None:
    """Each invoke: two agent-model calls and one call to the model inside the tool."""
    for event in read_events(demo[0], types={"llm_usage"}):
        assert event["model"] == "mixed"
        assert event["llm_calls"] == 3
        assert event["models"]["claude-sonnet-4-5-20250929"]["llm_calls"] == 2
        assert event["models"]["gpt-5-mini-2025-08-07"]["llm_calls"] == 1
        for field in (*TOKEN_FIELDS, "llm_calls"):
            assert event[field] == sum(row[field] for row in event["models"].values()), field


def test_demo_checkpointed_turns_count_only_their_own_calls(demo: tuple[Path, str]) -> None:
    """Later turns read the cached prefix; none re-counts an earlier turn's calls."""
    events = [e for e in read_events(demo[0], types={"llm_usage"})]
    by_session: dict[str, list[dict[str, object]]] = {}
    for event in events:
        by_session.setdefault(str(event["session_id"]), []).append(event)
    for turns in by_session.values():
        assert len(turns) == 3
        # The tool model always reads its 640-token cached instruction prefix; later
        # turns read the agent's prefix too, so reads grow but calls stay three.
        reads = [int(str(t["cache_read_input_tokens"])) for t in turns]
        assert reads[0] > 640 and reads == sorted(reads)
        assert all(t["llm_calls"] == 3 for t in turns)


def test_demo_events_carry_cache_aware_cost(demo: tuple[Path, str]) -> None:
    """cost_usd and cache_savings_usd per model and per event follow the list prices."""
    one_hour_writes = 0
    for event in read_events(demo[0], types={"llm_usage"}):
        write_1h = event.get("cache_creation_1h_input_tokens", 0)
        one_hour_writes += write_1h
        total = 0.0
        for model, row in event["models"].items():
            expected = hand_cost(model, row, write_1h if model.startswith("claude") else 0)
            assert row["cost_usd"] == pytest.approx(expected, rel=1e-9, abs=1e-12), model
            total += expected
            saved = hand_savings(model, row, write_1h if model.startswith("claude") else 0)
            assert row["cache_savings_usd"] == pytest.approx(saved, rel=1e-9, abs=1e-12)
        assert event["cost_usd"] == pytest.approx(total, rel=1e-9)
    assert one_hour_writes > 0  # the "billing" session writes its prefix with a 1h TTL


def test_demo_prints_the_session_report(demo: tuple[Path, str]) -> None:
    """The demo ends with the per-session table and its totals."""
    out = demo[1]
    assert "ran 12 agent invokes" in out
    for n in range(1, 5):
        assert f"demo-session-{n}" in out
    total_line = next(line for line in out.splitlines() if line.startswith("total"))
    assert total_line.split()[1:3] == ["12", "36"]


@pytest.mark.parametrize(
    "argv", [["--sessions", "0"], ["--turns", "-1"]], ids=["sessions", "turns"]
)
def test_demo_rejects_bad_counts(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A count below one is a one-line error and exit code 2."""
    assert main(["demo", "--log", str(tmp_path / "e.jsonl"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 1" in err
    assert not (tmp_path / "e.jsonl").exists()


@pytest.mark.parametrize("where", ["read-only-dir", "missing-dir"])
def test_demo_on_an_unwritable_log_is_one_true_line(
    tmp_path: Path, unprivileged: list[str], where: str
) -> None:
    """The real cause, once, exit code 2; no claim that events were written, no report."""
    directory = tmp_path / "logs"
    if where == "read-only-dir":
        directory.mkdir(mode=0o555)
    path = directory / "events.jsonl"
    argv = [*unprivileged, sys.executable, "-m", "agent_usage", "demo", "--log", str(path)]
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 2
    cause = "Permission denied" if where == "read-only-dir" else "EventLog directory does not exist"
    assert done.stderr == f"agent-usage demo: error: cannot write {path}: {cause}\n"
    assert done.stdout == ""
