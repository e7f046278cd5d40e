"""What a tracked scope is and how it writes: `Tracker` (the settings) and `Scope`.

A `Tracker` holds what `track_usage`, `tracking()` or `UsageCallbackHandler`
was given (log, session, label, prices, exporters, budget). A `Scope` is one
tracked invoke under a tracker: the calls it counted, its running totals for a
budget, and its event once it ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from ._budget import BudgetExceeded, CallGuard, CallInfo
from ._event import Call, LlmUsageEvent, Status, Tally, build_event
from ._pricing import PricesArg, pricer_for

__all__ = [
    "EventSink",
    "Exporter",
    "Failures",
    "Scope",
    "SessionArg",
    "Tracker",
    "internal_failures",
    "resolve_session",
    "status_of",
]

logger = logging.getLogger("agent_usage")

SessionArg = str | Callable[[Mapping[str, Any]], "str | None"] | None

# In-memory sinks of `agent_usage.testing.capture_events()`: every event any
# tracker writes is appended to each (process-wide, as structlog's capture_logs).
captures: list[list[Any]] = []


class EventSink(Protocol):
    """Where events are written: an `EventLog`, or anything with `append`."""

    def append(self, event: Mapping[str, Any]) -> None: ...


class Exporter(Protocol):
    """A non-blocking destination for events beyond the local log."""

    def export(self, event: Mapping[str, Any]) -> None: ...


class Failures:
    """Logs each failure cause once and counts every occurrence."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def failed(self, cause: str, exc: BaseException) -> None:
        n = self.counts.get(cause, 0)
        self.counts[cause] = n + 1
        if n == 0:
            logger.warning("agent_usage: %s failed (%r); counting further failures", cause, exc)


# Failures of the bookkeeping that belong to no one tracker (a callback's own bug).
internal_failures = Failures()


def status_of(exc: BaseException | None) -> Status:
    """The event status for how an invoke ended."""
    if exc is None:
        return "ok"
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt)):
        return "cancelled"
    return "error"


def resolve_session(
    config: Mapping[str, Any], session: SessionArg, failures: Failures
) -> str | None:
    """session_id: config metadata, else the tracker's (called with the config), else thread_id."""
    sid = (config.get("metadata") or {}).get("session_id")
    if sid is None and session is not None:
        if isinstance(session, str):
            sid = session
        else:
            try:
                sid = session(config)
            except Exception as exc:
                failures.failed("the session_id callable", exc)
    if sid is None:
        sid = (config.get("configurable") or {}).get("thread_id")
    return None if sid is None else str(sid)


def _log_key(sink: object) -> object:
    """What makes two trackers write to the same log: its real path, else the sink itself."""
    path = getattr(sink, "path", None)
    if isinstance(path, (str, os.PathLike)):
        try:
            return os.path.realpath(os.fspath(path))
        except (OSError, ValueError):
            pass
    return ("sink", id(sink))


