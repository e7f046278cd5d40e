"""Pricing: the cache-aware cost of one chat-model call's `Usage`.

Prices come from `genai-prices`' bundled offline snapshot (looked up without
network access; this module never starts its auto-updater), overridden or
extended by the user's own per-model prices.

The cost formula and its rules are in `_rates`; the lookup in genai-prices'
data in `_price_library`; the user's overrides in `_price_overrides`.

The lookup (name -> rates) is done once per (model, provider, service tier) and
cached, so pricing a call is a few float operations. Rates whose data depends
on the time of day or on a start date are looked up again after a minute.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._price_library import find_in_library, library_rates, name_forms
from ._price_overrides import Override, load_file, override_key, parse_override
from ._rates import Rates, money
from ._usage import Usage

__all__ = ["Pricer", "PricesArg", "default_pricer", "pricer_for"]

logger = logging.getLogger(__name__)

PricesArg = Mapping[str, Mapping[str, float | str]] | str | os.PathLike[str] | None

# Rates from data with date or time-of-day conditions are looked up again after this.
_DYNAMIC_TTL_S = 60.0
# Model names come from responses; a bound keeps a pathological stream of names finite.
_CACHE_MAX = 4096


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
            table = load_file(Path(prices))
        elif isinstance(prices, Mapping):
            table = prices
        else:
            raise TypeError(
                f"prices must be a mapping, a TOML/JSON file path or None; got {prices!r}"
            )
        self._overrides: dict[str, Override] = {
            override_key(name): parse_override(name, entry) for name, entry in table.items()
        }
        self._cache: dict[tuple[str, str | None, str | None], tuple[Rates | None, float]] = {}
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
            return money(rates, usage, 1)
        except Exception as exc:
            self._failed(model, exc)
            return None, None

    def cost(self, model: str, provider: str | None, usage: Usage) -> float | None:
        """USD cost of one call's `usage` on `model`, or None when the price is unknown."""
        return self.price(model, provider, usage)[0]

    def savings(self, model: str, provider: str | None, usage: Usage) -> float | None:
        """USD that prompt caching saved on this call (may be negative), or None when unknown."""
        return self.price(model, provider, usage)[1]

    def _rates(self, model: str, provider: str | None, tier: str | None) -> Rates | None:
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
    ) -> tuple[Rates | None, float]:
        """(rates or None, monotonic expiry or 0 for never): the slow path, once per key."""
        names = list(name_forms(model))
        for name in names:
            if (found := self._override(name, provider)) is not None:
                return found, 0.0
        hit = find_in_library(model, provider)
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
        rates, dynamic, tier_found = library_rates(prov, info, tier)
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

    def _override(self, name: str, provider: str | None) -> Rates | None:
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


def pricer_for(prices: PricesArg | Pricer) -> Pricer:
    """The pricer for a `prices=` argument: the shared default when None."""
    if isinstance(prices, Pricer):
        return prices
    return default_pricer() if prices is None else Pricer(prices)
