"""What every exporter shares: the bounded background batch, dead endpoints, exit, back-fill."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from agent_usage import EventLog, read_events, track_usage
from agent_usage.cli import main
from agent_usage.exporters import BatchExporter, OTelExporter, PostHogExporter
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um

EVENT = {"type": "llm_usage", "event_id": "e", "invoke_id": "i", "input_tokens": 1}


class Gate(BatchExporter):
    """A backend that holds each batch until released, and may raise."""

    def __init__(self, *, fail: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def _send(self, batch: Sequence[Mapping[str, Any]]) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise ConnectionError("backend down")
        self.batches.append(len(batch))


def test_full_queue_drops_and_counts_without_blocking() -> None:
    """With the backend stuck and the queue full, export returns at once and counts drops."""
    gate = Gate(max_queue_size=3)
    gate.export(EVENT)
    assert gate.entered.wait(5)  # the worker holds the first event
    started = time.perf_counter()
    for _ in range(100):
        gate.export(EVENT)
    assert time.perf_counter() - started < 0.1
    assert (gate.dropped, gate.stats["queued"]) == (97, 3)
    assert gate.flush(0.05) is False  # still stuck: flush reports the timeout
    gate.release.set()
    assert gate.flush(5)
    assert (gate.sent, gate.dropped, gate.failed) == (4, 97, 0)
    assert sum(gate.batches) == 4
    gate.shutdown(5)


def test_failing_backend_is_logged_once_counted_and_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A raising send never reaches the caller; it is logged once and every event counted."""
    gate = Gate(fail=True, max_batch_size=1)
    gate.release.set()
    with caplog.at_level(logging.WARNING, logger="agent_usage.exporters._batch"):
        for _ in range(5):
            gate.export(EVENT)
        assert gate.flush(5)
    assert (gate.sent, gate.failed) == (0, 5)
    assert gate.failures == {"sending (ConnectionError)": 5}
    assert len([r for r in caplog.records if "ConnectionError" in r.getMessage()]) == 1
    gate.fail = False
    gate.export(EVENT)
    assert gate.flush(5)
    assert gate.sent == 1  # the worker is still alive
    gate.shutdown(5)


def test_after_shutdown_events_are_dropped() -> None:
    """shutdown drains what was queued; later exports are counted as dropped."""
    gate = Gate()
    gate.release.set()
    gate.export(EVENT)
    assert gate.shutdown(5)
    gate.export(EVENT)
    assert (gate.sent, gate.dropped) == (1, 1)
    assert gate.shutdown(5)  # idempotent


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_posthog() -> tuple[Any, Callable[[], object]]:
    exporter = PostHogExporter("k", host=f"http://127.0.0.1:{closed_port()}", max_retries=0)
    return exporter, lambda: exporter.shutdown(2)


def dead_otel() -> tuple[Any, Callable[[], object]]:
    url = f"http://127.0.0.1:{closed_port()}"
    meters = MeterProvider(
        metric_readers=[
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"{url}/v1/metrics", timeout=1),
                export_interval_millis=50,  # export (and fail) all the time
            )
        ]
    )
    tracers = TracerProvider()
    tracers.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=1))
    )
    exporter = OTelExporter(meters, tracers)

    def close() -> None:
        exporter.shutdown(2)
        meters.shutdown(timeout_millis=2000)
        tracers.shutdown()

    return exporter, close


def tiny_graph() -> Any:
    model = ScriptedChatModel(
        script=[AIMessage(content="ok", usage_metadata=um(100, 10, cache_read=50))]
    )
    graph = StateGraph(MessagesState)
    graph.add_node("model", lambda s: {"messages": [model.invoke(s["messages"])]})
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    return graph.compile()


