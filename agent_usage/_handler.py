"""The callback handler: sees every chat-model call and writes one event per root run.

Two handlers share one recorder:

- `UsageCallbackHandler` (public) is added to a config's callbacks by the user. It
  follows runs from their root, so one instance serves many concurrent invokes,
  and writes one event when each root run ends or fails.
- `InvokeHandler` (private) is what `track_usage` adds for a single invoke. The
  wrapper knows when the invoke starts and ends, so this one listens to model
  calls only (chain/tool/retriever callbacks are ignored: less work per step).

Both are `run_inline`: a sync handler that is not inline costs a thread hop per
callback under asyncio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from ._event import Call, LlmUsageEvent, Status, Tally, build_event
from ._pricing import Pricer, PricesArg, default_pricer
from ._usage import normalize_usage

__all__ = [
    "EventSink",
    "Exporter",
    "InvokeHandler",
    "Recorder",
    "SessionArg",
    "UsageCallbackHandler",
]

logger = logging.getLogger(__name__)

SessionArg = str | Callable[[Mapping[str, Any]], "str | None"] | None


@runtime_checkable
class EventSink(Protocol):
    """Where events are written: an `EventLog`, or anything with `append`."""

    def append(self, event: Mapping[str, Any]) -> None: ...


@runtime_checkable
class Exporter(Protocol):
    """A non-blocking destination for events beyond the local log."""

    def export(self, event: Mapping[str, Any]) -> None: ...


class _Once:
    """Logs each failure cause once and counts every occurrence."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def failed(self, cause: str, exc: BaseException) -> None:
        n = self.counts.get(cause, 0)
        self.counts[cause] = n + 1
        if n == 0:
            logger.warning("agent_usage: %s failed (%r); counting further failures", cause, exc)


def status_of(exc: BaseException | None) -> Status:
    """The event status for how an invoke ended."""
    if exc is None:
        return "ok"
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit, KeyboardInterrupt)):
        return "cancelled"
    return "error"


