"""The `llm_usage` event (schema 1): its type and how one invoke's calls become one.

Data flows one way: each chat-model call's normalised `Usage` is recorded in a
`Tally`; when the invoke ends, `build_event` sums the tally per model, prices it
and returns the event dict that goes to the log and the exporters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, TypedDict

from ._pricing import Pricer
from ._usage import Usage

__all__ = ["SCHEMA", "LlmUsageEvent", "ModelUsage", "Status", "Tally", "build_event"]

SCHEMA = 1
Status = Literal["ok", "error", "cancelled", "budget_exceeded"]


class ModelUsage(TypedDict, total=False):
    """One model's share of an invoke, under `event["models"][name]`."""

    provider: str | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cache_creation_1h_input_tokens: int
    reasoning_tokens: int
    llm_calls: int
    cost_usd: float | None
    cache_savings_usd: float | None


class LlmUsageEvent(TypedDict, total=False):
    """One `llm_usage` line: the usage of one agent invoke. See README "The event"."""

    type: Literal["llm_usage"]
    schema: int
    event_id: str
    invoke_id: str
    timestamp: str
    session_id: str | None
    model: str
    status: Status
    duration_ms: float
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cache_creation_1h_input_tokens: int
    reasoning_tokens: int
    llm_calls: int
    llm_calls_without_usage: int
    cost_usd: float | None
    cache_savings_usd: float | None
    models: dict[str, ModelUsage]
    flags: list[str]
    metadata: dict[str, Any]
    llm_cache_hits: int
    budget: dict[str, Any]
    parent_invoke_id: str


class Call(NamedTuple):
    """One chat-model call that reported usage (a tuple: built once per call, cheaply)."""

    model: str
    provider: str | None
    usage: Usage


class Tally:
    """The calls of one invoke, recorded as they end.

    Callbacks of one invoke may arrive from several threads; a list append is
    atomic under the GIL, so the counts are lists too rather than `+=` on ints.
    `cache_hits` are calls answered from LangChain's LLM cache: no request was
    sent, so they carry no usage and no cost. (A plain class: one is built per
    invoke, and a dataclass's default factories cost more than the rest.)
    """

    __slots__ = ("cache_hits", "calls", "started", "without_usage")

    def __init__(self, started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started  # perf_counter()
        self.calls: list[Call] = []
        self.without_usage: list[None] = []
        self.cache_hits: list[None] = []


_TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
)


def _token_fields(usages: list[Usage]) -> tuple[dict[str, Any], frozenset[str]]:
    """The summed token fields of some calls (event names), and their flags.

    Plain int sums: no intermediate `Usage` per addition (one is built per call
    already, and building more costs more than the sums).
    """
    inp = out = read = creation = reasoning = 0
    one_hour: int | None = None
    flags: frozenset[str] = frozenset()
    for u in usages:
        inp += u.input_tokens or 0
        out += u.output_tokens or 0
        read += u.cache_read_input_tokens or 0
        creation += u.cache_creation_input_tokens or 0
        reasoning += u.reasoning_tokens or 0
        if u.cache_creation_1h_input_tokens is not None:
            one_hour = (one_hour or 0) + u.cache_creation_1h_input_tokens
        if u.flags:
            flags = flags | u.flags
    row: dict[str, Any] = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": creation,
        "reasoning_tokens": reasoning,
    }
    if one_hour is not None:
        row["cache_creation_1h_input_tokens"] = one_hour
    return row, flags


_stamp: tuple[int, str] = (-1, "")


def _now_iso() -> str:
    """`datetime.now(timezone.utc).isoformat()` with microseconds always shown, cheaply.

    The seconds part is formatted once per second (the datetime call costs more
    than the rest of the event).
    """
    global _stamp
    now = time.time()
    second = int(now)
    cached = _stamp
    if cached[0] != second:
        cached = _stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((now - second) * 1e6):06d}+00:00"


def _sum_money(values: list[float | None]) -> float | None:
    """Sum of prices; None as soon as one is unknown (never a silent 0)."""
    total = 0.0
    for v in values:
        if v is None:
            return None
        total += v
    return total


def build_event(
    tally: Tally,
    *,
    invoke_id: str,
    session_id: str | None,
    status: Status,
    pricer: Pricer,
    model_label: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    budget: Mapping[str, Any] | None = None,
    parent_invoke_id: str | None = None,
) -> LlmUsageEvent | None:
    """The event for a finished invoke, or None when no call reported usage.

    `budget` is the limit that stopped the invoke (status "budget_exceeded");
    `parent_invoke_id` the enclosing tracked invoke whose event holds these calls too.
    """
    calls = list(tally.calls)
    if not calls:
        return None
    duration_ms = (time.perf_counter() - tally.started) * 1000.0

    models: dict[str, ModelUsage] = {}
    all_costs: list[float | None] = []
    all_savings: list[float | None] = []
    by_model: dict[str, list[Call]] = {}
    for call in calls:
        by_model.setdefault(call.model, []).append(call)
    totals: dict[str, Any] | None = None
    flags: frozenset[str] = frozenset()
    for name, group in by_model.items():
        # Priced call by call: long-context tiers apply per request, not per sum.
        costs: list[float | None] = []
        savings: list[float | None] = []
        provider = None
        for c in group:
            cost, saved = pricer.price(c.model, c.provider, c.usage)
            costs.append(cost)
            savings.append(saved)
            provider = provider or c.provider
        tokens, flags = _token_fields([c.usage for c in group])
        if len(by_model) == 1:
            totals = tokens  # one model: its row is the total (the common case)
        row: dict[str, Any] = {"provider": provider, **tokens}
        row["llm_calls"] = len(group)
        row["cost_usd"] = _sum_money(costs)
        row["cache_savings_usd"] = _sum_money(savings)
        models[name] = row  # type: ignore[assignment]
        all_costs += costs
        all_savings += savings
    if totals is None:
        totals, flags = _token_fields([c.usage for c in calls])

    if model_label:
        model = model_label
    elif len(models) == 1:
        model = next(iter(models))
    else:
        model = "mixed"

    event: dict[str, Any] = {
        "type": "llm_usage",
        "schema": SCHEMA,
        "event_id": os.urandom(16).hex(),
        "invoke_id": invoke_id,
        "timestamp": _now_iso(),
        "session_id": session_id,
        "model": model,
        "status": status,
        "duration_ms": round(duration_ms, 3),
        **totals,
        "llm_calls": len(calls),
        "llm_calls_without_usage": len(tally.without_usage),
        "cost_usd": _sum_money(all_costs),
        "cache_savings_usd": _sum_money(all_savings),
        "models": models,
    }
    if flags:
        event["flags"] = sorted(flags)
    if metadata:
        event["metadata"] = dict(metadata)
    if tally.cache_hits:
        event["llm_cache_hits"] = len(tally.cache_hits)
    if budget is not None:
        event["budget"] = dict(budget)
    if parent_invoke_id is not None:
        event["parent_invoke_id"] = parent_invoke_id
    return event  # type: ignore[return-value]
