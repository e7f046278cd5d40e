"""Pricing: the cache-aware cost of one chat-model call's `Usage`.

Prices come from `genai-prices`' bundled offline snapshot (looked up without
network access; this module never starts its auto-updater), overridden or
extended by the user's own per-model prices.

The formula, per call, with rates in USD per million tokens::

    uncached = input - cache_read - cache_write            (clamped at 0)
    cost = uncached                   x input
         + cache_read                 x cache_read
         + (cache_write - write_1h)   x cache_write        (5-minute TTL)
         + write_1h                   x cache_write_1h
         + (output - reasoning)       x output
         + reasoning                  x reasoning          (= output unless the data differs)
         + per-request fee, if the data has one

- Long-context tiers: where a rate is tiered, the call's total input tokens pick
  the tier and that rate applies to all its tokens (the providers' "cliff"
  model, as genai-prices computes it), so calls are priced one by one.
- A missing cache read or write rate bills those tokens at the input rate (what
  genai-prices does). A missing 1-hour write rate is 2x the input rate:
  Anthropic's documented 1h multiplier (5m writes are 1.25x), and only Claude
  models report 1h writes (Anthropic API, Bedrock, Vertex).
- Service tiers: "priority"/"flex" use the data's variants for that tier where
  it has them (OpenAI, some Gemini models); otherwise standard rates, with one
  warning per model.
- Savings = cache_read x (input - cache_read rate) minus the write premium,
  cache_write x (write rate - input rate) for each TTL; negative when writes
  were not repaid by reads.

The lookup (name -> rates) is done once per (model, provider, service tier) and
cached, so pricing a call is a few float operations. Rates whose data depends
on the time of day or on a start date are looked up again after a minute.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._usage import Usage

__all__ = ["Pricer", "PricesArg", "default_pricer"]

logger = logging.getLogger(__name__)

PricesArg = Mapping[str, Mapping[str, float | str]] | str | os.PathLike[str] | None

# User price keys (per million tokens) -> what they mean; "provider" is the one str key.
_USER_RATE_KEYS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
_USER_KEYS = (*_USER_RATE_KEYS, "provider")
# Anthropic: a 1h cache write costs 2x the base input rate (a 5m write 1.25x).
_WRITE_1H_MULTIPLIER = 2.0
# Rates from data with date or time-of-day conditions are looked up again after this.
_DYNAMIC_TTL_S = 60.0
# Model names come from responses; a bound keeps a pathological stream of names finite.
_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class _Rates:
    """Flat USD-per-million rates for one model, with the tiers above thresholds."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    reasoning: float
    per_request: float = 0.0
    # (threshold, rates) by descending threshold: rates when input tokens > threshold.
    tiers: tuple[tuple[int, _Rates], ...] = ()
    source: str = ""

    def at(self, input_tokens: int) -> _Rates:
        """The rates that apply to a call with this many input tokens."""
        for threshold, rates in self.tiers:
            if input_tokens > threshold:
                return rates
        return self


@dataclass(frozen=True, slots=True)
class _Override:
    rates: _Rates
    provider: str | None


def _money(rates: _Rates, u: Usage, requests: int) -> tuple[float, float]:
    """(cost, savings) in USD of `u` at `rates` (already tier-selected).

    Written with locals and plain comparisons rather than min/max: this runs for
    every call of every invoke.
    """
    inp = u.input_tokens or 0
    read = u.cache_read_input_tokens or 0
    write = u.cache_creation_input_tokens or 0
    write_1h = u.cache_creation_1h_input_tokens or 0
    if write_1h > write:
        write_1h = write
    out = u.output_tokens or 0
    reasoning = u.reasoning_tokens or 0
    if reasoning > out:
        reasoning = out
    # A detail larger than its total is flagged upstream; never bill negative tokens.
    uncached = inp - read - write
    if uncached < 0:
        uncached = 0
    write_5m = write - write_1h
    r_in = rates.input
    r_read = rates.cache_read
    r_5m = rates.cache_write
    r_1h = rates.cache_write_1h
    cost = (
        uncached * r_in
        + read * r_read
        + write_5m * r_5m
        + write_1h * r_1h
        + (out - reasoning) * rates.output
        + reasoning * rates.reasoning
    ) / 1e6 + requests * rates.per_request
    savings = (read * (r_in - r_read) - write_5m * (r_5m - r_in) - write_1h * (r_1h - r_in)) / 1e6
    return cost, savings


