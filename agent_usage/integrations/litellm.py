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
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from .._event import Call, Status, Tally
from .._handler import EventSink, Exporter, Recorder
from .._pricing import PricesArg
from .._usage import Usage, normalize_usage

try:
    from litellm.integrations.custom_logger import CustomLogger
except ImportError as exc:
    raise ImportError(
        "agent_usage.integrations.litellm needs the 'litellm' extra: "
        f"pip install 'langchain-agent-usage[litellm]' (missing module: {exc.name or exc})"
    ) from None

__all__ = ["UsageLogger"]

logger = logging.getLogger(__name__)

# LiteLLM call types whose response carries a chat/text completion usage. Embeddings,
# images, the Responses API and the rest report other shapes or are not model calls.
_COMPLETION_CALLS = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
# How many call ids to remember, so a call LiteLLM reports twice is logged once.
_SEEN_MAX = 4096


class UsageLogger(CustomLogger):
    """A LiteLLM callback that writes one `llm_usage` event per LiteLLM call.

    Register it with ``litellm.callbacks = [UsageLogger(log)]`` (or pass it in a
    call's ``callbacks``). One instance serves any number of concurrent calls.

    Args:
        log: an `EventLog` (or anything with `append(event)`); None to export only.
        session_id: the session of calls whose ``metadata["session_id"]`` is unset.
        metadata: copied into every event.
        prices: price overrides (a mapping or a TOML/JSON file path), as for `track_usage`.
        exporters: non-blocking exporters each event is also sent to.

    Raises:
        TypeError: when an argument has the wrong type.
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
        self._recorder = Recorder(log, metadata=metadata, prices=prices, exporters=exporters)
        self._session_id = session_id
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def failures(self) -> dict[str, int]:
        """How many times each telemetry step failed (each cause is logged once)."""
        return self._recorder.failures.counts

    def __repr__(self) -> str:
        return f"UsageLogger(session_id={self._session_id!r})"

    # LiteLLM's hooks: thin shells around `_record`, which never raises.

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
            if not self._first_report(call_id):
                return
            usage = _usage_of(kwargs, response_obj, failed=failed)
            if usage is None:
                return
            model = getattr(response_obj, "model", None) or kwargs.get("model") or "unknown"
            provider = kwargs.get("custom_llm_provider")
            self._emit(
                Call(str(model), provider if isinstance(provider, str) else None, usage),
                call_id=call_id,
                session_id=self._session_of(kwargs),
                status="error" if failed else "ok",
                seconds=_seconds(start_time, end_time),
            )
        except Exception as exc:
            self._recorder.failures.failed("recording a LiteLLM call", exc)

    def _first_report(self, call_id: str) -> bool:
        """True the first time a call id is seen (LiteLLM may report a call on two paths)."""
        with self._lock:
            if call_id in self._seen:
                return False
            self._seen[call_id] = None
            if len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
            return True

    def _session_of(self, kwargs: Mapping[str, Any]) -> str | None:
        params = kwargs.get("litellm_params")
        metadata = params.get("metadata") if isinstance(params, Mapping) else None
        sid = metadata.get("session_id") if isinstance(metadata, Mapping) else None
        return self._session_id if sid is None else str(sid)

    def _emit(
        self,
        call: Call,
        *,
        call_id: str,
        session_id: str | None,
        status: Status,
        seconds: float,
    ) -> None:
        # The event's duration_ms is measured from the tally's start: the call's own.
        tally = Tally(started=time.perf_counter() - seconds)
        tally.calls.append(call)
        self._recorder.emit(
            tally, invoke_id=call_id, session_id=session_id, status=status, strict=False
        )


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
