"""The tracked scope: one way of counting, scoped by context rather than by config.

A `Scope` is one tracked invoke: it collects the usage of every chat-model call
made while it is active and writes one event when it ends. Which scopes are
active is held in one context variable, `_current`, registered once per process
with langchain-core's configure hook (`register_configure_hook`, when the first
tracker is built). Every callback manager LangChain configures while a scope is
active therefore gets the handler stored there, also for code that passes its
own `callbacks` (which replace the inherited ones), and also in asyncio tasks
and executor threads, which copy the context. Entering a scope sets the
variable and leaving it resets it: no hook is added per scope, so ten thousand
scopes cost later invokes nothing (unlike `get_usage_metadata_callback`,
langchain issue 32300).

The variable holds either a `_Frame` (the scopes of the tracked invokes running
here, outermost first) or a root tracker (a `tracking()` block waiting for root
runs, see `_tracking`). Nested scopes each count every call once: a call is
claimed per scope by run id, whichever handler sees it first.

Code outside LangChain (the LiteLLM logger) adds its calls with
`record_external_call`, deduplicated by the provider's response id against the
calls seen through LangChain callbacks.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from typing import Any
from uuid import UUID

from ._event import Call
from ._recording import Recording
from ._tracker import Scope, Tracker, internal_failures
from ._usage import Usage

__all__ = [
    "ActiveScopes",
    "Invoke",
    "active_scopes",
    "open_scopes",
    "pop",
    "push",
    "record_external_call",
    "register_hook",
    "warn_untracked",
]

logger = logging.getLogger("agent_usage")


class _Frame(Recording):
    """The handler of the tracked invokes running in a context: model callbacks only."""

    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, scopes: tuple[Scope, ...], prev: object) -> None:
        super().__init__()
        self.scopes = scopes
        self.prev = prev  # the value of `_current` this frame replaced

    def _scopes_at_start(
        self, run_id: UUID, parent_run_id: UUID | None, metadata: Any, tags: Any
    ) -> Sequence[Scope]:
        if self.scopes[-1].closed:
            _warn_once(
                "a model call started after its tracked invoke ended (a task or thread that "
                "outlived the invoke); it is not counted in that invoke"
            )
        return self.scopes


_current: ContextVar[Recording | None] = ContextVar("agent_usage_scope", default=None)
_hook_lock = threading.Lock()
_hook_registered = False


def register_hook() -> None:
    """Register `_current` with LangChain's configure hook, once per process.

    From then on every callback manager configured while `_current` is set gets
    its handler (inheritable, so child runs keep it too). Called when the first
    tracker is built rather than at import: the hook's module imports langsmith,
    which `import agent_usage` (the report CLI) should not pay for.
    """
    global _hook_registered
    if _hook_registered:
        return
    with _hook_lock:
        if not _hook_registered:
            from langchain_core.tracers.context import register_configure_hook

            register_configure_hook(_current, inheritable=True)
            _hook_registered = True


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning("agent_usage: %s", message)


def warn_untracked(what: str) -> None:
    """Say loudly, once per cause, that a path is not tracked."""
    _warn_once(f"{what} is not tracked: no llm_usage event is written for it")


def open_scopes() -> tuple[Scope, ...]:
    """The live scopes in this context, outermost first, to which a new root belongs."""
    current = _current.get()
    if isinstance(current, _Frame):
        return tuple(s for s in current.scopes if not s.closed)
    outer = getattr(current, "outer", None)
    return outer if outer is not None else ()


def push(scopes: tuple[Scope, ...]) -> tuple[_Frame, Token[Recording | None]]:
    """Make `scopes` the active ones in this context."""
    frame = _Frame(scopes, _current.get())
    return frame, _current.set(frame)


class Invoke:
    """One call of a tracked runnable: its scope, entered around the work.

    ``with call:`` makes the invoke's scopes the active ones for the block (a
    stream enters once per chunk it computes); `end` writes the event. Inside a
    `tracking()` block this invoke is also one of the block's roots: the block
    gets a scope of its own for it, ended with it.
    """

    __slots__ = ("block_scope", "frame", "scope", "token")

    def __init__(self, tracker: Tracker, config: Mapping[str, Any]) -> None:
        current = _current.get()
        invoke_id = str(config["run_id"])
        self.block_scope: Scope | None = None
        if isinstance(current, _Frame):
            outer = tuple(s for s in current.scopes if not s.closed)
        elif current is not None:  # a tracking() block
            self.block_scope = current.open_root(  # type: ignore[attr-defined]
                invoke_id,
                config,
                current.outer,  # type: ignore[attr-defined]
            )
            outer = (*current.outer, self.block_scope)  # type: ignore[attr-defined]
        else:
            outer = ()
        self.scope = Scope(
            tracker,
            invoke_id,
            tracker.session_for(config),
            metadata=config.get("metadata") if tracker.guard is not None else None,
            outer=outer,
        )
        self.frame = _Frame((*outer, self.scope), current)

    def __enter__(self) -> None:
        """Make this invoke's scopes the active ones in the current context."""
        self.token: Token[Recording | None] = _current.set(self.frame)

    def __exit__(self, *exc_info: object) -> None:
        """Give the context back its scopes of before (an exception goes on)."""
        _current.reset(self.token)

    def end(self, exc: BaseException | None) -> None:
        """Write the event(s); a strict log's error is raised only when `exc` is None."""
        self.scope.closed = True
        if self.block_scope is None:
            self.scope.finish(exc)
            return
        self.block_scope.closed = True
        try:
            self.scope.finish(exc)
        finally:
            self.block_scope.finish(exc)


