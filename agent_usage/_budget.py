"""Spend limits: `Budget`, `BudgetExceeded`, and the hook the recorder calls per model call.

The counting core (the tracked scope) knows nothing of budgets beyond the
`CallGuard` protocol below: before each chat-model call of a tracked invoke it
calls `before_call`, after each call that reported usage `after_call`, and when
the invoke's event is written `invoke_finished`. A guard stops a call by raising
`BudgetExceeded` from `before_call`.

`Budget._guard` builds the guard (`_budget_guard.py`): invoke limits are checked
against what the invoke has spent so far (the recorder tells), session and day
limits against the log's shared `Ledger` (`_ledger.py`).

Over-spend bound: a limit is checked before a call starts, against every call
that has finished. A call already in flight when another call crosses the limit
still completes and is counted. So a scope can end over its limit by at most one
call per model call running concurrently in it: with invokes that make one call
at a time, one call per concurrently running invoke of the same session or day.
Within a process, a finished call counts at once; another process sees an
invoke's calls when its event is written (at the invoke's end), so across
processes a running invoke counts as in flight until then.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ._ledger import ledger_for
from ._pricing import Pricer

if TYPE_CHECKING:
    from ._budget_guard import BudgetGuard

__all__ = ["Budget", "BudgetExceeded", "CallGuard", "CallInfo", "UnpricedModelError"]

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
    call_id: str | None = None  # the chat-model run: counted once however many guards see it
    # The invoke whose event in this log will hold the call (the outermost tracked
    # invoke writing there): the ledger skips that event when it reads it back.
    root_invoke_id: str | None = None


class CallGuard(Protocol):
    """The budget hook of a tracked scope (see module docstring)."""

    def before_call(self, call: CallInfo) -> None: ...

    def after_call(self, call: CallInfo, tokens: int, cost_usd: float | None) -> None: ...

    def invoke_finished(self, event: Mapping[str, Any]) -> None: ...


class UnpricedModelError(BudgetExceeded):
    """A USD limit cannot be checked: `model` has no known price.

    Raised before the model's first call (or before the next call, when the
    model's name was only known from its answer), unless the budget says
    `unpriced="allow"`. A `BudgetExceeded`, so code that stops on budgets stops
    here too; fix it by giving the model a price with `prices=`.
    """

    def __init__(
        self,
        model: str,
        scope: BudgetScope,
        limit: float,
        spent: float = 0.0,
        session_id: str | None = None,
    ) -> None:
        super().__init__(scope, limit, spent, "usd", session_id)
        self.model = model
        self.args = (
            f"model {model!r} has no known price, so the {scope} budget of ${limit:.6g} "
            f"cannot be checked. Give it a price with prices={{{model!r}: {{'input': ..., "
            "'output': ...}} (USD per million tokens) where you track usage, or use "
            "Budget(unpriced='allow') to apply only token limits to it",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.model, self.scope, self.limit, self.spent, self.session_id))

    def as_event_field(self) -> dict[str, Any]:
        """The `budget` object of the stopped invoke, naming the unpriced model."""
        return {**super().as_event_field(), "unpriced_model": self.model}


def _check_usd(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Budget {name} must be a number of USD or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"Budget {name} must be a finite number >= 0, got {value!r}")


def _check_tokens(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Budget {name} must be an int number of tokens or None, got {value!r}")
    if value < 0:
        raise ValueError(f"Budget {name} must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Budget:
    """Spend limits for tracked invokes: any subset of USD and token limits.

    Args:
        invoke_usd, invoke_tokens: per invoke (one `invoke`/`stream` of the agent).
        session_usd, session_tokens: per session id, over the whole log: a limit
            holds across restarts and across processes sharing the log. An invoke
            without a session id has no session limit.
        day_usd, day_tokens: per UTC day, over the whole log.
        day_key: a metadata key (e.g. "user_id"): each of its values gets its own
            day limits instead of sharing one. A call whose metadata lacks the key
            is held to the day's overall total (it cannot escape the limit).
        unpriced: "block" (default): a model without a known price raises
            `UnpricedModelError` before its first call when a USD limit is set;
            "allow": only token limits apply to it (one warning is logged).

    Tokens are total tokens (input + output, cache and reasoning included);
    dollars are the exact cache-aware cost the events carry.

    A call that would start with a limit already reached is not sent: the invoke
    raises `BudgetExceeded`. The call in flight when a limit is crossed completes
    and is counted, so a scope may end over its limit by at most one call per
    concurrently running model call in it (one per concurrent invoke of the same
    session or day, for invokes that call one model at a time). Other processes
    sharing the log see an invoke's calls when its event is written, at its end.

    `day_key` values come from the tracked scope's metadata (merged with the
    invoke config's); only the wrapper's `metadata=` is written to the events, so
    only it is seen by other processes and after a restart.

    Raises:
        TypeError: a limit that is not a number (tokens: not an int), or a bad `day_key`.
        ValueError: a negative or non-finite limit, no limit at all, `day_key`
            without a day limit, or `unpriced` not "block"/"allow".
    """

    invoke_usd: float | None = None
    session_usd: float | None = None
    day_usd: float | None = None
    invoke_tokens: int | None = None
    session_tokens: int | None = None
    day_tokens: int | None = None
    day_key: str | None = None
    unpriced: Literal["block", "allow"] = "block"

    def __post_init__(self) -> None:
        for name in ("invoke_usd", "session_usd", "day_usd"):
            _check_usd(name, getattr(self, name))
        for name in ("invoke_tokens", "session_tokens", "day_tokens"):
            _check_tokens(name, getattr(self, name))
        limits = (self.invoke_usd, self.session_usd, self.day_usd, self.invoke_tokens)
        if all(v is None for v in (*limits, self.session_tokens, self.day_tokens)):
            raise ValueError("Budget needs at least one limit, e.g. Budget(session_usd=5.0)")
        if self.day_key is not None:
            if not isinstance(self.day_key, str):
                raise TypeError(
                    f"Budget day_key must be a metadata key, a str; got {self.day_key!r}"
                )
            if not self.day_key:
                raise ValueError("Budget day_key must be a non-empty metadata key, got ''")
            if self.day_usd is None and self.day_tokens is None:
                raise ValueError(
                    f"Budget day_key={self.day_key!r} needs day_usd or day_tokens to apply to"
                )
        if self.unpriced not in ("block", "allow"):
            raise ValueError(f"Budget unpriced must be 'block' or 'allow', got {self.unpriced!r}")

    @property
    def _has_usd(self) -> bool:
        return not (self.invoke_usd is None and self.session_usd is None and self.day_usd is None)

    def _guard(self, *, log: object, pricer: Pricer) -> BudgetGuard:
        """The `CallGuard` for one tracked scope writing to `log`, pricing with `pricer`."""
        # Imported here: the guard module raises this module's exceptions.
        from ._budget_guard import BudgetGuard

        return BudgetGuard(self, ledger_for(log), pricer)
