"""LiteLLM: the same `llm_usage` events for calls made through LiteLLM.

Install with ``pip install 'langchain-agent-usage[litellm]'`` and register the
logger with LiteLLM::

    import litellm
    from agent_usage import EventLog
    from agent_usage.integrations.litellm import UsageLogger

    litellm.callbacks = [UsageLogger(EventLog("events.jsonl"), session_id="s1")]
    litellm.completion(model="anthropic/claude-sonnet-4-5", messages=[...],
                       metadata={"session_id": "user-42"})   # this call's session

Every `completion` / `acompletion` (streaming or not) that reports usage writes
one event, built by the same event builder, normaliser and pricer as the
LangChain integration: LiteLLM reports usage in OpenAI's shape for every
provider (`prompt_tokens` already includes Anthropic's cache reads and writes;
`prompt_tokens_details.cached_tokens`, `cache_creation_input_tokens`, the 5m/1h
split under `prompt_tokens_details.cache_creation_token_details`,
`completion_tokens_details.reasoning_tokens`), and that shape is one row of the
normaliser's table. `invoke_id` is LiteLLM's `litellm_call_id`.

When LiteLLM calls back (litellm 1.110, read from its source and tested): never
before the call has returned. Sync calls end on LiteLLM's logging thread pool
(a stream that fails, on a new thread); `acompletion` calls end in a task of
LiteLLM's logging worker on the caller's event loop. The hooks therefore never
delay a call; on the loop they cost a normalisation and one append. They never
raise into LiteLLM: failures are logged once per cause and counted in `failures`.

Failed calls: LiteLLM hands its failure hook what an interrupted stream had
already consumed (the provider's report where it sent one, e.g. Anthropic's
input side in `message_start`; LiteLLM's own count of the delivered text where
it did not); that is logged with status "error". A failure with no usage (an
HTTP error) writes nothing.

Network: importing litellm fetches its model price map over the network unless
``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set. These events are priced from
agent_usage's own offline prices, so setting it loses nothing here.
"""

from __future__ import annotations

import datetime
import logging
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import CodeType, FrameType
from typing import Any

from .._event import Call, Tally
from .._extras import missing_extra
from .._pricing import PricesArg
from .._scope import ActiveScopes, active_scopes, record_external_call
from .._tracker import EventSink, Exporter, Scope, Tracker
from .._usage import Usage, normalize_usage

try:
    from litellm.integrations.custom_logger import CustomLogger
except ImportError as exc:
    raise missing_extra("agent_usage.integrations.litellm", "litellm", exc) from None

__all__ = ["UsageLogger"]

logger = logging.getLogger(__name__)

# LiteLLM call types whose response carries a chat/text completion usage. Embeddings,
# images, the Responses API and the rest report other shapes or are not model calls.
_COMPLETION_CALLS = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
# How many call ids to remember (reported-once check, routes of calls in flight). A
# call LiteLLM never reports back (it drops callbacks under load) is forgotten FIFO.
_REMEMBER = 4096
# A call made by a LangChain chat model (ChatLiteLLM) inside a tracked scope: the
# scope counts it through LangChain's callbacks, so the logger leaves it alone.
_VIA_LANGCHAIN = "langchain"
# How far up the caller's stack to look for a LangChain chat model (found at ~15).
_MAX_DEPTH = 200