def pop(frame: _Frame, token: Token[Recording | None]) -> None:
    """Undo `push`, also when ends arrive out of order or from another context."""
    if _current.get() is not frame:
        return  # an inner frame is still on top; it unwinds this one when it pops
    try:
        _current.reset(token)
    except ValueError:  # the end arrived in another context than the start
        _current.set(frame.prev)  # type: ignore[arg-type]
    current = _current.get()
    while isinstance(current, _Frame) and current.scopes[-1].closed:
        current = current.prev  # type: ignore[assignment]
        _current.set(current)


class ActiveScopes:
    """The scopes active where `active_scopes()` was called, to record into later."""

    __slots__ = ("root_tracker", "scopes")

    def __init__(self, scopes: tuple[Scope, ...], root_tracker: Any) -> None:
        self.scopes = scopes
        self.root_tracker = root_tracker

    def __bool__(self) -> bool:
        return bool(self.scopes) or self.root_tracker is not None


def active_scopes() -> ActiveScopes:
    """Capture the tracked scopes active in the current context.

    For callers that learn a call's usage later on another thread or task (a
    LiteLLM success callback): capture before the call, pass to
    `record_external_call(..., within=...)` after.
    """
    current = _current.get()
    # Outside any tracked invoke: the tracking() block waiting for roots, if any.
    root_tracker = None if isinstance(current, _Frame) else current
    return ActiveScopes(open_scopes(), root_tracker)


def record_external_call(
    usage: Usage | None,
    *,
    model: str,
    provider: str | None = None,
    key: str | None = None,
    within: ActiveScopes | None = None,
) -> int:
    """Add one model call made outside LangChain to every tracked scope active here.

    Args:
        usage: the call's normalised usage (None: the call reported none).
        model: the model that answered.
        provider: the provider's name, for pricing (e.g. "openai").
        key: the provider's response id; a call already counted under the same
            id (through LangChain callbacks, e.g. ChatLiteLLM) is not counted again.
        within: scopes captured earlier by `active_scopes()`; default: this context's.

    Returns:
        How many scopes counted the call (0 outside any tracked scope). Inside a
        `tracking()` block but outside any root invoke, the call is its own
        invoke: one event is written for it at once.

    Never raises.
    """
    try:
        where = within if within is not None else active_scopes()
        scopes = list(where.scopes)
        single: Scope | None = None
        if where.root_tracker is not None:
            tracker: Tracker = where.root_tracker.tracker
            single = Scope(
                tracker, key or _random_id(), tracker.session_for({}), outer=where.scopes
            )
            scopes.append(single)
        call = Call(model, provider, usage) if usage is not None and usage.has_usage else None
        call_id = _random_id()  # one id in every scope: budgets count the call once
        counted = 0
        for scope in scopes:
            if scope.closed:
                continue
            if key is not None and (key in scope.langchain_keys or key in scope.external_keys):
                continue
            if call is None:
                scope.tally.without_usage.append(None)
            else:
                scope.add(call, (key,) if key else (), external=True, call_id=call_id)
            counted += 1
        if single is not None:
            single.finish(None)
        return counted
    except Exception as exc:
        internal_failures.failed("recording an external call", exc)
        return 0


def _random_id() -> str:
    return str(uuid.uuid4())
