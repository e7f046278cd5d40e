"""LiteLLM's usage shapes in the shared normaliser, through the public `normalize_usage`.

The dicts are LiteLLM's `Usage.model_dump()` as litellm 1.110 produced them for the
loopback servers' responses (see tests/test_litellm.py), trimmed to the keys it sets.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage
from litellm.types.utils import Usage as LiteLLMUsage

from agent_usage import Usage, normalize_usage

OPENAI: dict[str, Any] = {
    "prompt_tokens": 1200,
    "completion_tokens": 400,
    "total_tokens": 1600,
    "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": None},
    "completion_tokens_details": {"reasoning_tokens": 256, "text_tokens": None},
}
ANTHROPIC: dict[str, Any] = {
    "prompt_tokens": 800,  # LiteLLM: 100 fresh + 400 read + 300 written
    "completion_tokens": 50,
    "total_tokens": 850,
    "prompt_tokens_details": {
        "cached_tokens": 400,
        "cache_write_tokens": 300,
        "cache_creation_tokens": 300,
        "text_tokens": 100,
        "cache_creation_token_details": {
            "ephemeral_5m_input_tokens": 100,
            "ephemeral_1h_input_tokens": 200,
        },
    },
    "completion_tokens_details": {"reasoning_tokens": 0},
    "cache_creation_input_tokens": 300,
    "cache_read_input_tokens": 400,
}
# An older LiteLLM / another provider: cache figures only at the top level.
TOP_LEVEL_ONLY: dict[str, Any] = {
    "prompt_tokens": 700,
    "completion_tokens": 10,
    "cache_read_input_tokens": 500,
    "cache_creation_input_tokens": 100,
}


def usage(
    inp: int,
    out: int,
    *,
    read: int | None = None,
    creation: int | None = None,
    one_hour: int | None = None,
    reasoning: int | None = None,
) -> Usage:
    """A `Usage` written out by hand (None: not reported)."""
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=creation,
        cache_creation_1h_input_tokens=one_hour,
        reasoning_tokens=reasoning,
    )


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (OPENAI, usage(1200, 400, read=1000, reasoning=256)),
        (ANTHROPIC, usage(800, 50, read=400, creation=300, one_hour=200, reasoning=0)),
        (TOP_LEVEL_ONLY, usage(700, 10, read=500, creation=100)),
    ],
    ids=["openai", "anthropic-5m-1h", "top-level-only"],
)
def test_litellm_usage_is_a_row_of_the_table(raw: dict[str, Any], want: Usage) -> None:
    """LiteLLM's usage, as a dict or as its pydantic model, normalises to the billed parts."""
    assert normalize_usage(None, raw={"usage": raw}) == want
    assert normalize_usage(None, raw={"usage": LiteLLMUsage(**raw)}) == want


def test_chatlitellm_dropped_ttl_split_recovered_from_its_raw_usage() -> None:
    """usage_metadata without the 5m/1h split: taken from response_metadata's token_usage."""
    message = AIMessage(
        "",
        usage_metadata={
            "input_tokens": 800,
            "output_tokens": 50,
            "total_tokens": 850,
            "input_token_details": {"cache_read": 400, "cache_creation": 300},
        },
        response_metadata={"token_usage": LiteLLMUsage(**ANTHROPIC), "model_provider": "litellm"},
    )
    assert normalize_usage(message) == usage(800, 50, read=400, creation=300, one_hour=200)


def test_ttl_split_of_other_writes_is_not_borrowed() -> None:
    """A raw report whose cache writes differ from usage_metadata's is not mixed in."""
    message = AIMessage(
        "",
        usage_metadata={
            "input_tokens": 900,
            "output_tokens": 50,
            "total_tokens": 950,
            "input_token_details": {"cache_read": 400, "cache_creation": 301},
        },
        response_metadata={"token_usage": ANTHROPIC},
    )
    usage = normalize_usage(message)
    assert usage is not None
    assert usage.cache_creation_input_tokens == 301
    assert usage.cache_creation_1h_input_tokens is None
