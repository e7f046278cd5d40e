"""OpenTelemetry exporter: `llm_usage` events as GenAI semantic-convention metrics and spans.

Install with ``pip install 'langchain-agent-usage[otel]'``. The OpenTelemetry API is imported
with this module (`agent_usage.exporters` imports it only when `OTelExporter` is asked for).

What each event becomes (names checked against the GenAI semantic conventions,
which now live in the semantic-conventions-genai repository):

Metrics, one data point per model in the event's `models` breakdown:

- ``gen_ai.client.token.usage`` (histogram, ``{token}``): two points per model,
  ``gen_ai.token.type`` = ``input`` (all input, cache reads and writes included,
  as the semconv requires) and ``output`` (reasoning included).
- ``agent_usage.token.usage`` (counter, ``{token}``): the subsets the semconv has
  no metric attribute for yet, ``agent_usage.token.type`` = ``cache_read``,
  ``cache_creation`` or ``reasoning``; only non-zero values are added. They are
  subsets of input/output: never add them to ``gen_ai.client.token.usage``.
- ``gen_ai.usage.cost`` (histogram, ``USD``): the model's cost, as OpenLIT and
  LiteLLM name it; not recorded when the price is unknown (never a silent 0).
- ``agent_usage.invokes`` (counter, ``{invoke}``) and ``agent_usage.invoke.duration``
  (histogram, ``s``): one per event, by ``agent_usage.status``.

Metric attributes: ``gen_ai.operation.name`` (``chat``), ``gen_ai.provider.name``,
``gen_ai.request.model`` and ``gen_ai.response.model`` (both the model that
answered: LangChain reports the response model). The session id is not a metric
attribute unless ``session_id_on_metrics=True``: one series per session would
grow a metrics backend without bound.

Spans (``spans=True``): one ``invoke_agent`` span per event, from
``timestamp - duration_ms`` to ``timestamp``, with ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``gen_ai.usage.cache_read.input_tokens``,
``gen_ai.usage.cache_creation.input_tokens``, ``gen_ai.usage.reasoning.output_tokens``,
``gen_ai.usage.cost``, ``gen_ai.conversation.id`` and ``session.id`` (the session),
``agent_usage.invoke_id``, ``agent_usage.status`` and the event's metadata under
``agent_usage.metadata.<key>``. A span per model call is not emitted: the event
holds per-invoke sums, and trace backends that sum ``gen_ai.usage.*`` over a
trace would count twice.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._extras import missing_extra
from ._common import Counters, models_of, positive_int, within
from ._otel_names import (
    COST_BUCKETS,
    DETAIL_TYPE,
    DETAILS,
    DURATION_BUCKETS,
    ERROR,
    GEN_AI_USAGE_COST,
    INPUT,
    INSTRUMENTS,
    INVOKE_AGENT,
    INVOKE_DURATION,
    INVOKE_ID,
    OUTPUT,
    SCOPE,
    SPAN_KIND,
    STATUS,
    TOKEN_BUCKETS,
    Instrument,
    model_attributes,
    provider_name,
    timestamp_ns,
)

try:
    from opentelemetry import metrics, trace
    from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
        GEN_AI_AGENT_NAME,
        GEN_AI_CONVERSATION_ID,
        GEN_AI_OPERATION_NAME,
        GEN_AI_TOKEN_TYPE,
        GEN_AI_USAGE_INPUT_TOKENS,
        GEN_AI_USAGE_OUTPUT_TOKENS,
    )
    from opentelemetry.semconv._incubating.attributes.session_attributes import SESSION_ID
    from opentelemetry.semconv._incubating.metrics.gen_ai_metrics import GEN_AI_CLIENT_TOKEN_USAGE
except ImportError as exc:
    raise missing_extra("the OpenTelemetry exporter", "otel", exc) from None

if TYPE_CHECKING:
    from ._otlp import Pipeline

__all__ = ["INSTRUMENTS", "Instrument", "OTelExporter", "provider_name"]

# The semconv's advice (token usage) or ours (cost, duration) per histogram.
_BUCKETS: Mapping[str, tuple[float, ...]] = {
    GEN_AI_CLIENT_TOKEN_USAGE: TOKEN_BUCKETS,
    GEN_AI_USAGE_COST: COST_BUCKETS,
    INVOKE_DURATION: DURATION_BUCKETS,
}


def _create(meter: Any, spec: Instrument) -> Any:
    """The SDK instrument for one row of `INSTRUMENTS`: its name, unit and description."""
    if spec.kind == "counter":
        return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=_BUCKETS[spec.name],
    )


class OTelExporter:
    """Records `llm_usage` events as OpenTelemetry GenAI metrics and spans.

    Pass it to `track_usage(..., exporters=[exporter])` or `UsageCallbackHandler`.
    `export` records on the calling thread, in the caller's context: the
    `invoke_agent` span is a child of the application's current span (LangSmith,
    OpenInference or your own instrumentation). Queueing, batching and dropping
    are the SDK's (its span processor and metric reader); nothing here waits on
    the network, and nothing raises into the agent.

    Args:
        meter_provider: an SDK `MeterProvider`, or None for the global one.
        tracer_provider: an SDK `TracerProvider`, or None for the global one.
        spans: also emit one `invoke_agent` span per event.
        session_id_on_metrics: put the session id (`gen_ai.conversation.id`) on
            metric points too. Off by default: one series per session.
        agent_name: `gen_ai.agent.name` on spans (span name `invoke_agent {name}`).

    Providers you pass are yours: `shutdown` flushes them and never shuts them
    down, and what reaches the endpoint is visible only to their exporters
    (`sent` and `failed` are then None in `stats`). `OTelExporter.otlp_http`
    builds providers the exporter owns and counts delivery.
    """

    def __init__(
        self,
        meter_provider: Any = None,
        tracer_provider: Any = None,
        *,
        spans: bool = True,
        session_id_on_metrics: bool = False,
        agent_name: str | None = None,
    ) -> None:
        if agent_name is not None and not isinstance(agent_name, str):
            raise TypeError(f"agent_name must be a str or None; got {agent_name!r}")
        from agent_usage import __version__

        self._counters = Counters(type(self).__name__)
        self._pipeline: Pipeline | None = None
        self._closed = False
        self._meter_provider = meter_provider or metrics.get_meter_provider()
        self._tracer_provider = (tracer_provider or trace.get_tracer_provider()) if spans else None
        meter = self._meter_provider.get_meter(SCOPE, __version__)
        self._tokens, self._details, self._cost, self._invokes, self._duration = (
            _create(meter, spec) for spec in INSTRUMENTS
        )
        self._tracer = (
            self._tracer_provider.get_tracer(SCOPE, __version__)
            if self._tracer_provider is not None
            else None
        )
        self.session_id_on_metrics = bool(session_id_on_metrics)
        self.agent_name = agent_name

    @classmethod
    def otlp_http(
        cls,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        service_name: str = "agent-usage",
        timeout: float = 5.0,
        export_interval: float = 60.0,
        exit_timeout: float = 5.0,
        spans: bool = True,
        session_id_on_metrics: bool = False,
        agent_name: str | None = None,
    ) -> OTelExporter:
        """An exporter with its own OTLP/HTTP providers, bounded in time, counting delivery.

        Args:
            endpoint: the OTLP/HTTP base URL (``/v1/metrics`` and ``/v1/traces``
                are appended); None for ``$OTEL_EXPORTER_OTLP_ENDPOINT`` or the
                SDK's default.
            headers: HTTP headers for every export (e.g. an API key).
            service_name: the resource's ``service.name``.
            timeout: seconds one export may take, retries included.
            export_interval: seconds between metric exports.
            exit_timeout: seconds the shutdown run at interpreter exit may take:
                a dead endpoint never holds the process longer.
            spans, session_id_on_metrics, agent_name: as for the constructor.

        Raises:
            ValueError: a timeout or interval that is not a positive number.
        """
        from ._otlp import Pipeline

        for name, value in (
            ("timeout", timeout),
            ("export_interval", export_interval),
            ("exit_timeout", exit_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds; got {value!r}")
        pipeline = Pipeline(
            endpoint,
            headers=dict(headers or {}),
            service_name=service_name,
            timeout=float(timeout),
            export_interval=float(export_interval),
            spans=spans,
        )
        exporter = cls(
            pipeline.meter_provider,
            pipeline.tracer_provider,
            spans=spans,
            session_id_on_metrics=session_id_on_metrics,
            agent_name=agent_name,
        )
        exporter._pipeline = pipeline
        pipeline.counters = exporter._counters
        # The providers do not shut themselves down at exit (their unbounded SDK
        # hooks are off): this does, within exit_timeout. A weak reference: an
        # exporter the user dropped is not kept alive until exit.
        atexit.register(_shutdown_at_exit, weakref.ref(exporter), float(exit_timeout))
        return exporter

    # -- the agent's side: any thread, never blocks, never raises ----------------

    def export(self, event: Mapping[str, Any]) -> None:
        """Record one `llm_usage` event as metrics (and a span) in the caller's context."""
        if self._closed:
            self._counters.lost("exporting after shutdown", dropped=1)
            return
        try:
            self._record_metrics(event)
            if self._tracer is not None:
                self._record_span(event)
        except Exception as exc:  # exporters never break the agent
            self._counters.lost(f"recording an event ({type(exc).__name__})", exc, dropped=1)
        else:
            self._counters.add(handed=1)

    # -- the application's side --------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Export what the providers hold; False if that failed or `timeout` ran out."""
        return within(timeout, lambda: self._flush(timeout), name="otel-flush")

    def shutdown(self, timeout: float | None = 10.0) -> bool:
        """Flush, within `timeout` in all; shut down providers this exporter built.

        Later events are dropped and counted. Providers passed in are only flushed:
        they may be shared with the application.
        """
        if self._closed:
            return True
        self._closed = True
        pipeline = self._pipeline
        if pipeline is None:
            return self.flush(timeout)
        return within(timeout, lambda: pipeline.shutdown(timeout), name="otel-shutdown")

    @property
    def stats(self) -> dict[str, int | None]:
        """Delivery counts, in events.

        handed: recorded into the SDK. dropped: not recorded (an error, or after
        shutdown), or dropped by the SDK's full span queue. For an exporter from
        `otlp_http` also: sent (spans the endpoint took; with spans off, events
        covered by a metrics export that got through), failed (spans it refused),
        pending, metrics_covered, metric_exports_sent and metric_exports_failed.
        With providers you passed, delivery is only visible to their exporters:
        sent and failed are None.
        """
        if self._pipeline is not None:
            return self._pipeline.stats()
        c = self._counters
        return {"handed": c.handed, "sent": None, "failed": None, "dropped": c.dropped}

    @property
    def failures(self) -> dict[str, int]:
        """How many times each cause of loss happened."""
        return dict(self._counters.failures)

    # -- recording -----------------------------------------------------------------

    def _flush(self, timeout: float | None) -> bool:
        millis = 30_000 if timeout is None else max(1, int(timeout * 1000))
        ok = True
        for provider in (self._meter_provider, self._tracer_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is not None and flush(millis) is False:
                ok = False
        if self._pipeline is not None:
            ok = ok and self._pipeline.last_export_ok()
        return ok

    def _record_metrics(self, event: Mapping[str, Any]) -> None:
        session = event.get("session_id")
        extra: dict[str, Any] = {}
        if self.session_id_on_metrics and session is not None:
            extra[GEN_AI_CONVERSATION_ID] = str(session)
        for model, row in models_of(event).items():
            attrs = {**model_attributes(model, row.get("provider")), **extra}
            self._tokens.record(
                positive_int(row, "input_tokens"), {**attrs, GEN_AI_TOKEN_TYPE: INPUT}
            )
            self._tokens.record(
                positive_int(row, "output_tokens"), {**attrs, GEN_AI_TOKEN_TYPE: OUTPUT}
            )
            for key, _, detail in DETAILS:
                value = positive_int(row, key)
                if value:
                    self._details.add(value, {**attrs, DETAIL_TYPE: detail})
            cost = row.get("cost_usd")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                self._cost.record(float(cost), attrs)
        status = {
            STATUS: str(event.get("status") or "ok"),
            GEN_AI_OPERATION_NAME: INVOKE_AGENT,
            **extra,
        }
        self._invokes.add(1, status)
        duration = event.get("duration_ms")
        if isinstance(duration, (int, float)) and duration >= 0:
            self._duration.record(duration / 1000.0, status)

    def _record_span(self, event: Mapping[str, Any]) -> None:
        assert self._tracer is not None
        end_ns = timestamp_ns(event.get("timestamp"))
        duration = event.get("duration_ms")
        start_ns = end_ns
        if isinstance(duration, (int, float)) and duration > 0:
            start_ns = end_ns - int(duration * 1_000_000)
        attrs: dict[str, Any] = {
            GEN_AI_OPERATION_NAME: INVOKE_AGENT,
            GEN_AI_USAGE_INPUT_TOKENS: positive_int(event, "input_tokens"),
            GEN_AI_USAGE_OUTPUT_TOKENS: positive_int(event, "output_tokens"),
            STATUS: str(event.get("status") or "ok"),
        }
        for key, span_attr, _ in DETAILS:
            value = positive_int(event, key)
            if value:
                attrs[span_attr] = value
        cost = event.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            attrs[GEN_AI_USAGE_COST] = float(cost)
        models = models_of(event)
        if len(models) == 1:
            model, row = next(iter(models.items()))
            # The model's attributes, but this span is the invoke, not a "chat" call.
            model_attrs = model_attributes(model, row.get("provider"))
            attrs.update({k: v for k, v in model_attrs.items() if k != GEN_AI_OPERATION_NAME})
        if models:
            attrs["agent_usage.models"] = sorted(models)
        for key, attr in (("invoke_id", INVOKE_ID), ("event_id", "agent_usage.event_id")):
            if event.get(key):
                attrs[attr] = str(event[key])
        for key in ("llm_calls", "llm_calls_without_usage"):
            if key in event:
                attrs[f"agent_usage.{key}"] = positive_int(event, key)
        session = event.get("session_id")
        if session is not None:
            attrs[GEN_AI_CONVERSATION_ID] = str(session)
            attrs[SESSION_ID] = str(session)
        if self.agent_name:
            attrs[GEN_AI_AGENT_NAME] = self.agent_name
        metadata = event.get("metadata")
        if isinstance(metadata, Mapping):
            for key, value in metadata.items():
                if isinstance(value, (str, bool, int, float)):
                    attrs[f"agent_usage.metadata.{key}"] = value
        name = f"{INVOKE_AGENT} {self.agent_name}" if self.agent_name else INVOKE_AGENT
        # No explicit context: the current one, so the span nests under the
        # application's active span (the caller's thread and contextvars).
        span = self._tracer.start_span(name, kind=SPAN_KIND, attributes=attrs, start_time=start_ns)
        if event.get("status") == "error":
            span.set_status(ERROR)
        span.end(end_time=end_ns)


def _shutdown_at_exit(ref: weakref.ReferenceType[OTelExporter], timeout: float) -> None:
    exporter = ref()
    if exporter is not None:
        exporter.shutdown(timeout)
