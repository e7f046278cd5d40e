"""Looking a model up in genai-prices' bundled offline data: name forms, then flat rates.

The data is read from the package's snapshot without network access; the
auto-updater is never started. A reported name is tried as it is, without an
``init_chat_model``-style ``provider:`` prefix, without a Gemini ``models/``
prefix, and as the bare name at an ``openai/``-style vendor, each first with
the provider hints the name and the call carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ._rates import WRITE_1H_MULTIPLIER, Rates

__all__ = ["find_in_library", "library_rates", "name_forms"]

# init_chat_model style "provider:model"; a Bedrock id's ":0" suffix has a "." before it.
_CHAT_PREFIX = re.compile(r"[a-z][a-z_-]*")
# Bedrock model ids: "anthropic.claude-...-v1:0", "us.anthropic....", "amazon.nova-pro-v1:0".
_BEDROCK_ID = re.compile(r"^(?:[a-z]{2,6}\.)?[a-z0-9-]+\.[a-z0-9.-]+-v\d+(?::\d+)?$")


def name_forms(model: str) -> Iterator[str]:
    """The model name as reported, then without an init_chat_model or Gemini prefix."""
    name = model.strip().lower()
    yield name
    prefix, sep, rest = name.partition(":")
    if sep and rest and _CHAT_PREFIX.fullmatch(prefix):
        name = rest
        yield name
    if name.startswith("models/"):
        yield name[len("models/") :]


def _candidates(model: str, provider: str | None) -> Iterator[tuple[str, str | None]]:
    """(model ref, provider id) pairs to try, most specific first."""
    name = model.strip().lower()
    hints: list[str] = [provider.strip().lower()] if provider else []
    refs = [name]
    prefix, sep, rest = name.partition(":")
    if sep and rest and _CHAT_PREFIX.fullmatch(prefix):
        # "anthropic:claude-sonnet-4-5"; the whole name stays a candidate ("gpt-oss:20b").
        refs.insert(0, rest)
        hints.append(prefix)
    refs = [r[len("models/") :] if r.startswith("models/") else r for r in refs]
    for ref in list(refs):
        vendor, slash, tail = ref.partition("/")
        if slash and tail:
            # "openai/gpt-4o" (OpenRouter, LiteLLM style): also the bare name at that vendor.
            refs.append(tail)
            hints.append(vendor)
        if _BEDROCK_ID.match(ref):
            hints.append("aws")
    seen: set[tuple[str, str | None]] = set()
    for hint in [*hints, None]:
        for ref in refs:
            if (ref, hint) not in seen:
                seen.add((ref, hint))
                yield ref, hint


def find_in_library(model: str, provider: str | None) -> tuple[Any, Any] | None:
    """genai-prices' (Provider, ModelInfo) for this name, or None."""
    from genai_prices import data_snapshot  # lazy: the price data is large

    snapshot = data_snapshot.get_snapshot()
    for ref, hint in _candidates(model, provider):
        try:
            return snapshot.find_provider_model(ref, None, hint, None)
        except LookupError:
            continue
    return None


def library_rates(prov: Any, info: Any, tier: str | None) -> tuple[Rates | None, bool, bool]:
    """(flat rates or None, whether they depend on time, whether the tier had prices)."""
    from genai_prices.types import TieredPrices

    now = datetime.now(timezone.utc)
    own = any(m is info for m in prov.models)
    variants = (getattr(info, "price_variants", None) or ()) if own else ()
    tier_found = False
    context: dict[str, str] | None = None
    if tier:
        tier_found = any(
            v.when == {"service_tier": tier} and (v.constraint is None or v.constraint.active(now))
            for v in variants
        )
        context = {"service_tier": tier} if tier_found else None
    model_price = info.get_prices(now, context)
    dynamic = isinstance(info.prices, list) or any(v.constraint is not None for v in variants)

    raw = {
        key: getattr(model_price, f"{key}_mtok", None)
        for key in (
            "input",
            "output",
            "cache_read",
            "cache_write",
            "cache_write_1h",
            "output_reasoning",
        )
    }
    per_request = getattr(model_price, "requests_kcount", None)
    if raw["input"] is None or raw["output"] is None:
        return None, dynamic, tier_found

    thresholds = sorted(
        {t.start for p in raw.values() if isinstance(p, TieredPrices) for t in p.tiers},
        reverse=True,
    )

    def flat(input_tokens: int) -> Rates:
        def rate(price: Any) -> float | None:
            if price is None:
                return None
            if isinstance(price, TieredPrices):
                value = price.base
                for t in reversed(price.tiers):
                    if input_tokens > t.start:
                        value = t.price
                        break
                return float(value)
            return float(price)

        inp = rate(raw["input"])
        out = rate(raw["output"])
        assert inp is not None and out is not None
        write = rate(raw["cache_write"])
        reasoning = rate(raw["output_reasoning"])
        read = rate(raw["cache_read"])
        write_1h = rate(raw["cache_write_1h"])
        return Rates(
            input=inp,
            output=out,
            cache_read=inp if read is None else read,
            cache_write=inp if write is None else write,
            cache_write_1h=inp * WRITE_1H_MULTIPLIER if write_1h is None else write_1h,
            reasoning=out if reasoning is None else reasoning,
            per_request=float(per_request) / 1000 if per_request is not None else 0.0,
            source=f"genai-prices:{prov.id}/{info.id}",
        )

    base = flat(0)
    if thresholds:
        base = replace(base, tiers=tuple((t, flat(t + 1)) for t in thresholds))
    return base, dynamic, tier_found
