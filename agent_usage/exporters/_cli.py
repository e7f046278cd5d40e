"""`agent-usage export otel|posthog PATH`: back-fill a log into OpenTelemetry or PostHog.

Reads the `llm_usage` events of PATH (and its rotated siblings) as `agent-usage
report` does (same --since/--until), sends them through the same exporter the
wrapper uses, flushes, and prints how many were sent, dropped and failed, and for
OpenTelemetry how many OTLP batches the endpoint did not take. Exit code 0 when
every event was handed on and nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from agent_usage._cli._common import CliError, add_time_arguments, open_source

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage export`."""
    parser.add_argument("target", choices=("otel", "posthog"), help="where to send the events")
    parser.add_argument("path", help="the events.jsonl log to back-fill")
    add_time_arguments(parser)
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="otel: OTLP/HTTP base URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT or "
        "http://localhost:4318); posthog: the PostHog host",
    )
    parser.add_argument(
        "--api-key", metavar="KEY", help="posthog: project API key (default: $POSTHOG_API_KEY)"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="otel: an HTTP header for the OTLP exporter (repeatable)",
    )
    parser.add_argument("--service-name", default="agent-usage", help="otel: service.name")
    parser.add_argument("--no-spans", action="store_true", help="otel: metrics only")
    parser.add_argument(
        "--session-id-on-metrics",
        action="store_true",
        help="otel: put the session id on metric points (high cardinality)",
    )
    parser.add_argument(
        "--distinct-id-key",
        default="user_id",
        help="posthog: metadata key holding the distinct id (default: user_id)",
    )
    parser.add_argument(
        "--historical", action="store_true", help="posthog: mark events as a historical import"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the final flush"
    )


# A builder returns the exporter, its close(timeout) -> flushed in time, and a
# function naming what failed beyond the exporter's own counts (or None).
_Built = tuple[Any, Callable[[float], bool], Callable[[], str | None]]


def _otel_exporter(args: argparse.Namespace) -> _Built:
    from .otel import OTelExporter

    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise CliError("needs the otel extra: pip install 'langchain-agent-usage[otel]'") from None
    headers: dict[str, str] = {}
    for item in args.header:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--header must be NAME=VALUE; got {item!r}")
        headers[name.strip()] = value.strip()
    base = args.endpoint.rstrip("/") if args.endpoint else None
    timeout = max(1.0, args.timeout / 2)
    metric_exporter = OTLPMetricExporter(
        endpoint=f"{base}/v1/metrics" if base else None,
        headers=headers or None,
        timeout=timeout,
    )
    resource = Resource.create({"service.name": args.service_name})
    # The SDK's force_flush reports success even when the export failed: watch
    # the exporters' own results so the printed counts tell the truth.
    failures = _OtlpFailures()
    reader = PeriodicExportingMetricReader(
        failures.metrics(metric_exporter),
        export_interval_millis=3_600_000,  # the back-fill flushes explicitly at the end
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    tracer_provider = None
    if not args.no_spans:
        tracer_provider = TracerProvider(resource=resource)
        span_exporter = OTLPSpanExporter(
            endpoint=f"{base}/v1/traces" if base else None,
            headers=headers or None,
            timeout=timeout,
        )
        tracer_provider.add_span_processor(BatchSpanProcessor(failures.spans(span_exporter)))
    exporter = OTelExporter(
        meter_provider,
        tracer_provider,
        spans=not args.no_spans,
        session_id_on_metrics=args.session_id_on_metrics,
    )

    def close(timeout: float) -> bool:
        ok = exporter.shutdown(timeout)
        meter_provider.shutdown(timeout_millis=timeout * 1000)
        if tracer_provider is not None:
            tracer_provider.shutdown()
        return ok

    def problems() -> str | None:
        n = failures.batches
        return f"{n} OTLP export batch(es) did not reach the endpoint" if n else None

    return exporter, close, problems


class _OtlpFailures:
    """Counts OTLP export batches that failed, by wrapping the SDK exporters."""

    def __init__(self) -> None:
        self.batches = 0

    def metrics(self, inner: Any) -> Any:
        from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

        counter = self

        class Counting(MetricExporter):
            def __init__(self) -> None:
                super().__init__(
                    preferred_temporality=inner._preferred_temporality,
                    preferred_aggregation=inner._preferred_aggregation,
                )

            def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kw: Any) -> Any:
                result = inner.export(metrics_data, timeout_millis=timeout_millis, **kw)
                if result is not MetricExportResult.SUCCESS:
                    counter.batches += 1
                return result

            def force_flush(self, timeout_millis: float = 10_000) -> bool:
                return bool(inner.force_flush(timeout_millis))

            def shutdown(self, timeout_millis: float = 30_000, **kw: Any) -> None:
                inner.shutdown(timeout_millis=timeout_millis, **kw)

        return Counting()

    def spans(self, inner: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        counter = self

        class Counting(SpanExporter):
            def export(self, spans: Any) -> Any:
                result = inner.export(spans)
                if result is not SpanExportResult.SUCCESS:
                    counter.batches += 1
                return result

            def force_flush(self, timeout_millis: int = 30_000) -> bool:
                return bool(inner.force_flush(timeout_millis))

            def shutdown(self) -> None:
                inner.shutdown()

        return Counting()


def _posthog_exporter(args: argparse.Namespace) -> _Built:
    from .posthog import PostHogExporter

    api_key = args.api_key or os.environ.get("POSTHOG_API_KEY")
    if not api_key:
        raise CliError("posthog needs --api-key (or $POSTHOG_API_KEY)")
    try:
        exporter = PostHogExporter(
            api_key,
            host=args.endpoint,
            distinct_id_key=args.distinct_id_key,
            historical_migration=args.historical,
        )
    except ImportError:
        raise CliError("needs the posthog extra: pip install 'langchain-agent-usage[posthog]'") from None
    return exporter, exporter.shutdown, lambda: None


def run(args: argparse.Namespace) -> int:
    """Back-fill the log, flush, print the counts."""
    events = iter(open_source(args))  # a missing file or a bad date fails before any setup
    first = next(events, None)
    build = _otel_exporter if args.target == "otel" else _posthog_exporter
    exporter, close, problems = build(args)
    # A back-fill must not drop: drain the queue whenever it is half full.
    chunk = max(1, exporter.max_queue_size // 2)
    count = 0
    if first is not None:
        exporter.export(first)
        count = 1
        for event in events:
            exporter.export(event)
            count += 1
            if count % chunk == 0:
                exporter.flush(args.timeout)
    closed = close(args.timeout)
    stats = exporter.stats
    problem = problems()
    print(
        f"exported {count} llm_usage events to {args.target}: "
        f"sent {stats['sent']}, dropped {stats['dropped']}, failed {stats['failed']}"
        + ("" if problem is None else f"; {problem}")
        + ("" if closed else " (final flush timed out)")
    )
    ok = closed and problem is None and stats["dropped"] == 0 and stats["failed"] == 0
    return 0 if ok else 1
