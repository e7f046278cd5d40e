"""The OpenTelemetry exporter against the real SDK: in-memory readers and an OTLP/HTTP receiver."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from export_helpers import EVENT
from langchain_core.messages import AIMessage
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as semconv_metrics
from opentelemetry.trace import StatusCode
from providers.expect import one_node_graph

from agent_usage import EventLog, read_events, track_usage
from agent_usage.exporters import OTelExporter
from agent_usage.exporters import _otel_names as names
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um


class Sdk:
    """A real SDK setup reading into memory."""

    def __init__(self, **options: Any) -> None:
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.spans = InMemorySpanExporter()
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.spans))
        self.exporter = OTelExporter(self.meters, self.tracers, **options)

    def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            self.exporter.export(event)

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, sum or value) of every point of metric `name`."""
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        for p in metric.data.data_points:
                            point: Any = p  # a histogram point has .sum, a counter's .value
                            value = point.sum if hasattr(point, "bucket_counts") else point.value
                            out.append((dict(point.attributes or {}), value))
        return out

    def close(self) -> None:
        self.exporter.shutdown(5)
        self.meters.shutdown()
        self.tracers.shutdown()


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    s = Sdk()
    yield s
    s.close()


def by(points: list[tuple[dict[str, Any], Any]], *keys: str) -> dict[tuple[Any, ...], Any]:
    return {tuple(attrs.get(k) for k in keys): value for attrs, value in points}


def test_token_histogram_one_point_per_model_and_type(sdk: Sdk) -> None:
    """gen_ai.client.token.usage records input/output per model with semconv attributes."""
    sdk.send(EVENT)
    points = sdk.points("gen_ai.client.token.usage")
    assert by(points, "gen_ai.response.model", "gen_ai.token.type") == {
        ("claude-sonnet-4-5", "input"): 1000,
        ("claude-sonnet-4-5", "output"): 200,
        ("gpt-5-mini", "input"): 300,
        ("gpt-5-mini", "output"): 60,
    }
    attrs = next(a for a, _ in points if a["gen_ai.response.model"] == "claude-sonnet-4-5")
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.response.model": "claude-sonnet-4-5",
        "gen_ai.token.type": "input",
    }


def test_cache_and_reasoning_counter_only_non_zero(sdk: Sdk) -> None:
    """agent_usage.token.usage carries cache read/creation and reasoning, zeros left out."""
    sdk.send(EVENT, EVENT)
    assert by(
        sdk.points("agent_usage.token.usage"), "gen_ai.response.model", "agent_usage.token.type"
    ) == {
        ("claude-sonnet-4-5", "cache_read"): 1200,
        ("claude-sonnet-4-5", "cache_creation"): 400,
        ("gpt-5-mini", "reasoning"): 80,
    }


def test_cost_recorded_only_where_priced(sdk: Sdk) -> None:
    """gen_ai.usage.cost is recorded for priced models; an unknown price is no point, not 0."""
    sdk.send(EVENT)
    assert by(sdk.points("gen_ai.usage.cost"), "gen_ai.response.model") == {
        ("claude-sonnet-4-5",): pytest.approx(0.0123)
    }


def test_invokes_and_duration_by_status(sdk: Sdk) -> None:
    """One invoke per event by status, and its duration in seconds."""
    sdk.send(EVENT, {**EVENT, "status": "error", "duration_ms": 500.0})
    assert by(sdk.points("agent_usage.invokes"), "agent_usage.status") == {
        ("ok",): 1,
        ("error",): 1,
    }
    assert by(sdk.points("agent_usage.invoke.duration"), "agent_usage.status") == {
        ("ok",): pytest.approx(1.5),
        ("error",): pytest.approx(0.5),
    }


