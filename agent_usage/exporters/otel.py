"""OpenTelemetry exporter: `llm_usage` events as GenAI semantic-convention metrics and spans.

Install with ``pip install 'langchain-agent-usage[otel]'``. The OpenTelemetry API is imported
when the exporter is built, never at import time.

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

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from ._batch import BatchExporter, missing_extra

__all__ = ["INSTRUMENTS", "Instrument", "OTelExporter", "provider_name"]

SCOPE: Final = "agent_usage"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)

# GenAI semantic-convention names (attribute registry, gen_ai namespace).
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
TOKEN_TYPE: Final = "gen_ai.token.type"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
AGENT_NAME: Final = "gen_ai.agent.name"
USAGE_INPUT: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION: Final = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING: Final = "gen_ai.usage.reasoning.output_tokens"
# Not in the semconv: the name OpenLIT and LiteLLM use for cost in USD.
USAGE_COST: Final = "gen_ai.usage.cost"
SESSION_ID: Final = "session.id"
# Ours, namespaced, where the semconv has nothing.
DETAIL_TYPE: Final = "agent_usage.token.type"
STATUS: Final = "agent_usage.status"
INVOKE_ID: Final = "agent_usage.invoke_id"

TOKEN_USAGE: Final = "gen_ai.client.token.usage"
TOKEN_DETAIL: Final = "agent_usage.token.usage"
INVOKES: Final = "agent_usage.invokes"
INVOKE_DURATION: Final = "agent_usage.invoke.duration"


class Instrument:
    """One metric this exporter emits: OpenTelemetry name, unit and kind."""

    __slots__ = ("description", "kind", "name", "unit")

    def __init__(self, name: str, unit: str, kind: str, description: str) -> None:
        self.name = name
        self.unit = unit
        self.kind = kind  # "histogram" or "counter"
        self.description = description

    def __repr__(self) -> str:
        return f"Instrument({self.name!r}, {self.unit!r}, {self.kind!r})"


INSTRUMENTS: Final[tuple[Instrument, ...]] = (
    Instrument(TOKEN_USAGE, "{token}", "histogram", "Number of input and output tokens used."),
    Instrument(
        TOKEN_DETAIL,
        "{token}",
        "counter",
        "Cache read, cache creation and reasoning tokens (subsets of input/output).",
    ),
    Instrument(USAGE_COST, "USD", "histogram", "Cost of the model's calls in an invoke, in USD."),
    Instrument(INVOKES, "{invoke}", "counter", "Agent invokes that used tokens."),
    Instrument(INVOKE_DURATION, "s", "histogram", "Wall time of agent invokes."),
)

# The semconv's advice for gen_ai.client.token.usage buckets.
_TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
_COST_BUCKETS: Final = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0)
_DURATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

# LangChain provider names (`ls_provider` / `model_provider`) -> semconv
# gen_ai.provider.name well-known values. Others pass through unchanged.
_PROVIDERS: Final[Mapping[str, str]] = {
    "azure": "azure.ai.openai",  # AzureChatOpenAI
    "azure_openai": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",  # langchain-azure-ai
    "amazon_bedrock": "aws.bedrock",  # ChatBedrock, ChatBedrockConverse
    "bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "google_vertexai": "gcp.vertex_ai",  # ChatVertexAI
    "google_genai": "gcp.gen_ai",  # ChatGoogleGenerativeAI
    "mistral": "mistral_ai",  # ChatMistralAI
    "mistralai": "mistral_ai",
    "xai": "x_ai",  # ChatXAI
    "ibm": "ibm.watsonx.ai",  # ChatWatsonx
}

# event field -> (span attribute, metric detail type)
_DETAILS: Final = (
    ("cache_read_input_tokens", USAGE_CACHE_READ, "cache_read"),
    ("cache_creation_input_tokens", USAGE_CACHE_CREATION, "cache_creation"),
    ("reasoning_tokens", USAGE_REASONING, "reasoning"),
)


def provider_name(provider: str | None) -> str | None:
    """The semconv `gen_ai.provider.name` for a LangChain provider name."""
    if not provider:
        return None
    return _PROVIDERS.get(provider.lower(), provider.lower())


class OTelExporter(BatchExporter):
    """Sends `llm_usage` events to OpenTelemetry as GenAI metrics and spans, in the background.

    Pass it to `track_usage(..., exporters=[exporter])` or `UsageCallbackHandler`.
    Instruments are created on the given providers (the global ones when None);
    where the data goes is the providers' business (an OTLP exporter, Prometheus...).

    Args:
        meter_provider: an SDK `MeterProvider`, or None for the global one.
        tracer_provider: an SDK `TracerProvider`, or None for the global one.
        spans: also emit one `invoke_agent` span per event.
        session_id_on_metrics: put the session id (`gen_ai.conversation.id`) on
            metric points too. Off by default: one series per session.
        agent_name: `gen_ai.agent.name` on spans (span name `invoke_agent {name}`).
        max_queue_size, max_batch_size, exit_timeout: see `BatchExporter`.

    Raises:
        ImportError: the `otel` extra is not installed.
    """

    def __init__(
        self,
        meter_provider: Any = None,
        tracer_provider: Any = None,
        *,
        spans: bool = True,
        session_id_on_metrics: bool = False,
        agent_name: str | None = None,
        max_queue_size: int = 4096,
        max_batch_size: int = 256,
        exit_timeout: float = 5.0,
    ) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:
            raise missing_extra("otel", exc) from None
        if agent_name is not None and not isinstance(agent_name, str):
            raise TypeError(f"agent_name must be a str or None; got {agent_name!r}")
        super().__init__(
            max_queue_size=max_queue_size, max_batch_size=max_batch_size, exit_timeout=exit_timeout
        )
        self._meter_provider = meter_provider or metrics.get_meter_provider()
        self._tracer_provider = (tracer_provider or trace.get_tracer_provider()) if spans else None
        from agent_usage import __version__

        meter = self._meter_provider.get_meter(SCOPE, __version__)
        self._tokens = meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description=INSTRUMENTS[0].description,
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._details = meter.create_counter(
            TOKEN_DETAIL, unit="{token}", description=INSTRUMENTS[1].description
        )
        self._cost = meter.create_histogram(
            USAGE_COST,
            unit="USD",
            description=INSTRUMENTS[2].description,
            explicit_bucket_boundaries_advisory=_COST_BUCKETS,
        )
        self._invokes = meter.create_counter(
            INVOKES, unit="{invoke}", description=INSTRUMENTS[3].description
        )
        self._duration = meter.create_histogram(
            INVOKE_DURATION,
            unit="s",
            description=INSTRUMENTS[4].description,
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._tracer = (
            self._tracer_provider.get_tracer(SCOPE, __version__)
            if self._tracer_provider is not None
            else None
        )
        self._span_kind = trace.SpanKind.INTERNAL
        self._status_error = trace.Status(trace.StatusCode.ERROR, "the invoke raised")
        self.session_id_on_metrics = bool(session_id_on_metrics)
        self.agent_name = agent_name

    # -- worker thread -----------------------------------------------------------

    def _send(self, batch: Sequence[Mapping[str, Any]]) -> None:
        for event in batch:
            self._record_metrics(event)
            if self._tracer is not None:
                self._record_span(event)

    def _record_metrics(self, event: Mapping[str, Any]) -> None:
        session = event.get("session_id")
        extra: dict[str, Any] = {}
        if self.session_id_on_metrics and session is not None:
            extra[CONVERSATION_ID] = str(session)
        for model, row in _models(event).items():
            attrs = {**_model_attributes(model, row.get("provider")), **extra}
            self._tokens.record(_int(row, "input_tokens"), {**attrs, TOKEN_TYPE: "input"})
            self._tokens.record(_int(row, "output_tokens"), {**attrs, TOKEN_TYPE: "output"})
            for key, _, detail in _DETAILS:
                value = _int(row, key)
                if value:
                    self._details.add(value, {**attrs, DETAIL_TYPE: detail})
            cost = row.get("cost_usd")
            if isinstance(cost, (int, float)) and not isinstance(cost, bool):
                self._cost.record(float(cost), attrs)
        status = {STATUS: str(event.get("status") or "ok"), OPERATION_NAME: "invoke_agent", **extra}
        self._invokes.add(1, status)
        duration = event.get("duration_ms")
        if isinstance(duration, (int, float)) and duration >= 0:
            self._duration.record(duration / 1000.0, status)

    def _record_span(self, event: Mapping[str, Any]) -> None:
        assert self._tracer is not None
        end_ns = _timestamp_ns(event.get("timestamp"))
        duration = event.get("duration_ms")
        start_ns = end_ns
        if isinstance(duration, (int, float)) and duration > 0:
            start_ns = end_ns - int(duration * 1_000_000)
        attrs: dict[str, Any] = {
            OPERATION_NAME: "invoke_agent",
            USAGE_INPUT: _int(event, "input_tokens"),
            USAGE_OUTPUT: _int(event, "output_tokens"),
            STATUS: str(event.get("status") or "ok"),
        }
        for key, span_attr, _ in _DETAILS:
            value = _int(event, key)
            if value:
                attrs[span_attr] = value
        cost = event.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            attrs[USAGE_COST] = float(cost)
        models = _models(event)
        if len(models) == 1:
            model, row = next(iter(models.items()))
            # The model's attributes, but this span is the invoke, not a "chat" call.
            model_attrs = _model_attributes(model, row.get("provider"))
            attrs.update({k: v for k, v in model_attrs.items() if k != OPERATION_NAME})
        if models:
            attrs["agent_usage.models"] = sorted(models)
        for key, attr in (("invoke_id", INVOKE_ID), ("event_id", "agent_usage.event_id")):
            if event.get(key):
                attrs[attr] = str(event[key])
        for key in ("llm_calls", "llm_calls_without_usage"):
            if key in event:
                attrs[f"agent_usage.{key}"] = _int(event, key)
        session = event.get("session_id")
        if session is not None:
            attrs[CONVERSATION_ID] = str(session)
            attrs[SESSION_ID] = str(session)
        if self.agent_name:
            attrs[AGENT_NAME] = self.agent_name
        metadata = event.get("metadata")
        if isinstance(metadata, Mapping):
            for key, value in metadata.items():
                if isinstance(value, (str, bool, int, float)):
                    attrs[f"agent_usage.metadata.{key}"] = value
        name = f"invoke_agent {self.agent_name}" if self.agent_name else "invoke_agent"
        span = self._tracer.start_span(
            name, kind=self._span_kind, attributes=attrs, start_time=start_ns
        )
        if event.get("status") == "error":
            span.set_status(self._status_error)
        span.end(end_time=end_ns)

    # -- flush / shutdown ---------------------------------------------------------

    def _flush_backend(self, timeout: float | None) -> bool:
        millis = 30_000 if timeout is None else max(1, int(timeout * 1000))
        ok = True
        for provider, what in ((self._meter_provider, "metrics"), (self._tracer_provider, "spans")):
            flush = getattr(provider, "force_flush", None)
            if flush is not None and flush(millis) is False:
                # The SDK logs the cause; count it so callers can see it.
                self._failed(f"flushing {what} (the SDK exporter reported a failure)", None, 0)
                ok = False
        return ok

    def _shutdown_backend(self, timeout: float | None) -> bool:
        # The providers may be shared with the application: flush, never shut them down.
        return self._flush_backend(timeout)


def _models(event: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    models = event.get("models")
    if isinstance(models, Mapping) and models:
        return {str(k): v for k, v in models.items() if isinstance(v, Mapping)}
    # An event without a breakdown: the whole event is one model's share.
    return {str(event.get("model") or "unknown"): event}


def _model_attributes(model: str, provider: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        OPERATION_NAME: "chat",
        REQUEST_MODEL: model,
        RESPONSE_MODEL: model,
    }
    name = provider_name(provider if isinstance(provider, str) else None)
    if name:
        attrs[PROVIDER_NAME] = name
    return attrs


def _int(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def _timestamp_ns(value: Any) -> int:
    """Nanoseconds since the epoch of an ISO 8601 timestamp; now when missing or bad."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return (when - _EPOCH) // timedelta(microseconds=1) * 1000
    return time.time_ns()
