"""The names the OpenTelemetry exporter emits, and how an event maps onto them.

Attribute and metric names come from `opentelemetry-semantic-conventions`; only
where the conventions have no name yet is one defined here (cost, the cache and
reasoning token counter, our status and ids), each with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from .._extras import missing_extra

try:
    from opentelemetry import trace
    from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
        GEN_AI_OPERATION_NAME,
        GEN_AI_PROVIDER_NAME,
        GEN_AI_REQUEST_MODEL,
        GEN_AI_RESPONSE_MODEL,
        GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        GenAiOperationNameValues,
        GenAiProviderNameValues,
        GenAiTokenTypeValues,
    )
    from opentelemetry.semconv._incubating.metrics.gen_ai_metrics import GEN_AI_CLIENT_TOKEN_USAGE
except ImportError as exc:
    raise missing_extra("the OpenTelemetry exporter", "otel", exc) from None

__all__ = [
    "INSTRUMENTS",
    "Instrument",
    "model_attributes",
    "provider_name",
    "timestamp_ns",
]

SCOPE: Final = "agent_usage"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
CHAT: Final = GenAiOperationNameValues.CHAT.value
INVOKE_AGENT: Final = GenAiOperationNameValues.INVOKE_AGENT.value
INPUT: Final = GenAiTokenTypeValues.INPUT.value
OUTPUT: Final = GenAiTokenTypeValues.OUTPUT.value

# Names the semantic conventions do not have (yet); ours are namespaced.
# Cost: not in the semconv; the name OpenLIT and LiteLLM use, in USD.
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"
# gen_ai.token.type has only input/output: cache and reasoning tokens (subsets
# of those) get their own counter and attribute.
DETAIL_TYPE: Final = "agent_usage.token.type"
STATUS: Final = "agent_usage.status"
INVOKE_ID: Final = "agent_usage.invoke_id"
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
    Instrument(
        GEN_AI_CLIENT_TOKEN_USAGE, "{token}", "histogram", "Number of input and output tokens used."
    ),
    Instrument(
        TOKEN_DETAIL,
        "{token}",
        "counter",
        "Cache read, cache creation and reasoning tokens (subsets of input/output).",
    ),
    Instrument(
        GEN_AI_USAGE_COST, "USD", "histogram", "Cost of the model's calls in an invoke, in USD."
    ),
    Instrument(INVOKES, "{invoke}", "counter", "Agent invokes that used tokens."),
    Instrument(INVOKE_DURATION, "s", "histogram", "Wall time of agent invokes."),
)

# The semconv's advice for gen_ai.client.token.usage buckets.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
COST_BUCKETS: Final = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0)
DURATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

_P = GenAiProviderNameValues
# LangChain provider names (`ls_provider` / `model_provider`) -> semconv
# gen_ai.provider.name well-known values. Others pass through unchanged.
_PROVIDERS: Final[Mapping[str, str]] = {
    "azure": _P.AZURE_AI_OPENAI.value,  # AzureChatOpenAI
    "azure_openai": _P.AZURE_AI_OPENAI.value,
    "azure_ai": _P.AZURE_AI_INFERENCE.value,  # langchain-azure-ai
    "amazon_bedrock": _P.AWS_BEDROCK.value,  # ChatBedrock, ChatBedrockConverse
    "bedrock": _P.AWS_BEDROCK.value,
    "bedrock_converse": _P.AWS_BEDROCK.value,
    "google_vertexai": _P.GCP_VERTEX_AI.value,  # ChatVertexAI
    "google_genai": _P.GCP_GEN_AI.value,  # ChatGoogleGenerativeAI
    "mistral": _P.MISTRAL_AI.value,  # ChatMistralAI
    "mistralai": _P.MISTRAL_AI.value,
    "xai": _P.X_AI.value,  # ChatXAI
    "ibm": _P.IBM_WATSONX_AI.value,  # ChatWatsonx
}

# event field -> (span attribute, metric detail type)
DETAILS: Final = (
    ("cache_read_input_tokens", GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, "cache_read"),
    ("cache_creation_input_tokens", GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, "cache_creation"),
    ("reasoning_tokens", GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, "reasoning"),
)
SPAN_KIND: Final = trace.SpanKind.INTERNAL
ERROR: Final = trace.Status(trace.StatusCode.ERROR, "the invoke raised")


def provider_name(provider: str | None) -> str | None:
    """The semconv `gen_ai.provider.name` for a LangChain provider name."""
    if not provider:
        return None
    return _PROVIDERS.get(provider.lower(), provider.lower())


def model_attributes(model: str, provider: Any) -> dict[str, Any]:
    """The semconv attributes of one model's `chat` data points."""
    attrs: dict[str, Any] = {
        GEN_AI_OPERATION_NAME: CHAT,
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_RESPONSE_MODEL: model,
    }
    name = provider_name(provider if isinstance(provider, str) else None)
    if name:
        attrs[GEN_AI_PROVIDER_NAME] = name
    return attrs


def timestamp_ns(value: Any) -> int:
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