class UsageLogger(CustomLogger):
    """A LiteLLM callback that writes one `llm_usage` event per LiteLLM call.

    Register it with ``litellm.callbacks = [UsageLogger(log)]`` (or pass it in a
    call's ``callbacks``). One instance serves any number of concurrent calls.

    Inside a tracked invoke (`track_usage`, `tracking()`, `UsageCallbackHandler`),
    a call is counted in that invoke's event instead of getting its own, so each
    token is logged once: a call made directly (e.g. from a tool) is added to
    the invoke, and a call made by a LangChain chat model (`ChatLiteLLM`) is
    already counted through LangChain's callbacks. LiteLLM reports a call only
    after it returned: one reported after its invoke ended (a runnable that
    returns right after the call) gets its own event, with a warning, once.

    Args:
        log: an `EventLog` (or anything with `append(event)`); None to export only.
        session_id: the session of calls whose ``metadata["session_id"]`` is unset.
        metadata: copied into every event.
        prices: price overrides (a mapping or a TOML/JSON file path), as for `track_usage`.
        exporters: non-blocking exporters each event is also sent to.

    Raises:
        TypeError: when an argument has the wrong type.
        ValueError: when `prices` is malformed.
    """

    def __init__(
        self,
        log: EventSink | None,
        *,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prices: PricesArg = None,
        exporters: Sequence[Exporter] = (),
    ) -> None:
        super().__init__()
        if session_id is not None and not isinstance(session_id, str):
            raise TypeError(f"session_id must be a str or None; got {session_id!r}")
        self._tracker = Tracker(
            log, session_id=session_id, metadata=metadata, prices=prices, exporters=exporters
        )
        self._session_id = session_id
        self._reported: OrderedDict[str, None] = OrderedDict()
        # litellm_call_id -> where a call made inside tracked scopes is counted.
        self._routes: OrderedDict[str, ActiveScopes | str] = OrderedDict()
        self._lock = threading.Lock()
        self._warned_late = False

    @property
    def failures(self) -> dict[str, int]:
        """How many times each telemetry step failed (each cause is logged once)."""
        return self._tracker.failures.counts

    def __repr__(self) -> str:
        return f"UsageLogger(session_id={self._session_id!r})"

    # LiteLLM's hooks: thin shells that never raise.

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """LiteLLM hook, in the caller's context before the request: note its tracked scopes.

        The success and failure hooks run later, elsewhere (a thread pool, a bare
        thread, a task), where the caller's tracked scopes may not be visible.
        """
        try:
            call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, Mapping) else None
            if not call_id:
                return
            scopes = active_scopes()
            if not scopes:
                return
            route = _VIA_LANGCHAIN if _inside_langchain_model() else scopes
            with self._lock:
                self._routes.setdefault(str(call_id), route)
                if len(self._routes) > _REMEMBER:
                    self._routes.popitem(last=False)
        except Exception as exc:
            self._tracker.failures.failed("noting a LiteLLM call's tracked scopes", exc)

    def log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """LiteLLM hook: a sync call (or stream) finished."""
        self._record(kwargs, response_obj, start_time, end_time, failed=False)

    def log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """LiteLLM hook: a sync call (or stream) failed."""
        self._record(kwargs, response_obj, start_time, end_time, failed=True)

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """LiteLLM hook: an async call (or stream) finished."""
        self._record(kwargs, response_obj, start_time, end_time, failed=False)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """LiteLLM hook: an async call (or stream) failed."""
        self._record(kwargs, response_obj, start_time, end_time, failed=True)

    def _record(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any, *, failed: bool
    ) -> None:
        try:
            if not isinstance(kwargs, Mapping):
                return
            if kwargs.get("call_type") not in _COMPLETION_CALLS:
                return
            call_id = str(kwargs.get("litellm_call_id") or uuid.uuid4())
            first, route = self._first_report(call_id)
            if not first or route == _VIA_LANGCHAIN:
                return
            usage = _usage_of(kwargs, response_obj, failed=failed)
            if usage is None:
                # A refused call spent nothing; the LangChain path does not count those either.
                return
            model = str(getattr(response_obj, "model", None) or kwargs.get("model") or "unknown")
            provider = kwargs.get("custom_llm_provider")
            provider = provider if isinstance(provider, str) else None
            if isinstance(route, ActiveScopes):
                counted = record_external_call(
                    usage, model=model, provider=provider, key=call_id, within=route
                )
                if counted:
                    return
                # Every invoke it ran in had ended before LiteLLM reported it (its hooks
                # run after the call returns): its own event, rather than lost.
                self._late_once()
            self._emit(Call(model, provider, usage), call_id, kwargs, start_time, end_time, failed)
        except Exception as exc:
            self._tracker.failures.failed("recording a LiteLLM call", exc)

    def _late_once(self) -> None:
        if not self._warned_late:
            self._warned_late = True
            logger.warning(
                "agent_usage: a LiteLLM call was reported after the tracked invoke it ran in "
                "had ended; it is logged as its own llm_usage event"
            )

    def _first_report(self, call_id: str) -> tuple[bool, ActiveScopes | str | None]:
        """(whether this is the call's first report, where it is counted).

        LiteLLM may report one call on two paths; only the first one counts.
        """
        with self._lock:
            if call_id in self._reported:
                return False, None
            self._reported[call_id] = None
            if len(self._reported) > _REMEMBER:
                self._reported.popitem(last=False)
            return True, self._routes.pop(call_id, None)

    def _emit(
        self,
        call: Call,
        call_id: str,
        kwargs: Mapping[str, Any],
        start_time: Any,
        end_time: Any,
        failed: bool,
    ) -> None:
        """Write the call's own event (a call outside any tracked scope)."""
        scope = Scope(self._tracker, call_id, self._session_of(kwargs))
        # duration_ms is measured from the tally's start: make it the call's own.
        scope.tally = Tally(started=time.perf_counter() - _seconds(start_time, end_time))
        scope.add(call)
        error = kwargs.get("exception")
        if failed and not isinstance(error, BaseException):
            error = RuntimeError("the LiteLLM call failed")
        # Not strict: an exception raised here would only reach LiteLLM's own logging.
        try:
            scope.finish(error if failed else None)
        except Exception as exc:
            self._tracker.failures.failed("writing the llm_usage event", exc)

    def _session_of(self, kwargs: Mapping[str, Any]) -> str | None:
        params = kwargs.get("litellm_params")
        metadata = params.get("metadata") if isinstance(params, Mapping) else None
        sid = metadata.get("session_id") if isinstance(metadata, Mapping) else None
        return self._session_id if sid is None else str(sid)


