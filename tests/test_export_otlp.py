"""OTLP/HTTP on the wire: a local receiver decodes what the SDK posts of our metrics and spans."""

from __future__ import annotations

import pytest
from export_helpers import EVENT, Capture
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agent_usage.exporters import OTelExporter
from agent_usage.exporters import _otel_names as names


def test_otlp_http_wire_path() -> None:
    """Over OTLP/HTTP to a local receiver, the protobuf holds our metrics and span."""
    receiver = Capture()
    try:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{receiver.url}/v1/metrics", timeout=5),
            export_interval_millis=3_600_000,
        )
        meters = MeterProvider(metric_readers=[reader])
        tracers = TracerProvider()
        tracers.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", timeout=5))
        )
        exporter = OTelExporter(meters, tracers)
        exporter.export(EVENT)
        assert exporter.shutdown(10)
        meters.shutdown()
        tracers.shutdown()
    finally:
        receiver.close()

    points: dict[tuple[str, str, str], float] = {}
    units: dict[str, str] = {}
    for request in receiver.requests["/v1/metrics"]:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                assert sm.scope.name == "agent_usage"
                for metric in sm.metrics:
                    units[metric.name] = metric.unit
                    kind = metric.WhichOneof("data")
                    for p in getattr(metric, kind).data_points:
                        attrs = {a.key: a.value.string_value for a in p.attributes}
                        value = p.sum if kind == "histogram" else p.as_int or p.as_double
                        key = (
                            metric.name,
                            attrs.get("gen_ai.response.model", ""),
                            attrs.get("gen_ai.token.type")
                            or attrs.get("agent_usage.token.type", ""),
                        )
                        points[key] = value
    assert units == {i.name: i.unit for i in names.INSTRUMENTS}
    assert points[("gen_ai.client.token.usage", "claude-sonnet-4-5", "input")] == 1000
    assert points[("gen_ai.client.token.usage", "gpt-5-mini", "output")] == 60
    assert points[("agent_usage.token.usage", "claude-sonnet-4-5", "cache_read")] == 600
    assert points[("gen_ai.usage.cost", "claude-sonnet-4-5", "")] == pytest.approx(0.0123)
    assert points[("agent_usage.invokes", "", "")] == 1

    (trace_request,) = receiver.requests["/v1/traces"]
    (span,) = trace_request.resource_spans[0].scope_spans[0].spans
    attrs = {a.key: a.value for a in span.attributes}
    assert span.name == "invoke_agent"
    assert attrs["gen_ai.usage.input_tokens"].int_value == 1300
    assert attrs["gen_ai.usage.cache_read.input_tokens"].int_value == 600
    assert attrs["session.id"].string_value == "sess-1"
    assert span.end_time_unix_nano - span.start_time_unix_nano == 1_500_000_000


def test_otlp_http_counts_what_the_receiver_took() -> None:
    """An exporter built by otlp_http counts the spans and metric exports the endpoint took."""
    receiver = Capture()
    try:
        exporter = OTelExporter.otlp_http(receiver.url, timeout=5)
        for i in range(3):
            exporter.export({**EVENT, "invoke_id": f"inv-{i}"})
        assert exporter.flush(10)
        assert exporter.shutdown(10)
    finally:
        receiver.close()
    stats = exporter.stats
    assert stats["sent"] == len(receiver.spans) == 3
    assert stats["metric_exports_sent"] == len(receiver.requests["/v1/metrics"]) >= 1
    assert (stats["failed"], stats["dropped"], stats["pending"]) == (0, 0, 0)
    assert stats["metrics_covered"] == 3
