"""Usage normalisation: one canonical `Usage` record from any integration's report.

LangChain's `UsageMetadata` contract: `input_tokens` and `output_tokens` are
inclusive totals; `input_token_details` / `output_token_details` are subsets of
them. The integrations bend that contract in known ways; each bend is one row in
the tables below, with a comment naming who does it. Nothing else in the package
looks at provider key names.

"Not reported" (None) stays distinct from 0 here; the event writes 0 for the
seed-compatible fields.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Usage", "normalize_failures", "normalize_usage"]

logger = logging.getLogger(__name__)

_failures = 0
_failures_lock = threading.Lock()


def normalize_failures() -> int:
    """How many times the normaliser itself failed (a bug, not missing usage) in this process."""
    return _failures


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one or more chat-model calls, normalised.

    `input_tokens` includes cache reads and writes; `output_tokens` includes
    reasoning. The detail fields are subsets. A field is None when nothing
    reported it. `flags` names details that exceed their total: kept as
    reported, not "fixed".
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    service_tier: str | None = None
    flags: frozenset[str] = frozenset()

    @property
    def total_tokens(self) -> int | None:
        """input + output, None when neither was reported."""
        return _add(self.input_tokens, self.output_tokens)

    @property
    def has_usage(self) -> bool:
        """True when the call reported input or output tokens at all."""
        return self.input_tokens is not None or self.output_tokens is not None

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=_add(self.input_tokens, other.input_tokens),
            output_tokens=_add(self.output_tokens, other.output_tokens),
            cache_read_input_tokens=_add(
                self.cache_read_input_tokens, other.cache_read_input_tokens
            ),
            cache_creation_input_tokens=_add(
                self.cache_creation_input_tokens, other.cache_creation_input_tokens
            ),
            cache_creation_1h_input_tokens=_add(
                self.cache_creation_1h_input_tokens, other.cache_creation_1h_input_tokens
            ),
            reasoning_tokens=_add(self.reasoning_tokens, other.reasoning_tokens),
            service_tier=self.service_tier if self.service_tier == other.service_tier else None,
            flags=self.flags | other.flags,
        )


def _add(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _count(value: object) -> int | None:
    """A token count, or None for anything that is not a non-negative int."""
    if type(value) is int and value >= 0:
        return value
    return None


# Which part of `Usage` each key of `input_token_details` / `output_token_details`
# adds to. Keys not listed (audio, ...) are subsets already inside the totals.
_DETAIL_PARTS: dict[str, str] = {
    # LangChain's UsageMetadata contract.
    "cache_read": "read",
    "cache_creation": "creation",
    "reasoning": "reasoning",
    # langchain-openai, service_tier "priority" / "flex": the same details under
    # prefixed keys instead of the plain ones.
    "priority_cache_read": "read",
    "priority_cache_creation": "creation",
    "priority_reasoning": "reasoning",
    "flex_cache_read": "read",
    "flex_cache_creation": "creation",
    "flex_reasoning": "reasoning",
    # langchain-openai: the tier's own total (the uncached / non-reasoning part) is
    # neither cache nor reasoning; it only tells which tier billed the call.
    "priority": "tier",
    "flex": "tier",
    # langchain-anthropic and langchain-aws (Bedrock): TTL cache writes under these
    # keys, and the generic "cache_creation" then set to 0.
    "ephemeral_5m_input_tokens": "ttl_5m",
    "ephemeral_1h_input_tokens": "ttl_1h",
}
_TTL_5M_KEY = "ephemeral_5m_input_tokens"
_TTL_1H_KEY = "ephemeral_1h_input_tokens"


def _from_usage_metadata(um: Mapping[str, Any]) -> Usage:
    # Runs once per model call: plain locals and inline checks, no helper calls.
    read = creation = reasoning = ttl_5m = ttl_1h = None
    tier: str | None = None
    for details in (um.get("input_token_details"), um.get("output_token_details")):
        if not details or not isinstance(details, Mapping):
            continue
        for key, value in details.items():
            part = _DETAIL_PARTS.get(key)
            if part is None:
                continue
            if part == "tier":
                tier = key
                continue
            if type(value) is not int or value < 0:
                continue  # not reported (None, bool, float, negative)
            if part == "read":
                read = value if read is None else read + value
            elif part == "creation":
                creation = value if creation is None else creation + value
            elif part == "reasoning":
                reasoning = value if reasoning is None else reasoning + value
            elif part == "ttl_5m":
                ttl_5m = value if ttl_5m is None else ttl_5m + value
            else:
                ttl_1h = value if ttl_1h is None else ttl_1h + value

    if (ttl_5m is not None or ttl_1h is not None) and not creation:
        # The TTL split is the only true figure when the generic key says 0.
        creation = (ttl_5m or 0) + (ttl_1h or 0)

    inp = um.get("input_tokens")
    out = um.get("output_tokens")
    return Usage(
        input_tokens=inp if type(inp) is int and inp >= 0 else None,
        output_tokens=out if type(out) is int and out >= 0 else None,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=creation,
        cache_creation_1h_input_tokens=ttl_1h,
        reasoning_tokens=reasoning,
        service_tier=tier,
    )


@dataclass(frozen=True, slots=True)
class _RawShape:
    """How one integration's raw token-usage dict maps to `Usage`.

    Used only when the message carries no `usage_metadata`.
    """

    input: str
    output: str
    cache_read: tuple[str, ...] = ()
    cache_creation: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()
    # Cache writes by TTL, where the shape reports the split under its own paths.
    cache_creation_5m: tuple[str, ...] = ()
    cache_creation_1h: tuple[str, ...] = ()
    # True when `input` excludes cache reads/writes and they must be added back.
    input_excludes_cache: bool = False


# Raw usage dicts found in `response_metadata` / `llm_output`, tried in order.
# A path is dotted: "prompt_tokens_details.cached_tokens".
_RAW_SHAPES: tuple[_RawShape, ...] = (
    # OpenAI chat completions (langchain-openai "token_usage", and OpenAI-compatible
    # integrations such as langchain-groq, langchain-deepseek, langchain-mistralai).
    # Also LiteLLM's `Usage` (its logger's response.usage, langchain-litellm's
    # "token_usage"), which is this shape for every provider: prompt_tokens already
    # includes cache reads and writes (LiteLLM adds Anthropic's back); writes sit under
    # cache_creation_input_tokens / prompt_tokens_details.cache_creation_tokens and
    # their TTL split under prompt_tokens_details.cache_creation_token_details.
    _RawShape(
        input="prompt_tokens",
        output="completion_tokens",
        cache_read=(
            "prompt_tokens_details.cached_tokens",
            "prompt_cache_hit_tokens",
            "cache_read_input_tokens",
        ),
        cache_creation=(
            "cache_creation_input_tokens",
            "prompt_tokens_details.cache_creation_tokens",
        ),
        reasoning=("completion_tokens_details.reasoning_tokens",),
        cache_creation_5m=(
            "prompt_tokens_details.cache_creation_token_details.ephemeral_5m_input_tokens",
        ),
        cache_creation_1h=(
            "prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens",
        ),
    ),
    # Anthropic Messages API "usage": input_tokens excludes cache reads and writes.
    _RawShape(
        input="input_tokens",
        output="output_tokens",
        cache_read=("cache_read_input_tokens",),
        cache_creation=("cache_creation_input_tokens",),
        input_excludes_cache=True,
    ),
    # Bedrock Converse "usage" (camelCase); inputTokens excludes cache here too.
    _RawShape(
        input="inputTokens",
        output="outputTokens",
        cache_read=("cacheReadInputTokens",),
        cache_creation=("cacheWriteInputTokens",),
        input_excludes_cache=True,
    ),
    # Google Gemini "usage_metadata" (proto field names).
    _RawShape(
        input="prompt_token_count",
        output="candidates_token_count",
        cache_read=("cached_content_token_count",),
        reasoning=("thoughts_token_count",),
    ),
)
# Where integrations put the raw dict inside response_metadata / llm_output.
_RAW_CONTAINERS = ("token_usage", "usage", "usage_metadata")


def _path(raw: Mapping[str, Any], dotted: str) -> object:
    value: object = raw
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _first(raw: Mapping[str, Any], paths: tuple[str, ...]) -> int | None:
    for p in paths:
        value = _count(_path(raw, p))
        if value is not None:
            return value
    return None


def _from_raw(raw: Mapping[str, Any]) -> Usage | None:
    for shape in _RAW_SHAPES:
        if shape.input not in raw and shape.output not in raw:
            continue
        inp = _count(raw.get(shape.input))
        out = _count(raw.get(shape.output))
        read = _first(raw, shape.cache_read)
        creation = _first(raw, shape.cache_creation)
        ttl_5m = _first(raw, shape.cache_creation_5m)
        ttl_1h = _first(raw, shape.cache_creation_1h)
        split = raw.get("cache_creation")
        if isinstance(split, Mapping):
            # Anthropic API: {"ephemeral_5m_input_tokens": .., "ephemeral_1h_input_tokens": ..}
            ttl_5m = _count(split.get(_TTL_5M_KEY))
            ttl_1h = _count(split.get(_TTL_1H_KEY))
        ttl_sum = _add(ttl_5m, ttl_1h)
        if ttl_sum and not creation:
            creation = ttl_sum
        if shape.input_excludes_cache and inp is not None:
            inp += (read or 0) + (creation or 0)
        # Gemini reports thoughts outside candidates_token_count.
        reasoning = _first(raw, shape.reasoning)
        if shape.output == "candidates_token_count" and reasoning and out is not None:
            out += reasoning
        return Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_read_input_tokens=read,
            cache_creation_input_tokens=creation,
            cache_creation_1h_input_tokens=ttl_1h,
            reasoning_tokens=reasoning,
        )
    return None


def _flagged(u: Usage) -> Usage:
    """Name every detail that exceeds its total; keep the numbers as reported."""
    flags: list[str] = []
    inp = u.input_tokens
    if inp is not None:
        if (u.cache_read_input_tokens or 0) > inp:
            flags.append("cache_read_exceeds_input")
        if (u.cache_creation_input_tokens or 0) > inp:
            flags.append("cache_creation_exceeds_input")
        if (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0) > inp:
            flags.append("cache_exceeds_input")
    if u.output_tokens is not None and (u.reasoning_tokens or 0) > u.output_tokens:
        flags.append("reasoning_exceeds_output")
    if (u.cache_creation_1h_input_tokens or 0) > (u.cache_creation_input_tokens or 0):
        flags.append("cache_1h_exceeds_creation")
    if not flags:
        return u
    return Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_input_tokens=u.cache_read_input_tokens,
        cache_creation_input_tokens=u.cache_creation_input_tokens,
        cache_creation_1h_input_tokens=u.cache_creation_1h_input_tokens,
        reasoning_tokens=u.reasoning_tokens,
        service_tier=u.service_tier,
        flags=u.flags | frozenset(flags),
    )


def normalize_usage(source: object, *, raw: Mapping[str, Any] | None = None) -> Usage | None:
    """Normalise a message's usage report into a `Usage`, or None when it has none.

    Args:
        source: an `AIMessage` / `AIMessageChunk` (anything with `usage_metadata`
            and `response_metadata`), or a `usage_metadata` dict.
        raw: an extra raw usage container to fall back to, such as an
            `LLMResult.llm_output`; used only when `source` carries no usage.

    Never raises: input it cannot read is "not reported". A failure inside the
    normaliser (a bug, or an input object that raises when read) is not passed
    off as "the provider reported nothing" silently: the first is logged as a
    warning with its exception, and every one is counted (`normalize_failures`).
    """
    try:
        return _normalize(source, raw)
    except Exception as exc:
        global _failures
        with _failures_lock:
            _failures += 1
            first = _failures == 1
        if first:
            logger.warning(
                "agent_usage: normalising usage failed (%r); this call counts as without "
                "usage, and further failures are counted, not logged",
                exc,
                exc_info=exc,
            )
        return None


def _normalize(source: object, raw: Mapping[str, Any] | None) -> Usage | None:
    # A message first: `isinstance(message, Mapping)` is a slow ABC miss.
    um: object = getattr(source, "usage_metadata", None)
    response_metadata: object = getattr(source, "response_metadata", None)
    if um is None and response_metadata is None and isinstance(source, Mapping):
        um = source

    usage: Usage | None = None
    if isinstance(um, Mapping) and ("input_tokens" in um or "output_tokens" in um):
        usage = _from_usage_metadata(um)
    if usage is None or not usage.has_usage:
        usage = None
        for container in (response_metadata, raw):
            usage = _raw_usage(container)
            if usage is not None:
                break
    elif usage.cache_creation_input_tokens and usage.cache_creation_1h_input_tokens is None:
        # langchain-litellm: reports cache writes but drops the TTL split that LiteLLM's
        # raw usage (its "token_usage") still carries.
        usage = _with_raw_ttl(usage, response_metadata, raw)
    if usage is None or not usage.has_usage:
        return None
    return _flagged(usage)


def _with_raw_ttl(usage: Usage, *containers: object) -> Usage:
    """`usage` with the 1h cache-write part taken from the raw report of the same writes."""
    for container in containers:
        found = _raw_usage(container)
        if found is None:
            continue
        if (
            found.cache_creation_1h_input_tokens is not None
            and found.cache_creation_input_tokens == usage.cache_creation_input_tokens
        ):
            one_hour = found.cache_creation_1h_input_tokens
            return replace(usage, cache_creation_1h_input_tokens=one_hour)
        return usage
    return usage


def _raw_usage(container: object) -> Usage | None:
    if not isinstance(container, Mapping):
        return None
    for key in _RAW_CONTAINERS:
        inner = container.get(key)
        dump = getattr(inner, "model_dump", None)
        if not isinstance(inner, Mapping) and callable(dump):
            # LiteLLM's `Usage` (langchain-litellm's "token_usage") is a pydantic model.
            inner = dump()
        if isinstance(inner, Mapping):
            found = _from_raw(inner)
            if found is not None and found.has_usage:
                return found
    return None
