"""normalize_usage: LangChain's UsageMetadata contract and the integrations' quirks."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import AIMessage

from agent_usage import Usage, normalize_usage
from agent_usage._usage import normalize_failures

# (id, usage_metadata or message kwargs, expected Usage fields)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "plain",
        {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        {"input_tokens": 10, "output_tokens": 5},
    ),
    (
        "openai-cached-and-reasoning",
        {
            "input_tokens": 1000,
            "output_tokens": 300,
            "total_tokens": 1300,
            "input_token_details": {"audio": 0, "cache_read": 800},
            "output_token_details": {"audio": 0, "reasoning": 200},
        },
        {
            "input_tokens": 1000,
            "output_tokens": 300,
            "cache_read_input_tokens": 800,
            "reasoning_tokens": 200,
        },
    ),
    (
        # langchain-openai, service_tier="priority": detail keys prefixed, plus a
        # "priority" total that is neither cache nor reasoning.
        "openai-priority-tier",
        {
            "input_tokens": 1000,
            "output_tokens": 300,
            "total_tokens": 1300,
            "input_token_details": {"priority_cache_read": 600, "priority": 400},
            "output_token_details": {"priority_reasoning": 120, "priority": 180},
        },
        {
            "input_tokens": 1000,
            "output_tokens": 300,
            "cache_read_input_tokens": 600,
            "reasoning_tokens": 120,
            "service_tier": "priority",
        },
    ),
    (
        "openai-flex-tier",
        {
            "input_tokens": 50,
            "output_tokens": 40,
            "total_tokens": 90,
            "input_token_details": {"flex_cache_read": 10, "flex": 40},
            "output_token_details": {"flex_reasoning": 30, "flex": 10},
        },
        {
            "input_tokens": 50,
            "output_tokens": 40,
            "cache_read_input_tokens": 10,
            "reasoning_tokens": 30,
            "service_tier": "flex",
        },
    ),
    (
        # langchain-anthropic: TTL writes under ephemeral_* keys, cache_creation zeroed.
        "anthropic-ttl-split",
        {
            "input_tokens": 5000,
            "output_tokens": 100,
            "total_tokens": 5100,
            "input_token_details": {
                "cache_read": 1000,
                "cache_creation": 0,
                "ephemeral_5m_input_tokens": 1500,
                "ephemeral_1h_input_tokens": 2000,
            },
        },
        {
            "input_tokens": 5000,
            "output_tokens": 100,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 3500,
            "cache_creation_1h_input_tokens": 2000,
        },
    ),
    (
        "anthropic-generic-creation",
        {
            "input_tokens": 3000,
            "output_tokens": 10,
            "total_tokens": 3010,
            "input_token_details": {"cache_read": 0, "cache_creation": 2500},
        },
        {
            "input_tokens": 3000,
            "output_tokens": 10,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 2500,
        },
    ),
    (
        "bad-values-not-reported",
        {
            "input_tokens": True,
            "output_tokens": -3,
            "input_token_details": {"cache_read": 2.5, "cache_creation": "7"},
            "output_token_details": {"reasoning": None},
        },
        {},
    ),
    (
        "details-exceed-total-flagged",
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "input_token_details": {"cache_read": 50},
            "output_token_details": {"reasoning": 9},
        },
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 50,
            "reasoning_tokens": 9,
            "flags": frozenset(
                {"cache_read_exceeds_input", "cache_exceeds_input", "reasoning_exceeds_output"}
            ),
        },
    ),
]


@pytest.mark.parametrize(
    ("metadata", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_usage_metadata_shapes(metadata: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each integration's usage_metadata shape normalises to the canonical record."""
    got = normalize_usage(metadata)
    if not expected:
        assert got is None
        return
    assert got == Usage(**expected)
    # model_construct: integrations build messages whose usage may not validate.
    message = AIMessage.model_construct(content="x", usage_metadata=metadata)
    assert normalize_usage(message) == got


RAW_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "openai-token-usage",
        {
            "token_usage": {
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "prompt_tokens_details": {"cached_tokens": 100},
                "completion_tokens_details": {"reasoning_tokens": 20},
            }
        },
        {
            "input_tokens": 120,
            "output_tokens": 30,
            "cache_read_input_tokens": 100,
            "reasoning_tokens": 20,
        },
    ),
    (
        # Anthropic API usage: input excludes cache, split given under cache_creation.
        "anthropic-raw-usage",
        {
            "usage": {
                "input_tokens": 10,
                "output_tokens": 7,
                "cache_read_input_tokens": 200,
                "cache_creation_input_tokens": 0,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 30,
                    "ephemeral_1h_input_tokens": 40,
                },
            }
        },
        {
            "input_tokens": 280,
            "output_tokens": 7,
            "cache_read_input_tokens": 200,
            "cache_creation_input_tokens": 70,
            "cache_creation_1h_input_tokens": 40,
        },
    ),
    (
        "bedrock-converse",
        {
            "usage": {
                "inputTokens": 50,
                "outputTokens": 5,
                "cacheReadInputTokens": 25,
                "cacheWriteInputTokens": 5,
            }
        },
        {
            "input_tokens": 80,
            "output_tokens": 5,
            "cache_read_input_tokens": 25,
            "cache_creation_input_tokens": 5,
        },
    ),
    (
        "gemini-thoughts-outside-candidates",
        {
            "usage_metadata": {
                "prompt_token_count": 300,
                "candidates_token_count": 40,
                "cached_content_token_count": 100,
                "thoughts_token_count": 60,
            }
        },
        {
            "input_tokens": 300,
            "output_tokens": 100,
            "cache_read_input_tokens": 100,
            "reasoning_tokens": 60,
        },
    ),
]