class Recorder:
    """Builds events from tallies and writes them; never raises into the agent."""

    def __init__(
        self,
        sink: EventSink | None,
        *,
        model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prices: PricesArg | Pricer = None,
        exporters: Sequence[Exporter] = (),
    ) -> None:
        if sink is not None and not callable(getattr(sink, "append", None)):
            raise TypeError(f"log must be an EventLog or have append(event); got {sink!r}")
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a str label or None; got {model!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping or None; got {metadata!r}")
        for exporter in exporters:
            if not callable(getattr(exporter, "export", None)):
                raise TypeError(f"exporters must have export(event); got {exporter!r}")
        self.sink = sink
        self.model = model
        self.metadata = dict(metadata) if metadata else None
        if isinstance(prices, Pricer):
            self.pricer = prices
        elif prices is None:
            self.pricer = default_pricer()
        else:
            self.pricer = Pricer(prices)
        self.exporters = tuple(exporters)
        self.failures = _Once()

    def emit(
        self,
        tally: Tally,
        *,
        invoke_id: str,
        session_id: str | None,
        status: Status,
        strict: bool = True,
    ) -> LlmUsageEvent | None:
        """Write the event for a finished invoke (nothing when it used no tokens).

        A write failure is counted and logged once; it is raised only when the log
        is strict and `strict` is true (False when the invoke itself raised).
        """
        try:
            event = build_event(
                tally,
                invoke_id=invoke_id,
                session_id=session_id,
                status=status,
                pricer=self.pricer,
                model_label=self.model,
                metadata=self.metadata,
            )
        except Exception as exc:
            self.failures.failed("building the llm_usage event", exc)
            return None
        if event is None:
            return None
        if self.sink is not None:
            try:
                self.sink.append(event)
            except Exception as exc:
                if strict and getattr(self.sink, "strict", False):
                    raise
                self.failures.failed("writing the llm_usage event", exc)
        for exporter in self.exporters:
            try:
                exporter.export(event)
            except Exception as exc:
                self.failures.failed(f"exporting to {type(exporter).__name__}", exc)
        return event


def _model_info(metadata: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if not metadata:
        return None, None
    return metadata.get("ls_provider"), metadata.get("ls_model_name")


class _CallRecorder(BaseCallbackHandler):
    """Records each model call's usage into the tally of the invoke it belongs to."""

    run_inline = True
    raise_error = False

    def __init__(self) -> None:
        # run_id -> (provider, requested model) from the call's start metadata
        self._starts: dict[UUID, tuple[str | None, str | None]] = {}

    def _tally_for(self, run_id: UUID) -> Tally | None:
        raise NotImplementedError

    def _on_model_start(self, run_id: UUID, parent_run_id: UUID | None, metadata: Any) -> None:
        self._starts[run_id] = _model_info(metadata)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._on_model_start(run_id, parent_run_id, metadata)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._on_model_start(run_id, parent_run_id, metadata)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._record(response, run_id, failed=False)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # langchain-core passes the chunks streamed before the failure as `response`.
        self._record(kwargs.get("response"), run_id, failed=True)

    def _record(self, response: LLMResult | None, run_id: UUID, *, failed: bool) -> None:
        provider, requested = self._starts.pop(run_id, (None, None))
        tally = self._tally_for(run_id)
        if tally is None:
            return
        usage = None
        message = None
        llm_output = None
        if response is not None:
            llm_output = response.llm_output
            for generations in response.generations:
                for generation in generations:
                    message = getattr(generation, "message", None)
                    # n>1 choices repeat the request's usage on every message: take one.
                    usage = normalize_usage(message)
                    if usage is not None:
                        break
                if usage is not None:
                    break
            if usage is None and llm_output:
                usage = normalize_usage(None, raw=llm_output)
        if usage is None:
            if not failed:
                tally.without_usage.append(None)
            return
        meta = getattr(message, "response_metadata", None) or {}
        out = llm_output or {}
        model = (
            meta.get("model_name")
            or meta.get("model")
            or meta.get("model_id")
            or out.get("model_name")
            or requested
            or "unknown"
        )
        provider = meta.get("model_provider") or out.get("model_provider") or provider
        tally.calls.append(Call(str(model), provider, usage))


class InvokeHandler(_CallRecorder):
    """The handler `track_usage` adds to one invoke: model callbacks only."""

    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self) -> None:
        super().__init__()
        self.tally = Tally()

    def _tally_for(self, run_id: UUID) -> Tally | None:
        return self.tally


class _Root:
    __slots__ = ("session_id", "tally")

    def __init__(self, session_id: str | None) -> None:
        self.tally = Tally()
        self.session_id = session_id


class UsageCallbackHandler(_CallRecorder):
    """Writes one `llm_usage` event per root run it sees, with the wrapper's accounting.

    Pass it in a config's callbacks: ``graph.ainvoke(x, {"callbacks": [handler]})``.
    One instance may serve many concurrent invokes; their calls never mix.

    Args:
        log: an `EventLog` (or anything with `append(event)`).
        session_id: a fixed id, or a callable given ``{"metadata": ..., "tags": ...}``
            of the root run; ``metadata["session_id"]`` of the run wins, and
            ``metadata["thread_id"]`` is the fallback.
        model: a label written as the event's `model`.
        metadata: copied into every event.
        prices: price overrides (a mapping or a TOML/JSON file path).
        exporters: non-blocking exporters each event is also sent to.
    """

    def __init__(
        self,
        log: EventSink | None,
        *,
        session_id: SessionArg = None,
        model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prices: PricesArg = None,
        exporters: Sequence[Exporter] = (),
    ) -> None:
        super().__init__()
        if session_id is not None and not (isinstance(session_id, str) or callable(session_id)):
            raise TypeError(f"session_id must be a str, a callable or None; got {session_id!r}")
        self.recorder = Recorder(
            log, model=model, metadata=metadata, prices=prices, exporters=exporters
        )
        self._session_id = session_id
        self._roots: dict[UUID, _Root] = {}
        self._root_of: dict[UUID, UUID] = {}

    @property
    def failures(self) -> dict[str, int]:
        """How many times each telemetry step failed (logged once per cause)."""
        return self.recorder.failures.counts

    def _tally_for(self, run_id: UUID) -> Tally | None:
        root = self._root_of.get(run_id)
        found = self._roots.get(root) if root is not None else None
        return found.tally if found is not None else None

    def _session(self, metadata: Mapping[str, Any] | None, tags: Any) -> str | None:
        md = metadata or {}
        sid = md.get("session_id")
        if sid is None and self._session_id is not None:
            if isinstance(self._session_id, str):
                sid = self._session_id
            else:
                try:
                    sid = self._session_id({"metadata": dict(md), "tags": list(tags or [])})
                except Exception as exc:
                    self.recorder.failures.failed("the session_id callable", exc)
        if sid is None:
            sid = md.get("thread_id")
        return None if sid is None else str(sid)

    def _start(
        self, run_id: UUID, parent_run_id: UUID | None, metadata: Any = None, tags: Any = None
    ) -> None:
        root = self._root_of.get(parent_run_id) if parent_run_id is not None else None
        if root is None:
            # No parent we know of: this run is a root (possibly nested in runs
            # this handler was not attached to).
            self._roots[run_id] = _Root(self._session(metadata, tags))
            root = run_id
        self._root_of[run_id] = root

    def _end(self, run_id: UUID, error: BaseException | None) -> None:
        self._root_of.pop(run_id, None)
        found = self._roots.pop(run_id, None)
        if found is not None:
            self.recorder.emit(
                found.tally,
                invoke_id=str(run_id),
                session_id=found.session_id,
                status=status_of(error),
                strict=error is None,
            )

    def _on_model_start(self, run_id: UUID, parent_run_id: UUID | None, metadata: Any) -> None:
        super()._on_model_start(run_id, parent_run_id, metadata)
        self._start(run_id, parent_run_id, metadata)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        super().on_llm_end(response, run_id=run_id, **kwargs)
        self._end(run_id, None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        super().on_llm_error(error, run_id=run_id, **kwargs)
        self._end(run_id, error)

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, metadata, tags)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, metadata, tags)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, metadata, tags)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)