@pytest.mark.parametrize("build", [dead_posthog, dead_otel], ids=["posthog", "otel"])
def test_dead_endpoint_does_not_slow_or_break_the_agent(
    build: Callable[[], tuple[Any, Callable[[], object]]], tmp_path: Path
) -> None:
    """An exporter pointed at a closed port adds no visible latency and no error to invokes."""
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # the SDK logs each retry
    logging.getLogger("posthog").setLevel(logging.CRITICAL)
    exporter, close = build()
    rounds = 20
    try:
        with EventLog(tmp_path / "plain.jsonl") as log:
            plain = track_usage(tiny_graph(), log)
            plain.invoke({"messages": [("user", "warm up")]})
            started = time.perf_counter()
            for _ in range(rounds):
                expected = plain.invoke({"messages": [("user", "hi")]})
            baseline = time.perf_counter() - started
        with EventLog(tmp_path / "exported.jsonl") as log:
            tracked = track_usage(tiny_graph(), log, exporters=[exporter])
            started = time.perf_counter()
            for _ in range(rounds):
                result = tracked.invoke({"messages": [("user", "hi")]})
            with_exporter = time.perf_counter() - started
        assert result["messages"][-1].content == expected["messages"][-1].content == "ok"
        assert with_exporter - baseline < 0.5, (with_exporter, baseline)
        assert len(list(read_events(tmp_path / "exported.jsonl", types={"llm_usage"}))) == rounds
        exporter.flush(5)
        assert exporter.sent + exporter.dropped == rounds
        if isinstance(exporter, PostHogExporter):
            assert exporter.failed >= 1  # the client's post failed and was counted
    finally:
        close()


@pytest.mark.parametrize("extra", ["otel", "posthog"])
def test_missing_extra_fails_at_construction_with_the_install_hint(extra: str) -> None:
    """Without the SDK installed, building the exporter says which extra to install."""
    module, build = {
        "otel": ("opentelemetry", "OTelExporter()"),
        "posthog": ("posthog", "PostHogExporter('k')"),
    }[extra]
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from agent_usage.exporters import OTelExporter, PostHogExporter\n"
        f"try:\n    {build}\nexcept ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"pip install 'langchain-agent-usage[{extra}]'" in out.stdout


class Capture:
    """A local receiver for both wires: PostHog `/batch/` JSON and OTLP `/v1/traces` protobuf."""

    def __init__(self) -> None:
        self.posthog: list[dict[str, Any]] = []
        self.spans: list[Any] = []
        self.metric_posts = 0
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/batch/":
                    capture.posthog.extend(json.loads(body)["batch"])
                elif self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            capture.spans.extend(ss.spans)
                elif self.path == "/v1/metrics":
                    capture.metric_posts += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.server.shutdown()
    c.server.server_close()


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
    assert sorted(e["properties"]["$ai_input_tokens"] for e in capture.posthog) == [0, 1, 2]


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
    assert f"exported {len(events)} llm_usage events to posthog: sent {len(events)}" in out
    assert len(capture.posthog) == sum(len(e["models"]) for e in events)
    assert {g["properties"]["$ai_trace_id"] for g in capture.posthog} == {
        e["invoke_id"] for e in events
    }


def test_backfill_demo_log_to_otel(
    demo_log: Path, capture: Capture, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agent-usage export otel` sends one span per event and the metrics over OTLP/HTTP."""
    capsys.readouterr()
    events = list(read_events(demo_log, types={"llm_usage"}))
    assert main(["export", "otel", str(demo_log), "--endpoint", capture.url]) == 0
    assert "failed 0" in capsys.readouterr().out
    assert sorted(
        next(a.value.string_value for a in s.attributes if a.key == "agent_usage.invoke_id")
        for s in capture.spans
    ) == sorted(e["invoke_id"] for e in events)
    assert capture.metric_posts >= 1


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
    sent = {g["properties"]["$ai_trace_id"] for g in capture.posthog}
    assert sent == {e["invoke_id"] for e in kept}


def test_backfill_to_a_dead_otlp_endpoint_says_so_and_exits_1(
    demo_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batches the OTLP endpoint never took are reported apart from the event counts."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    args = ["export", "otel", str(demo_log), "--endpoint", endpoint, "--timeout", "2"]
    assert main(args) == 1
    out = capsys.readouterr().out
    n = len(list(read_events(demo_log, types={"llm_usage"})))
    assert out.startswith(f"exported {n} llm_usage events to otel: sent {n}, dropped 0, failed 0; ")
    assert "OTLP export batch(es) did not reach the endpoint" in out


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
