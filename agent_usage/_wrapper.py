"""`track_usage`: a transparent wrapper that logs one `llm_usage` event per invoke.

Each call gets its own `InvokeHandler` in its config's callbacks, so concurrent
invokes never share a tally; the wrapper itself knows when the invoke starts and
how it ends (ok, error, cancelled, stream abandoned). The sync and async entry
points are thin shells around `_Invocation`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackManager

from ._handler import EventSink, Exporter, InvokeHandler, Recorder, SessionArg, status_of
from ._pricing import PricesArg

__all__ = ["TrackedAgent", "track_usage"]


class _Invocation:
    """One tracked call: the config to pass down, and the event once it ends."""

    __slots__ = ("config", "handler", "invoke_id", "session_id", "tracker")

    def __init__(self, tracker: TrackedAgent, config: Mapping[str, Any] | None) -> None:
        self.tracker = tracker
        self.handler = handler = InvokeHandler()
        cfg: dict[str, Any] = dict(config) if config else {}
        run_id = cfg.get("run_id")
        if run_id is None:
            run_id = cfg["run_id"] = uuid.uuid4()
        self.invoke_id = str(run_id)
        callbacks = cfg.get("callbacks")
        if callbacks is None:
            cfg["callbacks"] = [handler]
        elif isinstance(callbacks, BaseCallbackManager):
            manager = callbacks.copy()
            manager.add_handler(handler, inherit=True)
            cfg["callbacks"] = manager
        else:
            cfg["callbacks"] = [*callbacks, handler]
        self.config = cfg
        self.session_id = tracker._session_for(cfg)

    def end(self, exc: BaseException | None) -> None:
        # A strict log may raise from here, but never in place of the agent's own
        # exception: that one reaches the caller unchanged.
        self.tracker._recorder.emit(
            self.handler.tally,
            invoke_id=self.invoke_id,
            session_id=self.session_id,
            status=status_of(exc),
            strict=exc is None,
        )


class TrackedAgent:
    """The agent returned by `track_usage`: same calls, same results, plus an event per call.

    `invoke`, `ainvoke`, `stream`, `astream`, `batch` and `abatch` are tracked; any
    other attribute is the wrapped agent's.
    """

    def __init__(
        self,
        agent: Any,
        log: EventSink | None,
        *,
        session_id: SessionArg = None,
        model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prices: PricesArg = None,
        exporters: Sequence[Exporter] = (),
    ) -> None:
        if not (
            callable(getattr(agent, "invoke", None)) or callable(getattr(agent, "ainvoke", None))
        ):
            raise TypeError(f"track_usage needs a Runnable or compiled graph; got {agent!r}")
        if session_id is not None and not (isinstance(session_id, str) or callable(session_id)):
            raise TypeError(f"session_id must be a str, a callable or None; got {session_id!r}")
        self._agent = agent
        self._session_id = session_id
        self._recorder = Recorder(
            log, model=model, metadata=metadata, prices=prices, exporters=exporters
        )

    @property
    def wrapped(self) -> Any:
        """The agent being tracked."""
        return self._agent

    @property
    def failures(self) -> dict[str, int]:
        """How many times each telemetry step failed (each cause is logged once)."""
        return self._recorder.failures.counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._agent, name)

    def __repr__(self) -> str:
        return f"track_usage({self._agent!r})"

    def _session_for(self, config: Mapping[str, Any]) -> str | None:
        metadata = config.get("metadata") or {}
        sid = metadata.get("session_id")
        if sid is None and self._session_id is not None:
            if isinstance(self._session_id, str):
                sid = self._session_id
            else:
                try:
                    sid = self._session_id(config)
                except Exception as exc:
                    self._recorder.failures.failed("the session_id callable", exc)
        if sid is None:
            sid = (config.get("configurable") or {}).get("thread_id")
        return None if sid is None else str(sid)

    def invoke(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run the agent's `invoke` and log its usage."""
        call = _Invocation(self, config)
        try:
            result = self._agent.invoke(input, call.config, **kwargs)
        except BaseException as exc:
            call.end(exc)
            raise
        call.end(None)
        return result

    async def ainvoke(
        self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """Run the agent's `ainvoke` and log its usage."""
        call = _Invocation(self, config)
        try:
            result = await self._agent.ainvoke(input, call.config, **kwargs)
        except BaseException as exc:
            call.end(exc)
            raise
        call.end(None)
        return result

    def stream(
        self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Generator[Any, None, None]:
        """Yield the agent's `stream` chunks unchanged; log usage when the stream ends."""
        return self._tracked_stream(self._agent.stream, input, config, kwargs)

    def astream(
        self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        """Yield the agent's `astream` chunks unchanged; log usage when the stream ends."""
        return self._tracked_astream(self._agent.astream, input, config, kwargs)

    def astream_events(
        self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        """Yield the agent's `astream_events` unchanged; log usage when the stream ends."""
        return self._tracked_astream(self._agent.astream_events, input, config, kwargs)

    def _tracked_stream(
        self, method: Any, input: Any, config: Mapping[str, Any] | None, kwargs: Any
    ) -> Generator[Any, None, None]:
        call = _Invocation(self, config)
        inner = method(input, call.config, **kwargs)
        failure: BaseException | None = GeneratorExit()  # closed before the end: cancelled
        try:
            yield from inner
            failure = None
        except BaseException as exc:
            failure = exc
            raise
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            call.end(failure)

    async def _tracked_astream(
        self, method: Any, input: Any, config: Mapping[str, Any] | None, kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        call = _Invocation(self, config)
        inner = method(input, call.config, **kwargs)
        failure: BaseException | None = GeneratorExit()  # closed before the end: cancelled
        try:
            async for chunk in inner:
                yield chunk
            failure = None
        except BaseException as exc:
            failure = exc
            raise
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()
            call.end(failure)

    def batch(
        self,
        inputs: Sequence[Any],
        config: Any = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """`invoke` each input in a thread pool (one event each), as `Runnable.batch` does.

        Honours the config's `max_concurrency`; with `return_exceptions`, a failed
        input's exception takes its place in the result list.
        """
        from langchain_core.runnables.config import get_config_list, get_executor_for_config

        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))

        def one(x: Any, c: Any) -> Any:
            try:
                return self.invoke(x, c, **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        if len(inputs) == 1:
            return [one(inputs[0], configs[0])]
        with get_executor_for_config(configs[0]) as executor:
            return list(executor.map(one, inputs, configs))

    async def abatch(
        self,
        inputs: Sequence[Any],
        config: Any = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """`ainvoke` the inputs concurrently (one event each), as `Runnable.abatch` does.

        Honours the config's `max_concurrency`; with `return_exceptions`, a failed
        input's exception takes its place in the result list.
        """
        from langchain_core.runnables.config import get_config_list
        from langchain_core.runnables.utils import gather_with_concurrency

        if not inputs:
            return []
        configs = get_config_list(config, len(inputs))

        async def one(x: Any, c: Any) -> Any:
            try:
                return await self.ainvoke(x, c, **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        limit = configs[0].get("max_concurrency")
        return list(await gather_with_concurrency(limit, *map(one, inputs, configs)))


def track_usage(
    agent: Any,
    log: EventSink | None,
    *,
    session_id: SessionArg = None,
    model: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    prices: PricesArg = None,
    exporters: Sequence[Exporter] = (),
) -> TrackedAgent:
    """Wrap an agent so every invoke appends one `llm_usage` event to `log`.

    Args:
        agent: any Runnable or compiled LangGraph graph.
        log: an `EventLog` (or anything with `append(event)`); None to export only.
        session_id: a str, or a callable given the call's config; per call,
            ``config["metadata"]["session_id"]`` wins and
            ``config["configurable"]["thread_id"]`` is the fallback.
        model: a label written as the event's `model` (e.g. "anthropic:claude-sonnet-4-5").
        metadata: copied into every event.
        prices: price overrides: a mapping of model -> per-million prices, or a
            TOML/JSON file path.
        exporters: non-blocking exporters (see `agent_usage.exporters`).

    Raises:
        TypeError: when an argument has the wrong type.
    """
    return TrackedAgent(
        agent,
        log,
        session_id=session_id,
        model=model,
        metadata=metadata,
        prices=prices,
        exporters=exporters,
    )
