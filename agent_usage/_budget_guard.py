"""`BudgetGuard`: a `Budget` applied to the model calls of one tracked scope.

It implements the `CallGuard` hook of `_budget.py` against the log's shared
`Ledger`, and serves `UsageBudgetMiddleware` through `check` and `record`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from ._budget import Budget, BudgetExceeded, BudgetScope, CallInfo, UnpricedModelError
from ._ledger import Ledger
from ._pricing import Pricer
from ._usage import Usage

__all__ = ["BudgetGuard", "recording_calls"]

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
        _quiet_callback_warning()
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