class Pricer:
    """Prices chat-model calls from genai-prices' offline data and the user's overrides.

    Args:
        prices: overrides, per model name: ``{"my-model": {"input": 1.0, "output":
            2.0, "cache_read": 0.1, "cache_write": 1.25, "cache_write_1h": 2.0}}``
            in USD per million tokens ("input" and "output" required, the cache
            rates default as in the library data: reads and writes at the input
            rate, 1h writes at 2x input), with an optional "provider" that limits
            the entry to calls from that provider (or that report none). Or the
            path of a ``.toml`` (`tomllib`; the `tomli` backport on Python 3.10)
            or ``.json`` file holding that mapping. A name matches the call's
            model as reported, without a ``provider:`` / ``models/`` prefix, or
            the library's model id (so "claude-sonnet-4-5" also covers
            "claude-sonnet-4-5-20250929").

    Raises:
        ValueError: an unreadable file, an unknown key, a missing, negative or
            non-numeric price; the message names the bad value.
        TypeError: `prices` is none of the above.

    `price`, `cost` and `savings` never raise: an unknown model or a failure
    returns None and logs one warning naming the model.
    """

    def __init__(self, prices: PricesArg = None) -> None:
        if prices is None:
            table: Mapping[str, Any] = {}
        elif isinstance(prices, (str, os.PathLike)):
            table = _load_file(Path(prices))
        elif isinstance(prices, Mapping):
            table = prices
        else:
            raise TypeError(
                f"prices must be a mapping, a TOML/JSON file path or None; got {prices!r}"
            )
        self._overrides: dict[str, _Override] = {
            _override_key(name): _parse_override(name, entry) for name, entry in table.items()
        }
        self._cache: dict[tuple[str, str | None, str | None], tuple[_Rates | None, float]] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def price(
        self, model: str, provider: str | None, usage: Usage
    ) -> tuple[float | None, float | None]:
        """(cost, cache savings) in USD of one call, one lookup; (None, None) when unknown."""
        try:
            rates = self._rates(model, provider, usage.service_tier)
            if rates is None:
                return None, None
            if rates.tiers:
                rates = rates.at(usage.input_tokens or 0)
            return _money(rates, usage, 1)
        except Exception as exc:
            self._failed(model, exc)
            return None, None

    def cost(self, model: str, provider: str | None, usage: Usage) -> float | None:
        """USD cost of one call's `usage` on `model`, or None when the price is unknown."""
        return self.price(model, provider, usage)[0]

    def savings(self, model: str, provider: str | None, usage: Usage) -> float | None:
        """USD that prompt caching saved on this call (may be negative), or None when unknown."""
        return self.price(model, provider, usage)[1]

    def _rates(self, model: str, provider: str | None, tier: str | None) -> _Rates | None:
        key = (model, provider, tier)
        entry = self._cache.get(key)
        if entry is None or (entry[1] and entry[1] < time.monotonic()):
            with self._lock:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                entry = self._cache[key] = self._lookup(model, provider, tier)
        return entry[0]

    def _lookup(
        self, model: str, provider: str | None, tier: str | None
    ) -> tuple[_Rates | None, float]:
        """(rates or None, monotonic expiry or 0 for never): the slow path, once per key."""
        names = list(_name_forms(model))
        for name in names:
            if (found := self._override(name, provider)) is not None:
                return found, 0.0
        hit = _find_in_library(model, provider)
        if hit is not None and (found := self._override(hit[1].id, provider)) is not None:
            return found, 0.0
        if hit is None:
            self._warn_once(
                f"unknown:{model}",
                "agent_usage: no price for model %r (provider %r); its cost_usd is null. "
                "Add it with prices={%r: {'input': ..., 'output': ...}}",
                model,
                provider,
                names[0] if names else model,
            )
            return None, 0.0
        prov, info = hit
        rates, dynamic, tier_found = _library_rates(prov, info, tier)
        if rates is None:
            self._warn_once(
                f"unknown:{model}",
                "agent_usage: genai-prices has no token prices for model %r (%s/%s); "
                "its cost_usd is null",
                model,
                prov.id,
                info.id,
            )
        elif tier and not tier_found:
            self._warn_once(
                f"tier:{model}:{tier}",
                "agent_usage: no %r service-tier prices for model %r (%s/%s); standard rates used",
                tier,
                model,
                prov.id,
                info.id,
            )
        return rates, (time.monotonic() + _DYNAMIC_TTL_S) if dynamic else 0.0

    def _override(self, name: str, provider: str | None) -> _Rates | None:
        found = self._overrides.get(name)
        if found is None:
            return None
        if found.provider and provider and found.provider != provider.lower():
            return None
        return found.rates

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(msg, *args)

    def _failed(self, model: str, exc: Exception) -> None:
        self._warn_once(
            f"failed:{model}:{type(exc).__name__}",
            "agent_usage: pricing model %r failed (%s: %s); its cost_usd is null",
            model,
            type(exc).__name__,
            exc,
        )