@pytest.mark.parametrize(
    ("opt_in", "expected"),
    [(False, None), (True, "sess-1")],
    ids=["off-by-default", "opted-in"],
)
def test_session_id_on_metrics_only_when_opted_in(opt_in: bool, expected: str | None) -> None:
    """The session id is a metric attribute only with session_id_on_metrics=True."""
    s = Sdk(session_id_on_metrics=opt_in)
    try:
        s.send(EVENT)
        for name in ("gen_ai.client.token.usage", "agent_usage.invokes"):
            assert {a.get("gen_ai.conversation.id") for a, _ in s.points(name)} == {expected}
        attributes = s.spans.get_finished_spans()[0].attributes or {}
        assert attributes["gen_ai.conversation.id"] == "sess-1"
    finally:
        s.close()


def test_span_per_invoke_with_usage_session_and_times(sdk: Sdk) -> None:
    """One invoke_agent span: gen_ai.usage.* totals, ids, status, times from the event."""
    sdk.send(EVENT)
    (span,) = sdk.spans.get_finished_spans()
    assert span.name == "invoke_agent"
    end = 1795389249123456000  # 2026-11-22T23:14:09.123456Z in ns
    assert (span.start_time, span.end_time) == (end - 1_500_000_000, end)
    attrs = dict(span.attributes or {})
    assert attrs == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.usage.input_tokens": 1300,
        "gen_ai.usage.output_tokens": 260,
        "gen_ai.usage.cache_read.input_tokens": 600,
        "gen_ai.usage.cache_creation.input_tokens": 200,
        "gen_ai.usage.reasoning.output_tokens": 40,
        "gen_ai.conversation.id": "sess-1",
        "session.id": "sess-1",
        "agent_usage.status": "ok",
        "agent_usage.invoke_id": "inv-1",
        "agent_usage.event_id": "e-1",
        "agent_usage.llm_calls": 3,
        "agent_usage.llm_calls_without_usage": 0,
        "agent_usage.models": ("claude-sonnet-4-5", "gpt-5-mini"),
        "agent_usage.metadata.user_id": "u-7",
        "agent_usage.metadata.app": "support",
    }
    assert span.status.status_code is StatusCode.UNSET


def test_error_span_status_and_single_model_attributes(sdk: Sdk) -> None:
    """An error invoke's span has ERROR status; one model puts its model/provider on the span."""
    one = {
        **EVENT,
        "status": "error",
        "cost_usd": 0.5,
        "models": {"gpt-5-mini": {**EVENT["models"]["gpt-5-mini"], "provider": "azure"}},
    }
    sdk.send(one)
    (span,) = sdk.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.response.model"] == "gpt-5-mini"
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.usage.cost"] == 0.5


def test_spans_off() -> None:
    """spans=False records metrics only."""
    s = Sdk(spans=False)
    try:
        s.send(EVENT)
        assert s.spans.get_finished_spans() == ()
        assert s.points("agent_usage.invokes")
    finally:
        s.close()


def test_token_histogram_unit_matches_semconv() -> None:
    """gen_ai.client.token.usage has the semconv's unit."""
    (inst,) = [i for i in names.INSTRUMENTS if i.name == semconv_metrics.GEN_AI_CLIENT_TOKEN_USAGE]
    reader = InMemoryMetricReader()
    semconv_metrics.create_gen_ai_client_token_usage(
        MeterProvider(metric_readers=[reader]).get_meter("x")
    ).record(1)
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert inst.unit == metric.unit == "{token}"


def test_tracked_langgraph_invoke_reaches_the_sdk(sdk: Sdk, tmp_path: Path) -> None:
    """track_usage(..., exporters=[OTelExporter]) sends what it logs."""
    model = ScriptedChatModel(
        script=[AIMessage(content="hi", usage_metadata=um(120, 30, cache_read=100, reasoning=10))],
        model_name="claude-haiku-4-5",
        provider="anthropic",
    )
    with EventLog(tmp_path / "events.jsonl") as log:
        agent = track_usage(one_node_graph(model), log, session_id="s", exporters=[sdk.exporter])
        agent.invoke({"messages": [("user", "hello")]})
    assert sdk.exporter.flush(5)
    (event,) = read_events(tmp_path / "events.jsonl", types={"llm_usage"})
    assert (
        by(sdk.points("gen_ai.client.token.usage"), "gen_ai.token.type")
        == {
            ("input",): event["input_tokens"],
            ("output",): event["output_tokens"],
        }
        == {("input",): 120, ("output",): 30}
    )
    (span,) = sdk.spans.get_finished_spans()
    assert (span.attributes or {})["agent_usage.invoke_id"] == event["invoke_id"]


