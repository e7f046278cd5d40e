"""Spend limits: `Budget`, `BudgetExceeded`, and the hook the recorder calls per model call.

The counting core (the tracked scope) knows nothing of budgets beyond the
`CallGuard` protocol below: before each chat-model call of a tracked invoke it
calls `before_call`, after each call that reported usage `after_call`, and when
the invoke's event is written `invoke_finished`. A guard stops a call by raising
`BudgetExceeded` from `before_call`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["BudgetExceeded", "CallGuard", "CallInfo"]

BudgetScope = Literal["invoke", "session", "day"]
BudgetUnit = Literal["usd", "tokens"]


class BudgetExceeded(Exception):
    """A model call was not sent because a budget's limit was already reached.

    Attributes:
        scope: "invoke", "session" or "day".
        limit: the limit that was reached, in `unit`.
        spent: what the scope had spent when the call was refused, in `unit`.
        unit: "usd" or "tokens".
        session_id: the session of the stopped invoke (or None).
    """

    def __init__(
        self,
        scope: BudgetScope,
        limit: float,
        spent: float,
        unit: BudgetUnit,
        session_id: str | None = None,
    ) -> None:
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.unit = unit
        self.session_id = session_id
        shown = (
            f"${spent:.6g} of ${limit:.6g}"
            if unit == "usd"
            else f"{spent:,.0f} of {limit:,.0f} tokens"
        )
        super().__init__(f"{scope} budget reached: spent {shown}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.scope, self.limit, self.spent, self.unit, self.session_id))

    def as_event_field(self) -> dict[str, Any]:
        """The `budget` object written on the stopped invoke's event."""
        return {"scope": self.scope, "limit": self.limit, "spent": self.spent, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What a guard knows about the call about to start (or just finished).

    invoke_tokens / invoke_cost_usd: what the enclosing tracked invoke has spent
    so far (cost None when some model in it is unpriced).
    """

    invoke_id: str
    session_id: str | None
    metadata: Mapping[str, Any]
    model: str | None
    invoke_tokens: int
    invoke_cost_usd: float | None


class CallGuard(Protocol):
    """The budget hook of a tracked scope (see module docstring)."""

    def before_call(self, call: CallInfo) -> None: ...

    def after_call(self, call: CallInfo, tokens: int, cost_usd: float | None) -> None: ...

    def invoke_finished(self, event: Mapping[str, Any]) -> None: ...
