"""`track_usage`: a transparent Runnable that logs one `llm_usage` event per invoke.

`TrackedRunnable` is a `RunnableBinding` whose per-call config factory carries
the `Tracker` (and gives each call a run id). LangChain's own binding methods
(`with_config`, `bind`, `with_retry`, `with_types`, `with_listeners`) keep the
config factories, so what they return is tracked too; `with_fallbacks`, `|` and
every other composition call this object's methods. Each `invoke`, `ainvoke`,
`stream` and `astream` enters a scope (see `_scope`) around the work; `batch`,
`abatch`, `batch_as_completed`, `abatch_as_completed`, `transform`,
`astream_events` and `astream_log` are Runnable's defaults, built on those four.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator, Mapping, Sequence
from functools import wraps
from typing import Any

from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.utils.uuid import uuid7

from ._pricing import PricesArg
from ._scope import Invoke, register_hook, warn_untracked
from ._tracker import EventSink, Exporter, SessionArg, Tracker

__all__ = ["TrackedRunnable", "track_usage"]


class _TrackerFactory:
    """The per-call config factory that marks a binding as tracked: a run id per call.

    The run id is a UUIDv7, as LangChain gives its own root runs, so the event's
    `invoke_id` is the root run's id in any tracer too.
    """

    __slots__ = ("tracker",)

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def __call__(self, config: RunnableConfig) -> RunnableConfig:
        if config.get("run_id") is None:
            return {"run_id": uuid7()}
        return {}


class TrackedRunnable(RunnableBinding[Any, Any]):
    """What `track_usage` returns: the agent, plus one `llm_usage` event per call.

    Same results, same exceptions, same chunks as the wrapped agent; a Runnable,
    so every Runnable method and composition on it stays tracked. Attributes it
    does not define are the wrapped agent's; a method of the agent that returns a
    new Runnable (``bind_tools``, ``with_structured_output``) returns it tracked.
    """

    @property
    def _tracker(self) -> Tracker:
        for factory in self.config_factories:
            if isinstance(factory, _TrackerFactory):
                return factory.tracker
        raise AttributeError("not tracked")  # pragma: no cover - built only by track_usage

    @property
    def wrapped(self) -> Runnable[Any, Any]:
        """The agent being tracked."""
        return self.bound

    @property
    def failures(self) -> dict[str, int]:
        """How many times each telemetry step failed (each cause is logged once)."""
        return self._tracker.failures.counts

    def __repr__(self) -> str:
        return f"track_usage({self.bound!r})"

    def _retracked(self, runnable: Runnable[Any, Any]) -> TrackedRunnable:
        return TrackedRunnable(
            bound=runnable, config=self.config, config_factories=self.config_factories
        )

    def _merge_configs(self, *configs: RunnableConfig | None) -> RunnableConfig:
        # The common case (nothing bound, only the tracker's factory, one call
        # config) is a copy plus a run id: LangChain's two merge_configs passes
        # cost more than everything else the wrapper does per call.
        if len(configs) != 1 or self.config or len(self.config_factories) != 1:
            return super()._merge_configs(*configs)
        config: Any = dict(configs[0]) if configs[0] else {}
        if config.get("run_id") is None:
            config["run_id"] = uuid7()
        return config  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        attr = super().__getattr__(name)
        if not callable(attr) or isinstance(attr, (type, Runnable)):
            return attr

        @wraps(attr)
        def tracked_method(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if result is self.bound:
                return self
            if isinstance(result, Runnable):
                return self._retracked(result)
            return result

        return tracked_method

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """Run the agent's `invoke` in a tracked scope."""
        config = self._merge_configs(config)
        call = Invoke(self._tracker, config)
        try:
            with call:
                result = self.bound.invoke(input, config, **{**self.kwargs, **kwargs})
        except BaseException as exc:
            call.end(exc)
            raise
        call.end(None)
        return result

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """Run the agent's `ainvoke` in a tracked scope."""
        config = self._merge_configs(config)
        call = Invoke(self._tracker, config)
        try:
            with call:
                result = await self.bound.ainvoke(input, config, **{**self.kwargs, **kwargs})
        except BaseException as exc:
            call.end(exc)
            raise
        call.end(None)
        return result

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Generator[Any, None, None]:
        """Yield the agent's `stream` chunks unchanged; log usage when the stream ends.

        The scope is active while the agent computes a chunk, not while the
        consumer holds it, so the consumer's own calls between chunks are not counted.
        """
        config = self._merge_configs(config)
        call = Invoke(self._tracker, config)
        failure: BaseException | None = GeneratorExit()  # closed before the end: cancelled
        inner: Iterator[Any] | None = None
        try:
            with call:
                inner = iter(self.bound.stream(input, config, **{**self.kwargs, **kwargs}))
                chunk = next(inner, _END)
            while chunk is not _END:
                yield chunk
                with call:
                    chunk = next(inner, _END)
            failure = None
        except BaseException as exc:
            failure = exc
            raise
        finally:
            close = getattr(inner, "close", None)
            if close is not None and failure is not None:
                with call:
                    close()
            call.end(failure)

    async def astream(
        self, input: Any, config: Any = None, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        """Yield the agent's `astream` chunks unchanged; log usage when the stream ends."""
        config = self._merge_configs(config)
        call = Invoke(self._tracker, config)
        failure: BaseException | None = GeneratorExit()  # closed before the end: cancelled
        inner: AsyncIterator[Any] | None = None
        try:
            with call:
                inner = aiter(self.bound.astream(input, config, **{**self.kwargs, **kwargs}))
                chunk = await anext(inner, _END)
            while chunk is not _END:
                yield chunk
                with call:
                    chunk = await anext(inner, _END)
            failure = None
        except BaseException as exc:
            failure = exc
            raise
        finally:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None and failure is not None:
                with call:
                    await aclose()
            call.end(failure)

    # Runnable's defaults, which run through the tracked methods above (the
    # binding's versions would call the wrapped agent's directly, untracked).
    batch = Runnable.batch
    abatch = Runnable.abatch
    batch_as_completed = Runnable.batch_as_completed
    abatch_as_completed = Runnable.abatch_as_completed
    transform = Runnable.transform
    atransform = Runnable.atransform
    astream_log = Runnable.astream_log

    def astream_events(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """The agent's events (v1/v2, tracked through `astream`); v3 passes through untracked."""
        if kwargs.get("version") == "v3":
            warn_untracked("astream_events(version='v3') on a tracked agent")
            return self.bound.astream_events(input, self._merge_configs(config), **kwargs)
        return Runnable.astream_events(self, input, config, **kwargs)

    def stream_events(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        """As `astream_events`, sync (v3 only in LangGraph; passes through untracked)."""
        if kwargs.get("version") == "v3":
            warn_untracked("stream_events(version='v3') on a tracked agent")
            return self.bound.stream_events(input, self._merge_configs(config), **kwargs)
        return Runnable.stream_events(self, input, config, **kwargs)


_END = object()


def track_usage(
    agent: Runnable[Any, Any],
    log: EventSink | None,
    *,
    session_id: SessionArg = None,
    model: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    prices: PricesArg = None,
    exporters: Sequence[Exporter] = (),
    budget: Any = None,
) -> TrackedRunnable:
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
        budget: a `Budget`: a model call past one of its limits is not sent and
            the invoke raises `BudgetExceeded`.

    Raises:
        TypeError: when an argument has the wrong type.
    """
    if not isinstance(agent, Runnable):
        raise TypeError(f"track_usage needs a Runnable or compiled graph; got {agent!r}")
    register_hook()
    tracker = Tracker(
        log,
        session_id=session_id,
        model=model,
        metadata=metadata,
        prices=prices,
        exporters=exporters,
        budget=budget,
    )
    return TrackedRunnable(bound=agent, config_factories=[_TrackerFactory(tracker)])