@pytest.mark.parametrize(
    ("response_metadata", "expected"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES]
)
def test_raw_fallback_when_no_usage_metadata(
    response_metadata: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Without usage_metadata, the raw provider usage in response_metadata is read."""
    message = AIMessage(content="x", response_metadata=response_metadata)
    assert normalize_usage(message) == Usage(**expected)


def test_raw_fallback_from_llm_output() -> None:
    """An LLMResult.llm_output token_usage is the last fallback."""
    got = normalize_usage(None, raw={"token_usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    assert got == Usage(input_tokens=3, output_tokens=4)


def test_usage_metadata_wins_over_raw() -> None:
    """When usage_metadata is set, the raw dict is not read (no double counting)."""
    message = AIMessage(
        content="x",
        usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        response_metadata={"token_usage": {"prompt_tokens": 100, "completion_tokens": 200}},
    )
    assert normalize_usage(message) == Usage(input_tokens=1, output_tokens=2)


@pytest.mark.parametrize(
    "source",
    [None, 3, "text", [], {}, AIMessage(content="no usage")],
    ids=["none", "int", "str", "list", "empty-dict", "message-without-usage"],
)
def test_nothing_reported_is_none(source: object) -> None:
    """Inputs that carry no usage give None, not a zero record."""
    assert normalize_usage(source) is None


class _Unreadable(dict[str, Any]):
    """A usage mapping that raises when read, as a broken integration object might."""

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError(f"cannot read {key}")


def test_a_failure_inside_the_normaliser_is_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An input that breaks the normaliser gives None, one warning, and a count per failure."""
    source = _Unreadable(input_tokens=5, output_tokens=1)
    before = normalize_failures()
    with caplog.at_level(logging.WARNING, logger="agent_usage"):
        for _ in range(3):
            assert normalize_usage(source) is None
    assert normalize_failures() == before + 3
    warned = [r for r in caplog.records if "normalising usage failed" in r.message]
    assert len(warned) == (1 if before == 0 else 0)
    if warned:
        assert "cannot read" in warned[0].message


def test_total_and_sum() -> None:
    """total_tokens is input + output; adding keeps None distinct from 0."""
    a = Usage(input_tokens=10, output_tokens=2, cache_read_input_tokens=4)
    b = Usage(input_tokens=5, output_tokens=1, reasoning_tokens=1)
    s = a + b
    assert s == Usage(
        input_tokens=15, output_tokens=3, cache_read_input_tokens=4, reasoning_tokens=1
    )
    assert s.total_tokens == 18
    assert s.cache_creation_input_tokens is None


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True),
    st.text(max_size=5),
)
_details = st.dictionaries(
    st.sampled_from(
        [
            "cache_read",
            "cache_creation",
            "reasoning",
            "audio",
            "priority",
            "priority_cache_read",
            "flex_reasoning",
            "ephemeral_5m_input_tokens",
            "ephemeral_1h_input_tokens",
            "other",
        ]
    ),
    _values,
)
_metadata = st.one_of(
    st.fixed_dictionaries(
        {"input_tokens": _values, "output_tokens": _values},
        optional={
            "input_token_details": st.one_of(_details, _values),
            "output_token_details": st.one_of(_details, _values),
            "total_tokens": _values,
        },
    ),
    st.recursive(
        st.one_of(_values, st.just({})),
        lambda c: st.dictionaries(st.text(max_size=20), c),
        max_leaves=10,
    ),
)


@given(_metadata)
def test_normaliser_never_raises_never_negative(metadata: Any) -> None:
    """For any input the normaliser returns None or a Usage with no negative count, bug-free."""
    before = normalize_failures()
    got = normalize_usage(metadata)
    assert normalize_failures() == before  # "nothing reported", never a swallowed bug
    if got is None:
        return
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation_1h_input_tokens",
        "reasoning_tokens",
    ):
        value = getattr(got, name)
        assert value is None or (type(value) is int and value >= 0)


_counts = st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))
_usages = st.builds(
    Usage,
    input_tokens=_counts,
    output_tokens=_counts,
    cache_read_input_tokens=_counts,
    cache_creation_input_tokens=_counts,
    reasoning_tokens=_counts,
)


@given(_usages, _usages, _usages)
def test_sum_is_associative_and_commutative(a: Usage, b: Usage, c: Usage) -> None:
    """Summing usages is associative and commutative, so call order never matters."""
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
