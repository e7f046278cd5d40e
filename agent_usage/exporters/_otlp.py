"""OTLP/HTTP providers that an `OTelExporter` owns: bounded in time, counting delivery.

Built by `OTelExporter.otlp_http` (and `agent-usage export otel`). Unlike
providers an application builds with the SDK's defaults:

- each export, retries included, takes at most `timeout` (the SDK's default is
  10 s per exporter, and its processors wait up to 30 s);
- the providers do not register the SDK's exit hooks, which shut down without
  a deadline (11-13 s with the collector down); the exporter shuts them down at
  exit within its `exit_timeout`;
- the OTLP exporters are wrapped to count what the endpoint took: spans one by
  one, metrics per export. The SDK's `force_flush` answers True even when the
  export failed, so this is the only place the truth is visible.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ._common import Counters, reset_after_fork

__all__ = ["Pipeline"]


class Pipeline:
    """A MeterProvider and TracerProvider exporting over OTLP/HTTP, with delivery counts.

    `counters` is set by the exporter that owns the pipeline: spans the
    endpoint took are its `sent`, spans it refused its `failed`. With spans off,
    `sent` is the number of events the last successful metrics export covered.
    """

    def __init__(
        self,
        endpoint: str | None,
        *,
        headers: dict[str, str],
        service_name: str,
        timeout: float,
        export_interval: float,
        spans: bool,
    ) -> None:
        self.counters = Counters("OTelExporter")
        self.spans = spans
        self.reset()
        reset_after_fork(self)  # a forked child counts its own exports
        base = endpoint.rstrip("/") if endpoint else None
        millis = max(1, int(timeout * 1000))
        resource = Resource.create({"service.name": service_name})
        metric_exporter = OTLPMetricExporter(
            endpoint=f"{base}/v1/metrics" if base else None,
            headers=headers or None,
            timeout=timeout,
        )
        reader = PeriodicExportingMetricReader(
            _CountingMetrics(metric_exporter, self),
            export_interval_millis=max(1, int(export_interval * 1000)),
            export_timeout_millis=millis,
        )
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=[reader], shutdown_on_exit=False
        )
        self.tracer_provider: TracerProvider | None = None
        if spans:
            span_exporter = OTLPSpanExporter(
                endpoint=f"{base}/v1/traces" if base else None,
                headers=headers or None,
                timeout=timeout,
            )
            self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
            self.tracer_provider.add_span_processor(
                BatchSpanProcessor(
                    _CountingSpans(span_exporter, self), export_timeout_millis=millis
                )
            )

    def reset(self) -> None:
        """Zero the export counts (also in a forked child, with a fresh lock)."""
        self._lock = threading.Lock()
        self.metric_exports_sent = 0
        self.metric_exports_failed = 0
        self.metrics_covered = 0  # events recorded before the last metrics export that got through
        self.finished = False  # shutdown ran to its end: nothing is pending any more
        self._last_metrics_ok: bool | None = None
        self._last_spans_ok: bool | None = None

    def shutdown(self, timeout: float | None) -> bool:
        """Export what is left and release the providers; True when the last exports got through."""
        millis = 30_000 if timeout is None else max(1, int(timeout * 1000))
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        self.meter_provider.shutdown(timeout_millis=millis)
        self.finished = True
        return self.last_export_ok()

    def last_export_ok(self) -> bool:
        """False when the latest metrics or span export failed."""
        return self._last_metrics_ok is not False and self._last_spans_ok is not False

    def stats(self) -> dict[str, int | None]:
        """Delivery counts; see `OTelExporter.stats`."""
        c = self.counters
        failed, dropped = c.failed, c.dropped
        rest = max(0, c.handed - c.sent - c.failed)
        if self.finished:
            # Nothing is in flight after a completed shutdown: a span still
            # unaccounted for was dropped by the SDK's full queue; an event with
            # spans off was in the metrics exports that failed.
            if self.spans:
                dropped += rest
            else:
                failed += rest
            rest = 0
        return {
            "handed": c.handed,
            "sent": c.sent,
            "failed": failed,
            "dropped": dropped,
            "pending": rest,
            "metrics_covered": self.metrics_covered,
            "metric_exports_sent": self.metric_exports_sent,
            "metric_exports_failed": self.metric_exports_failed,
        }

    def metrics_exported(self, ok: bool, covered: int) -> None:
        """Count one metrics export; `covered`: events recorded before it was collected."""
        with self._lock:
            self._last_metrics_ok = ok
            if ok:
                self.metric_exports_sent += 1
                self.metrics_covered = max(self.metrics_covered, covered)
            else:
                self.metric_exports_failed += 1
        if ok and not self.spans:
            # Cumulative temporality: a metrics export carries every event recorded
            # before it, so it delivers them all.
            self.counters.cover(covered)
        elif not ok:
            self.counters.lost("the OTLP endpoint did not take a metrics export")

    def spans_exported(self, ok: bool, count: int) -> None:
        """Count one span export of `count` spans."""
        self._last_spans_ok = ok
        if ok:
            self.counters.add(sent=count)
        else:
            self.counters.lost("the OTLP endpoint did not take a span export", failed=count)


class _CountingMetrics(MetricExporter):
    """The OTLP metric exporter, reporting each export's result to the pipeline."""

    def __init__(self, inner: OTLPMetricExporter, pipeline: Pipeline) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._pipeline = pipeline

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        covered = self._pipeline.counters.handed  # events recorded before this collection
        result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        ok = result is MetricExportResult.SUCCESS
        self._pipeline.metrics_exported(ok, covered)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class _CountingSpans(SpanExporter):
    """The OTLP span exporter, reporting each export's result to the pipeline."""

    def __init__(self, inner: OTLPSpanExporter, pipeline: Pipeline) -> None:
        self._inner = inner
        self._pipeline = pipeline

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        self._pipeline.spans_exported(result is SpanExportResult.SUCCESS, len(spans))
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]