def _usage_of(kwargs: Mapping[str, Any], response_obj: Any, *, failed: bool) -> Usage | None:
    """The call's usage, normalised by the shared table (LiteLLM's `Usage` is one row)."""
    if failed:
        # What an interrupted stream had consumed, stashed by LiteLLM for its failure log.
        raw = kwargs.get("combined_usage_object")
    elif isinstance(response_obj, Mapping):
        raw = response_obj.get("usage")
    else:
        raw = getattr(response_obj, "usage", None)
    if raw is None:
        return None
    return normalize_usage(None, raw={"usage": raw})


def _seconds(start: Any, end: Any) -> float:
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        return max(0.0, (end - start).total_seconds())
    return 0.0


_model_codes: frozenset[CodeType] | None = None


def _langchain_model_codes() -> frozenset[CodeType]:
    """The code of langchain-core's methods that run a chat model's `_generate`/`_stream`."""
    global _model_codes
    if _model_codes is None:
        from langchain_core.language_models.chat_models import BaseChatModel

        names = ("_generate_with_cache", "_agenerate_with_cache", "stream", "astream")
        codes = (getattr(getattr(BaseChatModel, name, None), "__code__", None) for name in names)
        _model_codes = frozenset(c for c in codes if isinstance(c, CodeType))
    return _model_codes


def _inside_langchain_model() -> bool:
    """Whether the caller is a LangChain chat model's generate or stream (ChatLiteLLM).

    ChatLiteLLM's messages carry no provider response id that a tracked scope
    could deduplicate on, so the call is recognised where it starts: LiteLLM's
    pre-call hook runs inside the chat model's own frames (also for async calls,
    which LiteLLM awaits in the same coroutine chain).
    """
    codes = _langchain_model_codes()
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return False
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False
