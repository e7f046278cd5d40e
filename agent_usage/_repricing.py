"""Re-pricing logged events with other prices: `report --prices` and `dashboard --prices`.

It sits beside the report that uses it: the event log keeps what was priced when the
invoke ran, and a report may price the same tokens again with the user's rates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._event import _sum_money
from ._pricing import Pricer, PricesArg
from ._rates import money
from ._usage import Usage

__all__ = ["reprice", "repricer"]


def repricer(prices: PricesArg) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function re-pricing events with `prices` (overrides first, then the price data)."""
    pricer = Pricer(prices)
    return lambda event: reprice(pricer, event)


def reprice(pricer: Pricer, event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an `llm_usage` event priced with `pricer` (its overrides first).

    Each entry of ``event["models"]`` gets a new `cost_usd` and
    `cache_savings_usd` from its token fields, and the event's totals are
    their sums (None when any model is unpriced). Per-model sums cannot
    apply per-call long-context tiers: a model with one call is priced
    exactly; a model with several is priced at its base (short-context)
    rates. The service tier is not in the event, so standard rates apply.
    An event without a `models` object is returned unchanged (copied).
    """
    out = dict(event)
    models = event.get("models")
    if not isinstance(models, Mapping):
        return out
    new_models: dict[str, Any] = {}
    costs: list[float | None] = []
    savings: list[float | None] = []
    for name, row in models.items():
        cost: float | None = None
        saved: float | None = None
        if isinstance(row, Mapping):
            cost, saved = _price_row(pricer, str(name), row)
            row = {**row, "cost_usd": cost, "cache_savings_usd": saved}
        new_models[name] = row
        costs.append(cost)
        savings.append(saved)
    out["models"] = new_models
    out["cost_usd"] = _sum_money(costs)
    out["cache_savings_usd"] = _sum_money(savings)
    return out


def _price_row(
    pricer: Pricer, name: str, row: Mapping[str, Any]
) -> tuple[float | None, float | None]:
    provider = row.get("provider")
    if not isinstance(provider, str):
        provider = None
    try:
        rates = pricer._rates(name, provider, None)
        if rates is None:
            return None, None
        usage = Usage(
            input_tokens=_row_int(row, "input_tokens"),
            output_tokens=_row_int(row, "output_tokens"),
            cache_read_input_tokens=_row_int(row, "cache_read_input_tokens"),
            cache_creation_input_tokens=_row_int(row, "cache_creation_input_tokens"),
            cache_creation_1h_input_tokens=_row_int(row, "cache_creation_1h_input_tokens"),
            reasoning_tokens=_row_int(row, "reasoning_tokens"),
        )
        calls = _row_int(row, "llm_calls") or 1
        # One call: the sum is that call, so its tier is known; otherwise base rates.
        applied = rates.at(usage.input_tokens or 0) if calls == 1 else rates
        return money(applied, usage, calls)
    except Exception as exc:
        pricer._failed(name, exc)
        return None, None


def _row_int(row: Mapping[str, Any], key: str) -> int | None:
    value = row.get(key)
    return value if type(value) is int and value >= 0 else None
