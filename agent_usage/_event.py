"""The `llm_usage` event (schema 1): its type and how one invoke's calls become one.

Data flows one way: each chat-model call's normalised `Usage` is recorded in a
`Tally`; when the invoke ends, `build_event` sums the tally per model, prices it
and returns the event dict that goes to the log and the exporters.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypedDict

from ._pricing import Pricer
from ._usage import Usage

__all__ = ["SCHEMA", "LlmUsageEvent", "ModelUsage", "Status", "Tally", "build_event"]

logger = logging.getLogger(__name__)

SCHEMA = 1
Status = Literal["ok", "error", "cancelled"]


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


@dataclass(frozen=True, slots=True)
class Call:
    """One chat-model call that reported usage."""

    model: str
    provider: str | None
    usage: Usage


@dataclass(slots=True)
class Tally:
    """The calls of one invoke, recorded as they end.

    `list.append` and `+=` on distinct attributes are enough here: callbacks of one
    invoke may arrive from several threads, and a list append is atomic under the
    GIL; the without-usage count is a list too for the same reason.
    """

    started: float = field(default_factory=time.perf_counter)
    calls: list[Call] = field(default_factory=list)
    without_usage: list[None] = field(default_factory=list)


_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
)


def _token_fields(u: Usage) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(u, name) or 0 for name in _TOKEN_FIELDS}
    row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
    if u.cache_creation_1h_input_tokens is not None:
        row["cache_creation_1h_input_tokens"] = u.cache_creation_1h_input_tokens
    return row


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
) -> LlmUsageEvent | None:
    """The event for a finished invoke, or None when no call reported usage."""
    calls = list(tally.calls)
    if not calls:
        return None
    duration_ms = (time.perf_counter() - tally.started) * 1000.0

    per_model: dict[str, tuple[Usage, str | None, int, list[float | None], list[float | None]]] = {}
    for call in calls:
        cost = pricer.cost(call.model, call.provider, call.usage)
        saved = pricer.savings(call.model, call.provider, call.usage)
        prev = per_model.get(call.model)
        if prev is None:
            per_model[call.model] = (call.usage, call.provider, 1, [cost], [saved])
        else:
            usage, provider, n, costs, savings = prev
            costs.append(cost)
            savings.append(saved)
            per_model[call.model] = (usage + call.usage, provider or call.provider, n + 1, costs, savings)

    total = Usage()
    models: dict[str, ModelUsage] = {}
    all_costs: list[float | None] = []
    all_savings: list[float | None] = []
    for name, (usage, provider, n, costs, savings) in per_model.items():
        total = total + usage
        row: dict[str, Any] = {"provider": provider, **_token_fields(usage), "llm_calls": n}
        row["cost_usd"] = _sum_money(costs)
        row["cache_savings_usd"] = _sum_money(savings)
        models[name] = row  # type: ignore[assignment]
        all_costs.extend(costs)
        all_savings.extend(savings)

    if model_label:
        model = model_label
    elif len(models) == 1:
        model = next(iter(models))
    else:
        model = "mixed"

    event: dict[str, Any] = {
        "type": "llm_usage",
        "schema": SCHEMA,
        "event_id": uuid.uuid4().hex,
        "invoke_id": invoke_id,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "session_id": session_id,
        "model": model,
        "status": status,
        "duration_ms": round(duration_ms, 3),
        **_token_fields(total),
        "llm_calls": len(calls),
        "llm_calls_without_usage": len(tally.without_usage),
        "cost_usd": _sum_money(all_costs),
        "cache_savings_usd": _sum_money(all_savings),
        "models": models,
    }
    if total.flags:
        event["flags"] = sorted(total.flags)
    if metadata:
        event["metadata"] = dict(metadata)
    return event  # type: ignore[return-value]
