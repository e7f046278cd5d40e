"""Pricing: cache-aware cost of a `Usage` for a model (placeholder until issue 4)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from ._usage import Usage

__all__ = ["Pricer", "PricesArg", "default_pricer"]

PricesArg = Mapping[str, Mapping[str, float]] | str | os.PathLike[str] | None


class Pricer:
    """Prices one model call's `Usage`. Never raises; None means "price unknown"."""

    def __init__(self, prices: PricesArg = None) -> None:
        self._prices = prices

    def cost(self, model: str, provider: str | None, usage: Usage) -> float | None:
        """USD cost of `usage` on `model`, or None when the price is unknown."""
        return None

    def savings(self, model: str, provider: str | None, usage: Usage) -> float | None:
        """USD that prompt caching saved on this call, or None when unknown."""
        return None


@lru_cache(maxsize=1)
def default_pricer() -> Pricer:
    """The shared pricer over the bundled offline price data."""
    return Pricer()