@lru_cache(maxsize=1)
def default_pricer() -> Pricer:
    """The shared pricer over the bundled offline price data."""
    return Pricer()


# --- name resolution -------------------------------------------------------------------

# init_chat_model style "provider:model"; a Bedrock id's ":0" suffix has a "." before it.
_CHAT_PREFIX = re.compile(r"[a-z][a-z_-]*")
# Bedrock model ids: "anthropic.claude-...-v1:0", "us.anthropic....", "amazon.nova-pro-v1:0".
_BEDROCK_ID = re.compile(r"^(?:[a-z]{2,6}\.)?[a-z0-9-]+\.[a-z0-9.-]+-v\d+(?::\d+)?$")


def _override_key(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"prices: a model name must be a non-empty string; got {name!r}")
    return name.strip().lower()


def _name_forms(model: str) -> Iterator[str]:
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


def _find_in_library(model: str, provider: str | None) -> tuple[Any, Any] | None:
    """genai-prices' (Provider, ModelInfo) for this name, or None."""
    from genai_prices import data_snapshot  # lazy: the price data is large

    snapshot = data_snapshot.get_snapshot()
    for ref, hint in _candidates(model, provider):
        try:
            return snapshot.find_provider_model(ref, None, hint, None)
        except LookupError:
            continue
    return None


def _library_rates(prov: Any, info: Any, tier: str | None) -> tuple[_Rates | None, bool, bool]:
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

    def flat(input_tokens: int) -> _Rates:
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
        return _Rates(
            input=inp,
            output=out,
            cache_read=inp if read is None else read,
            cache_write=inp if write is None else write,
            cache_write_1h=inp * _WRITE_1H_MULTIPLIER if write_1h is None else write_1h,
            reasoning=out if reasoning is None else reasoning,
            per_request=float(per_request) / 1000 if per_request is not None else 0.0,
            source=f"genai-prices:{prov.id}/{info.id}",
        )

    base = flat(0)
    if thresholds:
        base = replace(base, tiers=tuple((t, flat(t + 1)) for t in thresholds))
    return base, dynamic, tier_found


# --- user overrides --------------------------------------------------------------------


def _load_file(path: Path) -> Mapping[str, Any]:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValueError(f"prices file {str(path)!r} must end in .toml or .json")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"prices file {str(path)!r} cannot be read: {exc.strerror}") from exc
    try:
        loaded = json.loads(data) if suffix == ".json" else _toml_loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"prices file {str(path)!r} is not valid {suffix[1:]}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ValueError(
            f"prices file {str(path)!r} must hold a table of models; got {type(loaded).__name__}"
        )
    return loaded


def _toml_loads(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10: the tomli backport, when installed
        try:
            import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
        except ModuleNotFoundError:
            raise ValueError(
                "reading TOML needs Python 3.11+ or the 'tomli' package; use a .json file"
            ) from None
    return tomllib.loads(text)


def _parse_override(name: object, entry: object) -> _Override:
    key = _override_key(name)
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"prices[{name!r}] must be a table of per-million USD prices; got {entry!r}"
        )
    unknown = sorted(str(k) for k in entry if k not in _USER_KEYS)
    if unknown:
        raise ValueError(
            f"prices[{name!r}]: unknown key {unknown[0]!r} (expected {', '.join(_USER_KEYS)})"
        )
    provider = entry.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise ValueError(
            f"prices[{name!r}]['provider'] must be a non-empty string; got {provider!r}"
        )
    rates: dict[str, float] = {}
    for rk in _USER_RATE_KEYS:
        if rk not in entry:
            continue
        value = entry[rk]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"prices[{name!r}][{rk!r}] must be a non-negative number of USD per "
                f"million tokens; got {value!r}"
            )
        rates[rk] = float(value)
    for required in ("input", "output"):
        if required not in rates:
            raise ValueError(f"prices[{name!r}] needs {required!r} (USD per million tokens)")
    inp = rates["input"]
    return _Override(
        rates=_Rates(
            input=inp,
            output=rates["output"],
            cache_read=rates.get("cache_read", inp),
            cache_write=rates.get("cache_write", inp),
            cache_write_1h=rates.get("cache_write_1h", inp * _WRITE_1H_MULTIPLIER),
            reasoning=rates["output"],
            source=f"override:{key}",
        ),
        provider=provider.strip().lower() if provider else None,
    )
