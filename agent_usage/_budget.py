"""Spend limits: `Budget`, `BudgetExceeded`, and the hook the recorder calls per model call.

The counting core (the tracked scope) knows nothing of budgets beyond the
`CallGuard` protocol below: before each chat-model call of a tracked invoke it
calls `before_call`, after each call that reported usage `after_call`, and when
the invoke's event is written `invoke_finished`. A guard stops a call by raising
`BudgetExceeded` from `before_call`.

`Budget._guard` builds the guard: invoke limits are checked against what the
invoke has spent so far (the recorder tells), session and day limits against the
log's shared `Ledger` (`_ledger.py`).

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

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ._ledger import Ledger, ledger_for
from ._pricing import Pricer
from ._usage import Usage

__all__ = ["Budget", "BudgetExceeded", "CallGuard", "CallInfo", "UnpricedModelError"]

logger = logging.getLogger(__name__)

# Set by the budget middleware around a model call: the ledgers a tracked scope's
# guard counted the call in, so that the middleware does not count it again.
_RECORDED: ContextVar[list[object] | None] = ContextVar("agent_usage_budget_recorded", default=None)


@contextlib.contextmanager
def recording_calls() -> Iterator[list[object]]:
    """Collect the ledgers that guards count calls in, within this context."""
    recorded: list[object] = []
    token = _RECORDED.set(recorded)
    try:
        yield recorded
    finally:
        _RECORDED.reset(token)


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
        _quiet_callback_warning()
        return BudgetGuard(self, ledger_for(log), pricer)


class _NotACallbackError(logging.Filter):
    """Drops langchain-core's "Error in ... callback" warning for a budget stop.

    A guard stops a call by raising `BudgetExceeded` from a callback; langchain-core
    logs every exception a callback raises as a warning before re-raising it. The
    stop reaches the caller as the exception itself, so that line would only be noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == "Error in %s.%s callback: %s" and isinstance(args, tuple) and args:
            shown = args[-1]
            return not (isinstance(shown, str) and shown.startswith(_STOP_REPRS))
        return True


_STOP_REPRS = ("BudgetExceeded(", "UnpricedModelError(")
_QUIET = _NotACallbackError()


def _quiet_callback_warning() -> None:
    manager_logger = logging.getLogger("langchain_core.callbacks.manager")
    if _QUIET not in manager_logger.filters:
        manager_logger.addFilter(_QUIET)


