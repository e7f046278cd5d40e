"""What both exporters share: a dead endpoint costs the agent nothing; back-fill tells the truth."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from export_helpers import Capture, closed_port
from langchain_core.messages import AIMessage
from providers.expect import one_node_graph

from agent_usage import EventLog, read_events, track_usage
from agent_usage._cli import main
from agent_usage.exporters import OTelExporter, PostHogExporter
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um

EVENT = {"type": "llm_usage", "event_id": "e", "invoke_id": "i", "input_tokens": 1}


def dead_posthog() -> tuple[Any, Callable[[], object]]:
    exporter = PostHogExporter("k", host=f"http://127.0.0.1:{closed_port()}", max_retries=0)
    return exporter, lambda: exporter.shutdown(2)


def dead_otel() -> tuple[Any, Callable[[], object]]:
    exporter = OTelExporter.otlp_http(
        f"http://127.0.0.1:{closed_port()}", timeout=1, export_interval=0.05
    )  # exports (and fails) all the time
    return exporter, lambda: exporter.shutdown(2)


@pytest.mark.parametrize("build", [dead_posthog, dead_otel], ids=["posthog", "otel"])
def test_dead_endpoint_does_not_slow_or_break_the_agent(
    build: Callable[[], tuple[Any, Callable[[], object]]], tmp_path: Path
) -> None:
    """An exporter pointed at a closed port adds no visible latency and no error to invokes."""
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # the SDK logs each retry
    logging.getLogger("posthog").setLevel(logging.CRITICAL)
    exporter, close = build()
    model = ScriptedChatModel(
        script=[AIMessage(content="ok", usage_metadata=um(100, 10, cache_read=50))]
    )
    rounds = 20
    try:
        with EventLog(tmp_path / "plain.jsonl") as log:
            plain = track_usage(one_node_graph(model), log)
            plain.invoke({"messages": [("user", "warm up")]})
            started = time.perf_counter()
            for _ in range(rounds):
                expected = plain.invoke({"messages": [("user", "hi")]})
            baseline = time.perf_counter() - started
        with EventLog(tmp_path / "exported.jsonl") as log:
            tracked = track_usage(one_node_graph(model), log, exporters=[exporter])
            started = time.perf_counter()
            for _ in range(rounds):
                result = tracked.invoke({"messages": [("user", "hi")]})
            with_exporter = time.perf_counter() - started
        assert result["messages"][-1].content == expected["messages"][-1].content == "ok"
        assert with_exporter - baseline < 0.5, (with_exporter, baseline)
        assert len(list(read_events(tmp_path / "exported.jsonl", types={"llm_usage"}))) == rounds
        assert exporter.flush(5) is False  # nothing was delivered, and flush says so
        stats = exporter.stats
        assert stats["sent"] == 0
        assert stats["handed"] == rounds
    finally:
        close()


@pytest.mark.parametrize("extra", ["otel", "posthog"])
def test_missing_extra_fails_at_use_with_the_install_hint(extra: str) -> None:
    """Without the SDK, importing the package works; using the exporter names the extra."""
    module, build = {
        "otel": ("opentelemetry", "OTelExporter()"),
        "posthog": ("posthog", "PostHogExporter('k')"),
    }[extra]
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "import agent_usage.exporters as exporters\n"
        "try:\n"
        "    from agent_usage.exporters import OTelExporter, PostHogExporter\n"
        f"    {build}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"pip install 'langchain-agent-usage[{extra}]'" in out.stdout


@pytest.fixture
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.close()


def test_queued_events_are_flushed_at_exit(capture: Capture) -> None:
    """A process that exports and exits without flushing still delivers (atexit shutdown)."""
    code = (
        "from agent_usage.exporters import PostHogExporter\n"
        f"e = PostHogExporter('k', host={capture.url!r})\n"
        "for i in range(3):\n"
        "    e.export({'type': 'llm_usage', 'event_id': str(i), 'invoke_id': str(i),\n"
        "              'model': 'm', 'input_tokens': i, 'output_tokens': 1})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert sorted(e["properties"]["$ai_input_tokens"] for e in capture.events) == [0, 1, 2]


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "events.jsonl"
    assert main(["demo", "--log", str(path), "--sessions", "2", "--turns", "2"]) == 0
    return path


def test_backfill_demo_log_to_posthog(
    demo_log: Path, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agent-usage export posthog` sends one $ai_generation per model of every event."""
    capsys.readouterr()
    events = list(read_events(demo_log, types={"llm_usage"}))
    code = main(["export", "posthog", str(demo_log), "--endpoint", capture.url, "--api-key", "k"])
    out = capsys.readouterr().out
    assert code == 0, out
    n = len(capture.events)
    assert n == sum(len(e["models"]) for e in events)
    assert out == (
        f"exported {len(events)} llm_usage events to posthog as {n} $ai_generation events: "
        f"delivered {n}, not delivered 0\n"
    )
    assert {g["properties"]["$ai_trace_id"] for g in capture.events} == {
        e["invoke_id"] for e in events
    }


