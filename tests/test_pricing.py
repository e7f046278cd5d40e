"""Cache-aware pricing: figures worked out by hand from public list prices (USD per million).

Every expected cost below is written from the providers' list prices as literals,
not computed by the code under test. One test cross-checks the flat-rate maths
against genai-prices' own calculator.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from agent_usage import EventLog, Usage, normalize_usage, read_events, track_usage
from agent_usage._pricing import Pricer
from agent_usage._repricing import reprice
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um

M = 1_000_000
REL = 1e-9

# claude-sonnet-4-5 list prices, <= 200k input tokens and above.
SONNET = {"in": 3.0, "out": 15.0, "read": 0.30, "w5m": 3.75, "w1h": 6.0}
SONNET_LONG = {"in": 6.0, "out": 22.50, "read": 0.60, "w5m": 7.50, "w1h": 12.0}


@tool
def lookup(city: str) -> str:
    """Look a city up."""
    return f"{city}: sunny"


def usage(**kwargs: Any) -> Usage:
    """A normalised Usage from LangChain-contract usage_metadata (inclusive totals)."""
    found = normalize_usage(um(**kwargs))
    assert found is not None
    return found


# (model as reported, provider, list input $/M, list output $/M); None: resolve only.
NAMES = [
    ("claude-sonnet-4-5-20250929", "anthropic", 3.0, 15.0),
    ("claude-sonnet-4-5", None, 3.0, 15.0),
    ("anthropic:claude-sonnet-4-5", None, 3.0, 15.0),
    ("claude-haiku-4-5-20251001", "anthropic", 1.0, 5.0),
    ("claude-3-5-haiku-20241022", "anthropic", 0.80, 4.0),
    ("claude-opus-4-1-20250805", "anthropic", 15.0, 75.0),
    ("gpt-5-mini-2025-08-07", "openai", 0.25, 2.0),
    ("gpt-5-mini", None, 0.25, 2.0),
    ("openai:gpt-5-mini", None, 0.25, 2.0),
    ("gpt-5", "openai", 1.25, 10.0),
    ("gpt-4o-mini", "openai", 0.15, 0.60),
    ("gpt-4.1-2025-04-14", "openai", 2.0, 8.0),
    ("o4-mini-2025-04-16", None, 1.10, 4.40),
    ("gemini-2.5-pro", "google_genai", 1.25, 10.0),
    ("models/gemini-2.5-pro", "google_genai", 1.25, 10.0),
    ("gemini-2.5-flash", "google_vertexai", 0.30, 2.50),
    ("google_genai:gemini-2.5-flash", None, 0.30, 2.50),
    # Bedrock: cross-region ("us.") profiles of Sonnet 4.5 cost 10% over the global rate.
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock", 3.30, 16.50),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", None, 3.30, 16.50),
    ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock_converse", 3.0, 15.0),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "amazon_bedrock", 0.80, 4.0),
    ("amazon.nova-pro-v1:0", "bedrock", 0.80, 3.20),
    ("mistral-large-latest", "mistralai", None, None),
    ("mistral-medium-latest", "mistralai", None, None),
    ("codestral-latest", None, None, None),
    ("open-mistral-nemo", "mistralai", None, None),
    ("deepseek-chat", "deepseek", None, None),
    ("deepseek-reasoner", None, None, None),
    ("openai/gpt-4o", "openrouter", 2.50, 10.0),
    ("claude-sonnet-4-5@20250929", "google_vertexai", 3.0, 15.0),
]


@pytest.mark.parametrize(
    ("model", "provider", "rate_in", "rate_out"), NAMES, ids=[f"{m}|{p}" for m, p, *_ in NAMES]
)
def test_real_model_names_resolve(
    model: str, provider: str | None, rate_in: float | None, rate_out: float | None
) -> None:
    """Real model names in their many forms resolve to a price (spot-checked where given)."""
    cost = Pricer().cost(model, provider, usage(input_tokens=100_000, output_tokens=10_000))
    assert cost is not None and cost > 0
    if rate_in is not None and rate_out is not None:
        assert cost == pytest.approx((100_000 * rate_in + 10_000 * rate_out) / M, rel=REL)


ANTHROPIC_CASES = [
    # (usage kwargs, hand-computed cost, hand-computed savings)
    pytest.param(
        {"input_tokens": 10_000, "output_tokens": 500, "cache_read": 8_000},
        (2_000 * 3 + 8_000 * 0.30 + 500 * 15) / M,
        8_000 * (3 - 0.30) / M,
        id="cache-read",
    ),
    pytest.param(
        {"input_tokens": 10_000, "output_tokens": 500, "cache_creation": 6_000},
        (4_000 * 3 + 6_000 * 3.75 + 500 * 15) / M,
        -6_000 * (3.75 - 3) / M,
        id="5m-write",
    ),
    pytest.param(
        {
            "input_tokens": 10_000,
            "output_tokens": 500,
            "cache_creation": 6_000,
            "cache_creation_1h": 6_000,
        },
        (4_000 * 3 + 6_000 * 6 + 500 * 15) / M,
        -6_000 * (6 - 3) / M,
        id="1h-write",
    ),
    pytest.param(
        {
            "input_tokens": 20_000,
            "output_tokens": 1_000,
            "cache_read": 9_000,
            "cache_creation": 5_000,
            "cache_creation_1h": 2_000,
            "reasoning": 400,
        },
        (6_000 * 3 + 9_000 * 0.30 + 3_000 * 3.75 + 2_000 * 6 + 1_000 * 15) / M,
        (9_000 * (3 - 0.30) - 3_000 * (3.75 - 3) - 2_000 * (6 - 3)) / M,
        id="read-5m-1h-reasoning",
    ),
    pytest.param(
        {"input_tokens": 250_000, "output_tokens": 1_000, "cache_read": 200_000},
        (50_000 * 6 + 200_000 * 0.60 + 1_000 * 22.50) / M,
        200_000 * (6 - 0.60) / M,
        id="long-context-over-200k",
    ),
]


@pytest.mark.parametrize(("kwargs", "cost", "saved"), ANTHROPIC_CASES)
def test_anthropic_cache_rates(kwargs: dict[str, int], cost: float, saved: float) -> None:
    """Cache reads, 5m and 1h writes on claude-sonnet-4-5 at their list rates."""
    u = usage(**kwargs)
    pricer = Pricer()
    assert pricer.cost("claude-sonnet-4-5-20250929", "anthropic", u) == pytest.approx(cost, rel=REL)
    assert pricer.savings("claude-sonnet-4-5-20250929", "anthropic", u) == pytest.approx(
        saved, rel=REL
    )


def test_1h_write_without_a_library_rate_is_twice_input() -> None:
    """A Claude model whose data lacks a 1h rate bills 1h writes at 2x input (Anthropic's rule)."""
    # claude-3-5-haiku on Bedrock: $0.80 in, $4 out, $0.08 read, $1 5m write; 1h = 2 x 0.80.
    u = usage(input_tokens=10_000, output_tokens=100, cache_creation=4_000, cache_creation_1h=3_000)
    cost = Pricer().cost("anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock", u)
    assert cost == pytest.approx((6_000 * 0.80 + 1_000 * 1 + 3_000 * 1.60 + 100 * 4) / M, rel=REL)


def test_openai_cached_input_and_reasoning() -> None:
    """gpt-5-mini: cached input at $0.025, reasoning billed once, inside output, at $2."""
    u = usage(input_tokens=10_000, output_tokens=3_000, cache_read=6_000, reasoning=2_000)
    pricer = Pricer()
    assert pricer.cost("gpt-5-mini-2025-08-07", "openai", u) == pytest.approx(
        (4_000 * 0.25 + 6_000 * 0.025 + 3_000 * 2) / M, rel=REL
    )
    assert pricer.savings("gpt-5-mini-2025-08-07", "openai", u) == pytest.approx(
        6_000 * (0.25 - 0.025) / M, rel=REL
    )


@pytest.mark.parametrize(
    ("input_tokens", "rates"),
    [
        (150_000, (1.25, 0.125, 10.0)),
        (200_000, (1.25, 0.125, 10.0)),
        (200_001, (2.50, 0.25, 15.0)),
        (250_000, (2.50, 0.25, 15.0)),
    ],
    ids=["150k-base", "200k-base", "200001-long", "250k-long"],
)
def test_gemini_long_context_tier(input_tokens: int, rates: tuple[float, float, float]) -> None:
    """gemini-2.5-pro: above 200k input tokens every token of the call pays the long rate."""
    rate_in, rate_read, rate_out = rates
    u = usage(input_tokens=input_tokens, output_tokens=2_000, cache_read=50_000)
    expected = ((input_tokens - 50_000) * rate_in + 50_000 * rate_read + 2_000 * rate_out) / M
    assert Pricer().cost("gemini-2.5-pro", "google_genai", u) == pytest.approx(expected, rel=REL)


def test_long_context_tier_is_per_call_in_an_event(tmp_path: Path) -> None:
    """Two 150k-input calls in one invoke stay at base rates although their sum passes 200k."""
    model = ScriptedChatModel(
        model_name="gemini-2.5-pro",
        provider="google_genai",
        script=[
            AIMessage(
                content="",
                tool_calls=[{"name": "lookup", "args": {"city": "Oslo"}, "id": "c1"}],
                usage_metadata=um(150_000, 1_000),
            ),
            AIMessage(content="Sunny.", usage_metadata=um(150_000, 1_000)),
        ],
    )
    log_path = tmp_path / "events.jsonl"
    with EventLog(log_path) as log:
        track_usage(create_agent(model, tools=[lookup]), log).invoke(
            {"messages": [("user", "Weather in Oslo?")]}
        )
    [event] = list(read_events(log_path, types={"llm_usage"}))
    assert event["cost_usd"] == pytest.approx(2 * (150_000 * 1.25 + 1_000 * 10) / M, rel=REL)


@pytest.mark.parametrize(
    ("tier", "rates"),
    [("priority", (0.45, 0.045, 3.60)), ("flex", (0.125, 0.0125, 1.0))],
    ids=["priority", "flex"],
)
def test_openai_service_tier(tier: str, rates: tuple[float, float, float]) -> None:
    """langchain-openai's tier-prefixed usage is priced at that tier's gpt-5-mini rates."""
    rate_in, rate_read, rate_out = rates
    found = normalize_usage(
        {
            "input_tokens": 1_000,
            "output_tokens": 500,
            "total_tokens": 1_500,
            "input_token_details": {f"{tier}_cache_read": 200, tier: 800},
            "output_token_details": {f"{tier}_reasoning": 100, tier: 400},
        }
    )
    assert found is not None and found.service_tier == tier
    expected = (800 * rate_in + 200 * rate_read + 500 * rate_out) / M
    assert Pricer().cost("gpt-5-mini", "openai", found) == pytest.approx(expected, rel=REL)


def test_tier_without_data_uses_standard_rates_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A priority call on a model with no priority prices costs standard rates, one warning."""
    u = Usage(input_tokens=1_000, output_tokens=100, service_tier="priority")
    pricer = Pricer()
    with caplog.at_level(logging.WARNING, logger="agent_usage"):
        costs = [pricer.cost("claude-sonnet-4-5", "anthropic", u) for _ in range(3)]
    assert costs == [pytest.approx((1_000 * 3 + 100 * 15) / M, rel=REL)] * 3
    assert len([r for r in caplog.records if "priority" in r.getMessage()]) == 1


def test_unknown_model_is_none_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown model costs None (never 0) and is named in exactly one warning."""
    pricer = Pricer()
    u = usage(input_tokens=100, output_tokens=10, cache_read=50)
    with caplog.at_level(logging.WARNING, logger="agent_usage"):
        for _ in range(3):
            assert pricer.cost("acme-llm-7", "acme", u) is None
            assert pricer.savings("acme-llm-7", "acme", u) is None
    warnings = [r for r in caplog.records if "acme-llm-7" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_pricing_failure_returns_none_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    """A model argument pricing cannot handle gives None and a warning, not an exception."""
    with caplog.at_level(logging.WARNING, logger="agent_usage"):
        assert Pricer().cost(42, None, Usage(input_tokens=1)) is None  # type: ignore[arg-type]
    assert any("42" in r.getMessage() for r in caplog.records)


CUSTOM = {
    "input": 1.0,
    "output": 2.0,
    "cache_read": 0.1,
    "cache_write": 1.25,
    "cache_write_1h": 2.5,
}
# 10k input (3k read, 4k written of which 1k for 1h), 1k output at CUSTOM's rates.
CUSTOM_USAGE = {
    "input_tokens": 10_000,
    "output_tokens": 1_000,
    "cache_read": 3_000,
    "cache_creation": 4_000,
    "cache_creation_1h": 1_000,
}
CUSTOM_COST = (3_000 * 1.0 + 3_000 * 0.1 + 3_000 * 1.25 + 1_000 * 2.5 + 1_000 * 2.0) / M


def test_override_in_code_prices_a_new_model() -> None:
    """A model the library does not know is priced from the user's per-million rates."""
    cost = Pricer({"my-model": CUSTOM}).cost("my-model", None, usage(**CUSTOM_USAGE))
    assert cost == pytest.approx(CUSTOM_COST, rel=REL)


def test_override_beats_library_and_covers_snapshots() -> None:
    """An override named by the library's model id applies to dated and prefixed names too."""
    pricer = Pricer({"claude-sonnet-4-5": CUSTOM})
    u = usage(**CUSTOM_USAGE)
    for name in ("claude-sonnet-4-5-20250929", "anthropic:claude-sonnet-4-5"):
        assert pricer.cost(name, "anthropic", u) == pytest.approx(CUSTOM_COST, rel=REL)


def test_override_defaults_for_missing_cache_rates() -> None:
    """Without cache rates, reads and 5m writes bill at input and 1h writes at 2x input."""
    cost = Pricer({"my-model": {"input": 1.0, "output": 2.0}}).cost(
        "my-model", None, usage(**CUSTOM_USAGE)
    )
    assert cost == pytest.approx(
        (3_000 * 1 + 3_000 * 1 + 3_000 * 1 + 1_000 * 2 + 1_000 * 2) / M, rel=REL
    )


def test_override_with_provider_applies_only_to_that_provider() -> None:
    """An override with a provider leaves the same name from another provider alone."""
    pricer = Pricer({"gpt-5-mini": {"input": 9.0, "output": 9.0, "provider": "azure_openai"}})
    u = usage(input_tokens=1_000, output_tokens=1_000)
    assert pricer.cost("gpt-5-mini", "azure_openai", u) == pytest.approx(18_000 / M, rel=REL)
    assert pricer.cost("gpt-5-mini", "openai", u) == pytest.approx(
        (1_000 * 0.25 + 1_000 * 2) / M, rel=REL
    )


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_override_from_file(tmp_path: Path, suffix: str) -> None:
    """A TOML or JSON file of per-model prices works like the mapping."""
    path = tmp_path / f"prices{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"my-model": CUSTOM}))
    else:
        path.write_text(
            '["my-model"]\ninput = 1.0\noutput = 2.0\ncache_read = 0.1\n'
            "cache_write = 1.25\ncache_write_1h = 2.5\n"
        )
    for arg in (path, str(path)):
        cost = Pricer(arg).cost("my-model", None, usage(**CUSTOM_USAGE))
        assert cost == pytest.approx(CUSTOM_COST, rel=REL)


BAD_MAPPINGS = [
    ({"m": {"input": 1, "output": 2, "cahce_read": 0.1}}, "'cahce_read'"),
    ({"m": {"input": -1, "output": 2}}, "-1"),
    ({"m": {"input": True, "output": 2}}, "True"),
    ({"m": {"input": "1.0", "output": 2}}, "'1.0'"),
    ({"m": {"input": float("nan"), "output": 2}}, "nan"),
    ({"m": {"input": 1}}, "'output'"),
    ({"m": 3.0}, "3.0"),
    ({"": {"input": 1, "output": 2}}, "''"),
    ({"m": {"input": 1, "output": 2, "provider": 7}}, "7"),
]


@pytest.mark.parametrize(
    ("prices", "named"),
    BAD_MAPPINGS,
    ids=[
        "unknown-key",
        "negative",
        "bool",
        "str",
        "nan",
        "no-output",
        "not-table",
        "no-name",
        "provider",
    ],
)
def test_bad_override_mapping_raises_naming_the_value(prices: Any, named: str) -> None:
    """A bad price table fails at construction with the bad value in the message."""
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        Pricer(prices)


BAD_FILES = [
    ("prices.toml", None, "not found|cannot be read"),
    ("prices.yaml", "a: 1", r"\.toml or \.json"),
    ("prices.toml", '["m"\ninput = 1', "not valid toml"),
    ("prices.json", "{not json", "not valid json"),
    ("prices.json", "[1, 2]", "table of models; got list"),
    ("prices.toml", '["m"]\ninput = 1\noutput = -2\n', "-2"),
]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    BAD_FILES,
    ids=["missing", "suffix", "bad-toml", "bad-json", "json-list", "negative-in-file"],
)
def test_bad_override_file_raises(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    """A missing, unparsable or invalid prices file is a ValueError naming the problem."""
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        Pricer(path)


def test_prices_of_the_wrong_type_is_a_type_error() -> None:
    """Something that is neither a mapping nor a path is rejected."""
    with pytest.raises(TypeError, match="42"):
        Pricer(42)  # type: ignore[arg-type]


def test_reprice_recomputes_models_and_totals() -> None:
    """reprice re-prices each model row from its tokens, overrides first, and sums them."""
    event = {
        "type": "llm_usage",
        "cost_usd": 123.0,
        "models": {
            "my-model": {
                "provider": None,
                "input_tokens": 10_000,
                "output_tokens": 1_000,
                "cache_read_input_tokens": 3_000,
                "cache_creation_input_tokens": 4_000,
                "cache_creation_1h_input_tokens": 1_000,
                "reasoning_tokens": 0,
                "llm_calls": 2,
                "cost_usd": None,
            },
            "gpt-5-mini-2025-08-07": {
                "provider": "openai",
                "input_tokens": 10_000,
                "output_tokens": 3_000,
                "cache_read_input_tokens": 6_000,
                "cache_creation_input_tokens": 0,
                "reasoning_tokens": 2_000,
                "llm_calls": 1,
                "cost_usd": 0.0,
            },
        },
    }
    out = reprice(Pricer({"my-model": CUSTOM}), event)
    gpt = (4_000 * 0.25 + 6_000 * 0.025 + 3_000 * 2) / M
    assert out["models"]["my-model"]["cost_usd"] == pytest.approx(CUSTOM_COST, rel=REL)
    assert out["models"]["gpt-5-mini-2025-08-07"]["cost_usd"] == pytest.approx(gpt, rel=REL)
    assert out["cost_usd"] == pytest.approx(CUSTOM_COST + gpt, rel=REL)
    assert out["cache_savings_usd"] == pytest.approx(
        (3_000 * (1 - 0.1) - 3_000 * 0.25 - 1_000 * 1.5 + 6_000 * (0.25 - 0.025)) / M, rel=REL
    )
    assert event["cost_usd"] == 123.0 and event["models"]["my-model"]["cost_usd"] is None  # type: ignore[index]

    unpriced = reprice(Pricer(), event)
    assert unpriced["models"]["my-model"]["cost_usd"] is None and unpriced["cost_usd"] is None


@pytest.mark.parametrize(
    ("calls", "rates"),
    [(1, (2.50, 15.0)), (2, (1.25, 10.0))],
    ids=["one-call-tiered", "two-calls-base"],
)
def test_reprice_applies_long_context_tier_only_to_a_single_call(
    calls: int, rates: tuple[float, float]
) -> None:
    """From a per-model sum the tier is known only when the sum is one call."""
    row = {"provider": "google_genai", "input_tokens": 300_000, "output_tokens": 1_000}
    out = reprice(Pricer(), {"models": {"gemini-2.5-pro": {**row, "llm_calls": calls}}})
    assert out["cost_usd"] == pytest.approx((300_000 * rates[0] + 1_000 * rates[1]) / M, rel=REL)


CROSS_CHECK = [
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gpt-5-mini", "openai"),
    ("gpt-4o", "openai"),
    ("gemini-2.5-pro", "google"),
    ("gemini-2.5-flash", "google"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws"),
    ("mistral-large-latest", "mistral"),
]


@pytest.mark.parametrize("input_tokens", [30_000, 260_000], ids=["short", "long"])
@pytest.mark.parametrize(("model", "provider"), CROSS_CHECK, ids=[m for m, _ in CROSS_CHECK])
def test_flat_rates_agree_with_genai_prices(model: str, provider: str, input_tokens: int) -> None:
    """The cached flat-rate maths equals genai-prices' own calculator, tiers included."""
    import genai_prices

    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=input_tokens,
            cache_read_tokens=10_000,
            cache_write_tokens=5_000,
            output_tokens=2_000,
        ),
        model,
        provider_id=provider,
    ).total_price
    u = usage(
        input_tokens=input_tokens, output_tokens=2_000, cache_read=10_000, cache_creation=5_000
    )
    assert Pricer().cost(model, provider, u) == pytest.approx(float(expected), rel=REL)


def test_track_usage_event_carries_exact_cost(tmp_path: Path) -> None:
    """An agent's llm_usage event has the hand-computed cost and savings, per model and total."""
    model = ScriptedChatModel(
        model_name="claude-sonnet-4-5-20250929",
        provider="anthropic",
        script=[
            AIMessage(
                content="",
                tool_calls=[{"name": "lookup", "args": {"city": "Oslo"}, "id": "c1"}],
                usage_metadata=um(
                    12_000, 400, cache_read=8_000, cache_creation=3_000, cache_creation_1h=1_000
                ),
            ),
            AIMessage(content="Sunny.", usage_metadata=um(15_000, 200, cache_read=11_000)),
        ],
    )
    log_path = tmp_path / "events.jsonl"
    with EventLog(log_path) as log:
        track_usage(create_agent(model, tools=[lookup]), log).invoke(
            {"messages": [("user", "Weather in Oslo?")]}
        )
    [event] = list(read_events(log_path, types={"llm_usage"}))
    # Call 1: 1k uncached, 8k read, 2k 5m write, 1k 1h write, 400 out.
    call1 = 1_000 * 3 + 8_000 * 0.30 + 2_000 * 3.75 + 1_000 * 6 + 400 * 15
    # Call 2: 4k uncached, 11k read, 200 out.
    call2 = 4_000 * 3 + 11_000 * 0.30 + 200 * 15
    saved = 8_000 * 2.70 - 2_000 * 0.75 - 1_000 * 3 + 11_000 * 2.70
    row = event["models"]["claude-sonnet-4-5-20250929"]
    assert row["cost_usd"] == pytest.approx((call1 + call2) / M, rel=1e-12)
    assert event["cost_usd"] == pytest.approx((call1 + call2) / M, rel=1e-12)
    assert row["cache_savings_usd"] == pytest.approx(saved / M, rel=1e-12)
    assert event["cache_savings_usd"] == pytest.approx(saved / M, rel=1e-12)


def test_track_usage_prices_argument_overrides(tmp_path: Path) -> None:
    """track_usage(prices=...) prices the event with the user's rates."""
    model = ScriptedChatModel(
        model_name="acme-llm-7",
        provider="acme",
        script=[AIMessage(content="hi", usage_metadata=um(**CUSTOM_USAGE))],
    )
    log_path = tmp_path / "events.jsonl"
    with EventLog(log_path) as log:
        track_usage(create_agent(model, tools=[]), log, prices={"acme-llm-7": CUSTOM}).invoke(
            {"messages": [("user", "hi")]}
        )
    [event] = list(read_events(log_path, types={"llm_usage"}))
    assert event["cost_usd"] == pytest.approx(CUSTOM_COST, rel=1e-12)
    assert event["models"]["acme-llm-7"]["cost_usd"] == pytest.approx(CUSTOM_COST, rel=1e-12)