class BudgetGuard:
    """A `Budget` applied to the calls of one tracked scope (see `CallGuard`).

    Also used by `UsageBudgetMiddleware` through `check` and `record`.
    """

    def __init__(self, budget: Budget, ledger: Ledger, pricer: Pricer) -> None:
        self.budget = budget
        self.ledger = ledger
        self.pricer = pricer
        # model -> priced?  (one lookup per model and guard)
        self._priced: dict[str, bool] = {}
        # Priced part of each running invoke's spend, for when the recorder's is None.
        self._invoke_usd: dict[str, float] = {}
        self._blocked: str | None = None  # a model found unpriced after its call
        self._warned: set[str] = set()
        self._session_limits = not (budget.session_usd is None and budget.session_tokens is None)
        self._day_limits = not (budget.day_usd is None and budget.day_tokens is None)
        self._needs_ledger = self._session_limits or self._day_limits

    # ---------------------------------------------------------------- CallGuard

    def before_call(self, call: CallInfo) -> None:
        """Raise `BudgetExceeded` when a limit of the call's scopes is already reached."""
        usd = call.invoke_cost_usd
        if usd is None:
            usd = self._invoke_usd.get(call.invoke_id, 0.0)
        self.check(
            session_id=call.session_id,
            metadata=call.metadata,
            model=call.model,
            invoke_usd=usd,
            invoke_tokens=call.invoke_tokens,
        )

    def after_call(self, call: CallInfo, tokens: int, cost_usd: float | None) -> None:
        """Count a finished call in the shared ledger (at once, for concurrent invokes)."""
        if cost_usd is None:
            if call.model is not None:
                self.unpriced_after_call(call.model)
        else:
            self._invoke_usd[call.invoke_id] = self._invoke_usd.get(call.invoke_id, 0.0) + cost_usd
        self.record(
            call_id=call.call_id,
            invoke_ids=(call.root_invoke_id or call.invoke_id,),
            session_id=call.session_id,
            metadata=call.metadata,
            usd=cost_usd,
            tokens=tokens,
        )

    def invoke_finished(self, event: Mapping[str, Any]) -> None:
        """Forget the finished invoke's running total."""
        invoke_id = event.get("invoke_id")
        if isinstance(invoke_id, str):
            self._invoke_usd.pop(invoke_id, None)

    # ---------------------------------------------------------------- shared core

    def record(
        self,
        *,
        call_id: str | None,
        invoke_ids: tuple[str, ...],
        session_id: str | None,
        metadata: Mapping[str, Any] | None,
        usd: float | None,
        tokens: int,
    ) -> None:
        """Add a finished call to the ledger (an unknown cost adds tokens only).

        Only budgets with session or day limits count calls there: the ledger is
        read from the log when first needed, and that read covers every invoke
        whose event was written before.
        """
        if not self._needs_ledger:
            return
        recorded = _RECORDED.get()
        if recorded is not None:
            recorded.append(self.ledger)
        self.ledger.record(
            call_id=call_id,
            invoke_ids=invoke_ids,
            session_id=session_id,
            metadata=metadata,
            usd=usd or 0.0,
            tokens=tokens,
        )

    def check(
        self,
        *,
        session_id: str | None,
        metadata: Mapping[str, Any] | None,
        model: str | None,
        invoke_usd: float,
        invoke_tokens: int,
    ) -> None:
        """Raise `BudgetExceeded` for the first limit already reached (invoke, session, day)."""
        b = self.budget
        self.check_model(model, session_id)
        self._over("invoke", b.invoke_usd, b.invoke_tokens, (invoke_usd, invoke_tokens), session_id)
        if not self._needs_ledger:
            return
        key = b.day_key
        if key is not None and not (metadata and key in metadata):
            key = None  # held to the day's overall total: it cannot escape the limit
        session, day = self.ledger.spent(
            session_id if self._session_limits else None,
            day=self._day_limits,
            day_key=key,
            day_value=metadata[key] if key is not None and metadata else None,
        )
        if session is not None:
            self._over("session", b.session_usd, b.session_tokens, session, session_id)
        if day is not None:
            self._over("day", b.day_usd, b.day_tokens, day, session_id)

    def check_model(self, model: str | None, session_id: str | None) -> None:
        """Raise `UnpricedModelError` when a USD limit is set and `model` has no price.

        Also when an earlier call's model turned out unpriced (`unpriced_after_call`).
        With unpriced="allow", log one warning instead.
        """
        if not self.budget._has_usd:
            return
        if self._blocked is not None:
            self._unpriced(self._blocked, session_id, after=False)
        if model is not None:
            priced = self._priced.get(model)
            if priced is None:
                priced = self._priced[model] = self._is_priced(model)
            if not priced:
                self._unpriced(model, session_id, after=False)

    def unpriced_after_call(self, model: str) -> None:
        """A finished call's model had no price: refuse the next call (or warn)."""
        if self.budget._has_usd:
            self._unpriced(model, None, after=True)

    @staticmethod
    def _over(
        scope: BudgetScope,
        usd_limit: float | None,
        token_limit: int | None,
        spent: tuple[float, int],
        session_id: str | None,
    ) -> None:
        usd, tokens = spent
        if usd_limit is not None and usd >= usd_limit:
            raise BudgetExceeded(scope, usd_limit, round(usd, 10), "usd", session_id)
        if token_limit is not None and tokens >= token_limit:
            raise BudgetExceeded(scope, token_limit, tokens, "tokens", session_id)

    def _is_priced(self, model: str) -> bool:
        return self.pricer.cost(model, None, Usage(input_tokens=1, output_tokens=1)) is not None

    def _unpriced(self, model: str, session_id: str | None, *, after: bool) -> None:
        """Block (raise now, or before the next call) or warn once about an unpriced model."""
        b = self.budget
        if b.unpriced == "allow":
            if model not in self._warned:
                self._warned.add(model)
                logger.warning(
                    "agent_usage: model %r has no known price; the budget's USD limits do not "
                    "apply to it (unpriced='allow'), only its token limits",
                    model,
                )
            return
        if after:
            self._blocked = model  # its call is done: the next one is refused
            return
        scope: BudgetScope
        if b.invoke_usd is not None:
            scope, limit = "invoke", b.invoke_usd
        elif b.session_usd is not None:
            scope, limit = "session", b.session_usd
        else:
            scope, limit = "day", b.day_usd or 0.0
        raise UnpricedModelError(model, scope, limit, 0.0, session_id)
