"""The callback handler core: each chat-model call, recorded into the scopes it belongs to.

`Recording` turns LangChain's model callbacks into counted calls: on start it
asks the budget and claims the call in each scope (once per scope, by run id,
whichever handler sees it first); on end it reads the usage from the response
(or, for a stream that failed, from the chunks it saw) and adds the call.
Subclasses say which scopes a call belongs to: `_scope._Frame` (the context's
tracked invokes) and `_tracking.RootTracker` (roots found through callbacks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from ._budget import BudgetExceeded
from ._event import Call
from ._tracker import Scope, internal_failures
from ._usage import normalize_usage

if TYPE_CHECKING:  # langchain_core.outputs pulls in langsmith: not at import time
    from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

__all__ = ["Recording"]


class _Pending:
    """A model call in flight: the scopes that claimed it and what its stream reported."""

    __slots__ = ("provider", "requested", "scopes", "streamed", "streamed_meta")

    def __init__(self, scopes: list[Scope], provider: str | None, requested: str | None) -> None:
        self.scopes = scopes
        self.provider = provider
        self.requested = requested
        self.streamed: Any = None  # usage_metadata summed over streamed chunks
        self.streamed_meta: Mapping[str, Any] | None = None


_CACHE_HIT = "cache_hit"


def _parse(
    response: LLMResult | None, pending: _Pending
) -> tuple[Call | str | None, tuple[str, ...]]:
    """(the Call, or _CACHE_HIT, or None when no usage) and the response ids of one call."""
    usage = message = llm_output = None
    if response is not None:
        llm_output = response.llm_output
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                um = getattr(message, "usage_metadata", None)
                # langchain-core marks an LLM-cache hit by zeroing "total_cost" in
                # the replayed message's usage_metadata: no request was sent.
                if um is not None and um.get("total_cost") == 0:
                    return _CACHE_HIT, ()
                # n>1 choices repeat the request's usage on every message: take one.
                usage = normalize_usage(message)
                if usage is not None:
                    break
            if usage is not None:
                break
        if usage is None and llm_output:
            usage = normalize_usage(None, raw=llm_output)
    meta: Mapping[str, Any] = getattr(message, "response_metadata", None) or {}
    if usage is None and pending.streamed is not None:
        # A stream that failed after its usage arrived: langchain-core passes no
        # chunks to on_llm_error on that path, so use what on_llm_new_token saw.
        usage = normalize_usage(pending.streamed)
        meta = pending.streamed_meta or meta
    if usage is None:
        return None, ()
    out = llm_output or {}
    model = (
        meta.get("model_name")
        or meta.get("model")
        or meta.get("model_id")
        or out.get("model_name")
        or pending.requested
        or "unknown"
    )
    provider = meta.get("model_provider") or out.get("model_provider") or pending.provider
    keys = tuple(
        k
        for k in (meta.get("id"), out.get("id"), getattr(message, "id", None))
        if isinstance(k, str) and k
    )
    return Call(str(model), provider, usage), keys


class Recording(BaseCallbackHandler):
    """Records each chat-model call into the scopes it belongs to.

    Subclasses say which scopes a call belongs to. Inline, so no thread hop per
    callback under asyncio. `raise_error` is on so that a budget's BudgetExceeded
    raised before a call really stops it (LangChain swallows handler errors
    otherwise); every other error is caught here, logged once and counted.
    """

    run_inline = True
    raise_error = True

    def __init__(self) -> None:
        self._pending: dict[UUID, _Pending] = {}

    def _scopes_at_start(
        self, run_id: UUID, parent_run_id: UUID | None, metadata: Any, tags: Any
    ) -> Sequence[Scope]:
        raise NotImplementedError

    def _run_ended(self, run_id: UUID, error: BaseException | None) -> None:
        """Hook for subclasses that follow runs: called after a model run's end."""

    def _model_started(
        self,
        *_payload: Any,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **_kwargs: Any,
    ) -> None:
        """A chat model's or a text LLM's start: the same keywords, the prompt not read."""
        try:
            scopes = self._scopes_at_start(run_id, parent_run_id, metadata, tags)
            claimed = [s for s in scopes if not s.closed and run_id not in s.claimed]
            if not claimed:
                return
            if metadata:
                provider, requested = metadata.get("ls_provider"), metadata.get("ls_model_name")
            else:
                provider = requested = None
            call_id = str(run_id)
            for scope in claimed:
                scope.before_call(requested, call_id)
            for scope in claimed:
                scope.claimed.add(run_id)
            self._pending[run_id] = _Pending(claimed, provider, requested)
        except BudgetExceeded:
            raise
        except Exception as exc:
            internal_failures.failed("recording a model call's start", exc)

    on_chat_model_start = on_llm_start = _model_started

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        try:
            message = getattr(chunk, "message", None)
            um = getattr(message, "usage_metadata", None)
            if um is None:
                return
            pending = self._pending.get(run_id)
            if pending is not None:
                from langchain_core.messages.ai import add_usage  # imports langsmith: not at import

                pending.streamed = (
                    um if pending.streamed is None else add_usage(pending.streamed, um)
                )
                if pending.streamed_meta is None:
                    pending.streamed_meta = getattr(message, "response_metadata", None) or None
        except Exception as exc:
            internal_failures.failed("reading a streamed chunk's usage", exc)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._model_end(run_id, response, None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # langchain-core passes the chunks streamed before the failure as `response`.
        self._model_end(run_id, kwargs.get("response"), error)

    def _model_end(
        self, run_id: UUID, response: LLMResult | None, error: BaseException | None
    ) -> None:
        try:
            pending = self._pending.pop(run_id, None)
            if pending is not None:
                found, keys = _parse(response, pending)
                for scope in pending.scopes:
                    if found is None:
                        if error is None:
                            scope.tally.without_usage.append(None)
                    elif found is _CACHE_HIT:
                        scope.tally.cache_hits.append(None)
                    else:
                        scope.add(found, keys, call_id=str(run_id))  # type: ignore[arg-type]
        except Exception as exc:
            internal_failures.failed("recording a model call's usage", exc)
        self._run_ended(run_id, error)