def test_backfill_demo_log_to_otel(
    demo_log: Path, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agent-usage export otel` sends one span per event and the metrics over OTLP/HTTP."""
    capsys.readouterr()
    events = list(read_events(demo_log, types={"llm_usage"}))
    assert main(["export", "otel", str(demo_log), "--endpoint", capture.url]) == 0
    n = len(events)
    assert capsys.readouterr().out == (
        f"exported {n} llm_usage events to otel: delivered {n}, not delivered 0\n"
    )
    assert sorted(capture.span_invoke_ids()) == sorted(e["invoke_id"] for e in events)
    assert len(capture.requests["/v1/metrics"]) >= 1


@pytest.mark.parametrize("bound", ["--since", "--until"])
def test_backfill_time_bounds_filter(
    bound: str, demo_log: Path, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since keeps events at or after a time, --until those before it, as in report."""
    events = sorted(read_events(demo_log, types={"llm_usage"}), key=lambda e: e["timestamp"])
    at = events[-1]["timestamp"]
    args = ["export", "posthog", str(demo_log), "--endpoint", capture.url, "--api-key", "k"]
    assert main([*args, bound, at]) == 0
    kept = [e for e in events if (e["timestamp"] >= at) == (bound == "--since")]
    assert 0 < len(kept) < len(events)
    assert f"exported {len(kept)} llm_usage events" in capsys.readouterr().out
    sent = {g["properties"]["$ai_trace_id"] for g in capture.events}
    assert sent == {e["invoke_id"] for e in kept}


@pytest.mark.parametrize("target", ["otel", "posthog"])
def test_backfill_to_a_dead_endpoint_says_what_was_not_delivered(
    target: str, demo_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening: `delivered 0, not delivered N (why)`, worded alike for both; exit 1."""
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    logging.getLogger("posthog").setLevel(logging.CRITICAL)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    args = ["export", target, str(demo_log), "--endpoint", endpoint, "--timeout", "2"]
    started = time.monotonic()
    assert main([*args, "--api-key", "k"] if target == "posthog" else args) == 1
    assert time.monotonic() - started < 2 + 2  # the --timeout bounds the wait
    out = capsys.readouterr().out
    events = list(read_events(demo_log, types={"llm_usage"}))
    n = len(events) if target == "otel" else sum(len(e["models"]) for e in events)
    unit = "" if target == "otel" else f" as {n} $ai_generation events"
    assert out.startswith(
        f"exported {len(events)} llm_usage events to {target}{unit}: "
        f"delivered 0, not delivered {n} ("
    ), out
    assert "sent" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "posthog", "{log}"], "--api-key"),
        (["export", "otel", "{log}", "--since", "yesterday"], "--since: not an ISO date"),
        (["export", "otel", "{log}", "--header", "novalue"], "--header"),
        (["export", "otel", "{missing}"], "no such file"),
    ],
    ids=["posthog-without-key", "bad-since", "bad-header", "missing-file"],
)
def test_backfill_bad_input_is_one_line(
    argv: list[str],
    message: str,
    demo_log: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bad input is a one-line error and exit code 2."""
    monkeypatch.delenv("POSTHOG_API_KEY", raising=False)
    capsys.readouterr()
    argv = [a.format(log=demo_log, missing=tmp_path / "nope.jsonl") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("opentelemetry", ["export", "otel", "LOG"], "otel"),
        ("posthog", ["export", "posthog", "LOG", "--api-key", "k"], "posthog"),
        ("duckdb", ["report", "LOG", "--engine", "duckdb"], "duckdb"),
        ("pyarrow", ["export", "parquet", "LOG", "-o", "OUT"], "parquet"),
    ],
    ids=["otel", "posthog", "duckdb", "parquet"],
)
def test_missing_extra_is_a_one_line_cli_error(
    tmp_path: Path, module: str, argv: list[str], extra: str
) -> None:
    """Each command that needs an extra says which, in one line with exit 2, not a traceback."""
    log = tmp_path / "events.jsonl"
    log.write_text('{"type": "llm_usage", "timestamp": "2026-11-22T09:00:00+00:00"}\n')
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from agent_usage._cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    paths = {"LOG": str(log), "OUT": str(tmp_path / "out")}
    out = subprocess.run(
        [sys.executable, "-c", code, *(paths.get(a, a) for a in argv)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert f"pip install 'langchain-agent-usage[{extra}]'" in out.stderr
    assert "Traceback" not in out.stderr
