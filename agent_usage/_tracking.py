"""Scopes opened by root runs: the `tracking()` block and the callback handler.

Where no wrapper says when an invoke starts and ends, a `RootTracker` finds out
from LangChain's callbacks: a run with no parent it knows of is a root, and the
root's scope lasts until that run ends. On a root's start the tracker also makes
the root's scope the active one in the context (see `_scope`), so calls the
callbacks cannot reach (own `callbacks=`, and on Python 3.10 asyncio tasks that
LangChain cannot hand its config to) are still counted in it.

`tracking(log, ...)` puts a RootTracker in the context for the length of a
`with` block: every root invoke started inside is one event. A tracked invoke
(`track_usage`) started inside the block is one of its roots too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any
from uuid import UUID

from ._pricing import PricesArg
from ._recording import Recording
from ._scope import _current, _Frame, open_scopes, pop, push, register_hook
from ._tracker import EventSink, Exporter, Scope, SessionArg, Tracker, internal_failures

__all__ = ["RootTracker", "Tracking", "tracking"]


def _config_of(metadata: Mapping[str, Any] | None, tags: Sequence[str] | None) -> dict[str, Any]:
    """The config-shaped view of a run that session resolution reads."""
    md = dict(metadata or {})
    config: dict[str, Any] = {"metadata": md, "tags": list(tags or [])}
    if md.get("thread_id") is not None:
        config["configurable"] = {"thread_id": md["thread_id"]}
    return config


class RootTracker(Recording):
    """Opens one scope per root run it sees and writes its event when the run ends."""

    def __init__(self, tracker: Tracker, outer: tuple[Scope, ...] = ()) -> None:
        super().__init__()
        register_hook()
        self.tracker = tracker
        self.outer = outer  # scopes active where the tracker was set up
        self._scopes_of: dict[UUID, tuple[Scope, ...]] = {}
        self._roots: dict[UUID, tuple[Scope, _Frame, Token[Recording | None]]] = {}

    @property
    def failures(self) -> dict[str, int]:
        """How many times each telemetry step failed (each cause is logged once)."""
        return self.tracker.failures.counts

    def open_root(
        self, invoke_id: str, config: Mapping[str, Any], outer: Sequence[Scope] = ()
    ) -> Scope:
        """A scope for a root invoke that someone else starts and ends, inside `outer`."""
        guarded = self.tracker.guard is not None
        return Scope(
            self.tracker,
            invoke_id,
            self.tracker.session_for(config),
            metadata=config.get("metadata") if guarded else None,
            opener=self,
            outer=outer,
        )

    def _scopes_at_start(
        self, run_id: UUID, parent_run_id: UUID | None, metadata: Any, tags: Any
    ) -> tuple[Scope, ...]:
        if parent_run_id is not None:
            found = self._scopes_of.get(parent_run_id)
            if found is not None:
                self._scopes_of[run_id] = found
                return found
        current = _current.get()
        if isinstance(current, _Frame) and any(
            s.opener is self and not s.closed for s in current.scopes
        ):
            # Inside a root of ours that LangChain lost track of (Python 3.10 tasks).
            self._scopes_of[run_id] = current.scopes
            return current.scopes
        outer = open_scopes()
        scope = self.open_root(str(run_id), _config_of(metadata, tags), outer)
        scopes = (*outer, scope)
        frame, token = push(scopes)
        self._roots[run_id] = (scope, frame, token)
        self._scopes_of[run_id] = scopes
        return scopes

    def _run_ended(self, run_id: UUID, error: BaseException | None) -> None:
        self._scopes_of.pop(run_id, None)
        root = self._roots.pop(run_id, None)
        if root is None:
            return
        scope, frame, token = root
        scope.closed = True
        pop(frame, token)
        try:
            scope.finish(error)
        except Exception as exc:  # a strict log: a callback cannot hand it to the caller
            self.tracker.failures.failed("writing the llm_usage event", exc)

    # A chain's, a tool's and a retriever's callbacks carry the same keywords; only
    # the positional payload (serialized, inputs / input_str / query; the output)
    # differs, and a root tracker reads none of it: one method serves each event.

    def _run_started(
        self,
        *_payload: Any,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **_kwargs: Any,
    ) -> None:
        try:
            self._scopes_at_start(run_id, parent_run_id, metadata, tags)
        except Exception as exc:
            internal_failures.failed("following a run's start", exc)

    def _run_succeeded(self, *_output: Any, run_id: UUID, **_kwargs: Any) -> None:
        self._end(run_id, None)

    def _run_failed(self, error: BaseException, *, run_id: UUID, **_kwargs: Any) -> None:
        self._end(run_id, error)

    def _end(self, run_id: UUID, error: BaseException | None) -> None:
        try:
            self._run_ended(run_id, error)
        except Exception as exc:
            internal_failures.failed("following a run's end", exc)

    on_chain_start = on_tool_start = on_retriever_start = _run_started
    on_chain_end = on_tool_end = on_retriever_end = _run_succeeded
    on_chain_error = on_tool_error = on_retriever_error = _run_failed


class Tracking:
    """The scope `tracking()` returns: use it with `with` or `async with`."""

    def __init__(self, tracker: Tracker) -> None:
        self._tracker = tracker
        self._tokens: list[Token[Recording | None]] = []

    @property
    def failures(self) -> dict[str, int]:
        """How many times each telemetry step failed (each cause is logged once)."""
        return self._tracker.failures.counts

    def __enter__(self) -> Tracking:
        self._tokens.append(_current.set(RootTracker(self._tracker, open_scopes())))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> Tracking:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def tracking(
    log: EventSink | None,
    *,
    session_id: SessionArg = None,
    metadata: Mapping[str, Any] | None = None,
    budget: Any = None,
    model: str | None = None,
    prices: PricesArg = None,
    exporters: Sequence[Exporter] = (),
) -> Tracking:
    """Track every root invoke started inside a `with` / `async with` block.

    One `llm_usage` event per root invoke (a graph's or chain's `invoke`, or a
    chat model called on its own), as `track_usage` writes per call; for code that
    cannot wrap its agent. The arguments are `track_usage`'s.

    Example:
        ``async with tracking(log, session_id="s1"): await graph.ainvoke(x)``

    Raises:
        TypeError: when an argument has the wrong type.
    """
    return Tracking(
        Tracker(
            log,
            session_id=session_id,
            model=model,
            metadata=metadata,
            prices=prices,
            exporters=exporters,
            budget=budget,
        )
    )
