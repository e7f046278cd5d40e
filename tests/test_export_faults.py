"""Exporters under faults: a collector that never answers, process exit, fork().

Each case runs in a child process (a fresh SDK, real exit hooks, a real fork)
that measures its own timings, so the seconds spent importing LangChain on a
loaded machine do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from export_helpers import Capture, black_hole

# How the child builds each exporter for URL; `otel-yours` is the application's
# own providers with the SDK's default timeouts (10 s per export, 30 s per flush).
BUILD = {
    "otel-yours": """
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        meters = MeterProvider(metric_readers=[
            PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=URL + "/v1/metrics"))
        ])
        tracers = TracerProvider()
        spans = OTLPSpanExporter(endpoint=URL + "/v1/traces")
        tracers.add_span_processor(BatchSpanProcessor(spans))
        exporter = OTelExporter(meters, tracers)
    """,
    "otel": """
        exporter = OTelExporter.otlp_http(URL, exit_timeout=EXIT_TIMEOUT)
    """,
    "posthog": """
        exporter = PostHogExporter("k", host=URL)
    """,
}

PRELUDE = """
    import json, logging, os, sys, time, warnings
    logging.disable(logging.CRITICAL)  # the SDKs log every failed attempt
    warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, as gunicorn does
    from agent_usage.exporters import OTelExporter, PostHogExporter
    URL, EXIT_TIMEOUT = sys.argv[1], float(sys.argv[2])

    def event(invoke_id):
        return {"type": "llm_usage", "event_id": invoke_id, "invoke_id": invoke_id,
                "timestamp": "2026-11-30T10:00:00+00:00", "duration_ms": 5.0,
                "model": "gpt-4o", "input_tokens": 3, "output_tokens": 1}
"""


def run_child(kind: str, body: str, url: str, *, exit_timeout: float = 2.0) -> Any:
    """Run PRELUDE + BUILD[kind] + body in a child; return (its last JSON line, exit seconds)."""
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(BUILD[kind]) + textwrap.dedent(body)
    out = subprocess.run(
        [sys.executable, "-c", code, url, str(exit_timeout)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    exited = time.time()
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result, exited - result.get("done_at", exited)


@pytest.fixture
def hole() -> Iterator[str]:
    yield from black_hole()


@pytest.mark.parametrize("kind", ["otel-yours", "otel", "posthog"])
def test_shutdown_is_bounded_by_its_timeout_with_the_collector_down(kind: str, hole: str) -> None:
    """shutdown(1.5) with a collector that never answers returns False within 1.5 s."""
    body = """
        for i in range(5):
            exporter.export(event(f"i{i}"))
        started = time.monotonic()
        ok = exporter.shutdown(1.5)
        print(json.dumps({"ok": ok, "took": time.monotonic() - started}), flush=True)
        os._exit(0)  # exit is measured by the next test
    """
    result, _ = run_child(kind, body, hole)
    assert result["ok"] is False  # nothing was delivered, and shutdown says so
    assert result["took"] < 1.5 + 0.5, result


@pytest.mark.parametrize("kind", ["otel", "posthog"])
def test_process_exit_is_bounded_with_the_collector_down(kind: str, hole: str) -> None:
    """A process that exports to a hung collector and just exits is gone within exit_timeout."""
    body = """
        for i in range(5):
            exporter.export(event(f"i{i}"))
        print(json.dumps({"done_at": time.time()}), flush=True)
    """
    _, exit_seconds = run_child(kind, body, hole, exit_timeout=2.0)
    assert exit_seconds < 2.0 + 1.5, exit_seconds


@pytest.fixture
def capture() -> Iterator[Capture]:
    c = Capture()
    yield c
    c.close()


@pytest.mark.parametrize("kind", ["otel-yours", "otel", "posthog"])
def test_exporter_made_before_fork_delivers_from_the_child(kind: str, capture: Capture) -> None:
    """A pre-fork server's worker (gunicorn, celery) delivers through the parent's exporter."""
    body = """
        exporter.export(event("parent-0"))
        assert exporter.flush(10)  # the SDK's threads are running when the fork happens
        pid = os.fork()
        if pid == 0:
            for i in range(200):
                exporter.export(event(f"child-{i}"))
            ok = exporter.shutdown(10)
            stats = exporter.stats
            # sent is None with the application's providers: only they see delivery.
            os._exit(0 if ok and stats["sent"] in (200, None) and stats["handed"] == 200 else 3)
        _, status = os.waitpid(pid, 0)
        exporter.export(event("parent-1"))
        ok = exporter.shutdown(10)
        print(json.dumps({"child": os.waitstatus_to_exitcode(status), "parent_ok": ok,
                          "parent": exporter.stats}), flush=True)
    """
    result, _ = run_child(kind, body, capture.url)
    if kind == "posthog":
        received = [g["properties"]["$ai_trace_id"] for g in capture.events]
    else:
        received = capture.span_invoke_ids()
    expected = ["parent-0", "parent-1", *(f"child-{i}" for i in range(200))]
    assert sorted(received) == sorted(expected)
    assert result["child"] == 0  # the child's own counts: 200 sent
    assert result["parent_ok"] is True
    assert result["parent"]["handed"] == 2  # the parent's counts never include the child's
    assert result["parent"]["sent"] in (2, None)