class Tracker:
    """What a tracked scope writes and where: the settings shared by all its invokes.

    Never raises into the agent once built; a failure to build, write or export an
    event is logged once per cause and counted in `failures`.
    """

    def __init__(
        self,
        sink: EventSink | None,
        *,
        session_id: SessionArg = None,
        model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prices: PricesArg = None,
        exporters: Sequence[Exporter] = (),
        budget: Any = None,
    ) -> None:
        if sink is not None and not callable(getattr(sink, "append", None)):
            raise TypeError(f"log must be an EventLog or have append(event); got {sink!r}")
        if session_id is not None and not (isinstance(session_id, str) or callable(session_id)):
            raise TypeError(f"session_id must be a str, a callable or None; got {session_id!r}")
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a str label or None; got {model!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping or None; got {metadata!r}")
        for exporter in exporters:
            if not callable(getattr(exporter, "export", None)):
                raise TypeError(f"exporters must have export(event); got {exporter!r}")
        if budget is not None and not callable(getattr(budget, "_guard", None)):
            raise TypeError(f"budget must be an agent_usage Budget; got {budget!r}")
        self.sink = sink
        self.session_id = session_id
        self.model = model
        self.metadata = dict(metadata) if metadata else None
        self.pricer = pricer_for(prices)
        self.exporters = tuple(exporters)
        self.log_key = _log_key(sink)
        self.failures = Failures()
        self.guard: CallGuard | None = (
            budget._guard(log=sink, pricer=self.pricer) if budget is not None else None
        )

    def session_for(self, config: Mapping[str, Any]) -> str | None:
        """The session id of an invoke run with `config`."""
        return resolve_session(config, self.session_id, self.failures)

    def emit(self, scope: Scope, exc: BaseException | None) -> LlmUsageEvent | None:
        """Write the event of a finished scope (nothing when it used no tokens).

        Raises only a strict log's write error, and only when the invoke itself
        succeeded: the agent's own exception always reaches the caller unchanged.
        """
        try:
            event = build_event(
                scope.tally,
                invoke_id=scope.invoke_id,
                session_id=scope.session_id,
                status=status_of(exc),
                pricer=self.pricer,
                model_label=self.model,
                metadata=self.metadata,
                parent_invoke_id=scope.parent_invoke_id,
                budget=exc.as_event_field() if isinstance(exc, BudgetExceeded) else None,
            )
        except Exception as build_exc:
            self.failures.failed("building the llm_usage event", build_exc)
            return None
        if event is None:
            return None
        for captured in captures:
            captured.append(event)
        if self.sink is not None:
            try:
                self.sink.append(event)
            except Exception as write_exc:
                if exc is None and getattr(self.sink, "strict", False):
                    raise
                self.failures.failed("writing the llm_usage event", write_exc)
        for exporter in self.exporters:
            try:
                exporter.export(event)
            except Exception as export_exc:
                self.failures.failed(f"exporting to {type(exporter).__name__}", export_exc)
        if self.guard is not None:
            try:
                self.guard.invoke_finished(event)
            except Exception as guard_exc:
                self.failures.failed("the budget's invoke_finished", guard_exc)
        return event


class Scope:
    """One tracked invoke: the calls it made, and the event once it ends."""

    __slots__ = (
        "claimed",
        "closed",
        "cost",
        "external_keys",
        "invoke_id",
        "langchain_keys",
        "metadata",
        "opener",
        "parent_invoke_id",
        "root_invoke_id",
        "session_id",
        "tally",
        "tokens",
        "tracker",
    )

    def __init__(
        self,
        tracker: Tracker,
        invoke_id: str,
        session_id: str | None,
        *,
        metadata: Mapping[str, Any] | None = None,
        opener: object = None,
        outer: Sequence[Scope] = (),
    ) -> None:
        self.tracker = tracker
        self.invoke_id = invoke_id
        # The nearest enclosing scope writing to the same log holds this one's
        # calls in its event: readers skip events with a parent, so none counts
        # twice. A parent in another log is not one (that log has no outer event).
        self.parent_invoke_id: str | None = None
        self.root_invoke_id = invoke_id  # the event of this log that counts the calls
        for enclosing in reversed(outer):
            if enclosing.tracker.log_key == tracker.log_key:
                self.parent_invoke_id = enclosing.invoke_id
                self.root_invoke_id = enclosing.root_invoke_id
                break
        self.session_id = session_id
        self.tally = Tally()
        self.claimed: set[UUID] = set()  # run ids of the model calls counted here
        # Provider response ids counted here, by where they were seen: a call seen
        # both ways (ChatLiteLLM and the LiteLLM logger) is counted once.
        self.langchain_keys: set[str] = set()
        self.external_keys: set[str] = set()
        self.closed = False
        self.opener = opener  # the root tracker that opened it, if any
        self.metadata = metadata  # the invoke's config metadata (for budgets)
        self.tokens = 0  # running totals, kept only for a budget
        self.cost: float | None = 0.0

    def _info(self, model: str | None, call_id: str | None) -> CallInfo:
        md = self.metadata or {}
        if self.tracker.metadata:
            md = {**self.tracker.metadata, **md}
        return CallInfo(
            self.invoke_id,
            self.session_id,
            md,
            model,
            self.tokens,
            self.cost,
            call_id,
            self.root_invoke_id,
        )

    def before_call(self, model: str | None, call_id: str | None = None) -> None:
        """Ask the budget whether a call may start; BudgetExceeded stops it."""
        guard = self.tracker.guard
        if guard is None:
            return
        try:
            guard.before_call(self._info(model, call_id))
        except BudgetExceeded:
            raise
        except Exception as exc:
            self.tracker.failures.failed("the budget's before_call", exc)

    def add(
        self,
        call: Call,
        keys: Sequence[str] = (),
        *,
        external: bool = False,
        call_id: str | None = None,
    ) -> None:
        """Count one call that reported usage, unless the other path counted its response.

        `call_id` names the call for the budget (the same in every scope that counts
        it), so guards of nested scopes sharing one ledger count it once.
        """
        if keys:
            if external:
                if not self.langchain_keys.isdisjoint(keys):
                    return
                self.external_keys.update(keys)
            else:
                if not self.external_keys.isdisjoint(keys):
                    return
                self.langchain_keys.update(keys)
        self.tally.calls.append(call)
        guard = self.tracker.guard
        if guard is None:
            return
        try:
            cost, _ = self.tracker.pricer.price(call.model, call.provider, call.usage)
            tokens = call.usage.total_tokens or 0
            self.tokens += tokens
            self.cost = None if cost is None or self.cost is None else self.cost + cost
            guard.after_call(self._info(call.model, call_id), tokens, cost)
        except Exception as exc:
            self.tracker.failures.failed("the budget's after_call", exc)

    def finish(self, exc: BaseException | None) -> LlmUsageEvent | None:
        """Close the scope and write its event."""
        self.closed = True
        return self.tracker.emit(self, exc)