@pytest.mark.parametrize(
    ("langchain", "semconv_name"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("azure", "azure.ai.openai"),
        ("amazon_bedrock", "aws.bedrock"),
        ("google_vertexai", "gcp.vertex_ai"),
        ("google_genai", "gcp.gen_ai"),
        ("mistralai", "mistral_ai"),
        ("xai", "x_ai"),
        ("ollama", "ollama"),
        (None, None),
    ],
    ids=lambda v: str(v),
)
def test_provider_names(langchain: str | None, semconv_name: str | None) -> None:
    """LangChain provider names map to the semconv's well-known gen_ai.provider.name values."""
    assert names.provider_name(langchain) == semconv_name


def test_bad_options_fail_at_construction() -> None:
    """A bad option is a ValueError/TypeError naming it, when the exporter is built."""
    with pytest.raises(TypeError, match="agent_name"):
        OTelExporter(MeterProvider(), agent_name=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        OTelExporter.otlp_http("http://127.0.0.1:9", timeout=0)
    with pytest.raises(ValueError, match="export_interval"):
        OTelExporter.otlp_http("http://127.0.0.1:9", export_interval=-1)
    with pytest.raises(ValueError, match="exit_timeout"):
        OTelExporter.otlp_http("http://127.0.0.1:9", exit_timeout=True)


def test_recorded_on_the_callers_thread_without_a_queue_of_ours(sdk: Sdk) -> None:
    """export() has recorded span and metrics when it returns: the SDK's queue is the only one."""
    sdk.exporter.export(EVENT)
    assert len(sdk.spans.get_finished_spans()) == 1
    assert sdk.points("agent_usage.invokes")
    assert sdk.exporter.stats == {"handed": 1, "sent": None, "failed": None, "dropped": 0}


def test_invoke_span_nests_under_the_applications_current_span(sdk: Sdk, tmp_path: Path) -> None:
    """The invoke_agent span of a tracked invoke is a child of the caller's active span."""
    model = ScriptedChatModel(script=[AIMessage(content="hi", usage_metadata=um(10, 2))])
    agent = track_usage(one_node_graph(model), None, exporters=[sdk.exporter])
    tracer = sdk.tracers.get_tracer("the-application")
    with tracer.start_as_current_span("handle_request") as request:
        agent.invoke({"messages": [("user", "hello")]})
    invoke, app = sorted(sdk.spans.get_finished_spans(), key=lambda s: s.name != "invoke_agent")
    assert (invoke.name, app.name) == ("invoke_agent", "handle_request")
    assert invoke.parent is not None
    assert invoke.parent.span_id == request.get_span_context().span_id
    assert invoke.context.trace_id == app.context.trace_id


class Exploding(SpanProcessor):
    """A span processor that raises: a broken piece of the application's own setup."""

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor bug")


def test_a_failing_sdk_never_raises_into_the_agent(caplog: pytest.LogCaptureFixture) -> None:
    """An error inside the SDK is counted as dropped and logged once, never raised."""
    tracers = TracerProvider()
    tracers.add_span_processor(Exploding())
    exporter = OTelExporter(MeterProvider(), tracers)
    with caplog.at_level(logging.WARNING, logger="agent_usage.exporters"):
        for _ in range(3):
            exporter.export(EVENT)
    assert exporter.stats["dropped"] == 3
    assert exporter.failures == {"recording an event (RuntimeError)": 3}
    assert len([r for r in caplog.records if "processor bug" in r.getMessage()]) == 1
    tracers.shutdown()
