"""Shared pieces of the LiteLLM tests: prices, waits, call helpers, sinks, LiteLLM's state.

Import `litellm_state` (the fixture LITELLM_MARKS uses) into the test module and set
``pytestmark = LITELLM_MARKS``. LiteLLM calls its loggers back after the call has
returned, on its own threads and loops, so tests wait (bounded) for what they expect.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_for_futures
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
from litellm.litellm_core_utils.thread_pool_executor import executor as logging_pool
from waits import TIMEOUT_S, await_until, wait_until

from agent_usage.integrations.litellm import UsageLogger

# litellm 1.110's own warnings (a module it imports on first call makes pydantic warn;
# its streaming path uses deprecated asyncio/pydantic calls). Warnings are errors here, and
# an error inside LiteLLM's logging thread would silently drop the callback under test.
LITELLM_MARKS = [
    pytest.mark.filterwarnings("ignore:Item.* `ReadOnly` qualifier:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
    pytest.mark.usefixtures("litellm_state"),
]

MESSAGES = [{"role": "user", "content": "hi"}]
# Rates (USD per million tokens) given to the loggers, so each expected cost in the tests
# is plain arithmetic on the served numbers.
PRICES = {
    "gpt-5-mini": {"input": 0.25, "output": 2.0, "cache_read": 0.025},
    "claude-sonnet-4-6": {
        "input": 3.0,
        "output": 15.0,
        "cache_read": 0.3,
        "cache_write": 3.75,
        "cache_write_1h": 6.0,
    },
}
WAIT_S = TIMEOUT_S


def close_leaked_loop() -> None:
    """Close the event loop LiteLLM's sync path leaves on the main thread.

    It calls the deprecated `asyncio.get_event_loop()` there, which creates and sets
    a loop that nothing closes; once replaced (by `asyncio.run`) it is collected with
    a ResourceWarning, an error in this suite.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            return
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)


# What LiteLLM has handed its logging thread pool during the test (see `settle`).
_pool_tasks: list[Future[Any]] = []
_LITELLM_DIR = os.path.dirname(litellm.__file__) + os.sep


@pytest.fixture
def litellm_state(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Quiet LiteLLM's console hints and leave no logger (or leaked loop) after a test.

    Also notes each task LiteLLM submits to its logging thread pool, for `settle`.
    """
    litellm.suppress_debug_info = True
    submit = logging_pool.submit

    def noted(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = submit(fn, *args, **kwargs)
        _pool_tasks.append(future)
        return future

    monkeypatch.setattr(logging_pool, "submit", noted)
    sync_test = not inspect.iscoroutinefunction(request.function)
    if sync_test:
        close_leaked_loop()
    yield
    litellm.callbacks = []
    litellm.logging_callback_manager._reset_all_callbacks()  # type: ignore[no-untyped-call]
    if sync_test:
        close_leaked_loop()
    _pool_tasks.clear()


def register(logger: UsageLogger) -> UsageLogger:
    litellm.callbacks = [logger]
    return logger


def call_kwargs(server: Any, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": MESSAGES,
        "api_base": server.url,
        "api_key": "sk-test",
        "num_retries": 0,
        **extra,
    }


def wait_for(check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll until `check()` holds (LiteLLM calls back after the call returned)."""
    wait_until(check, timeout, "timed out waiting for LiteLLM's callback")


async def await_for(check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """`wait_for` for async tests: the callback runs on this loop, so yield to it."""
    await await_until(check, timeout, "timed out waiting for LiteLLM's callback")


def settle(timeout: float = WAIT_S) -> None:
    """Return once every task LiteLLM has handed its logging thread pool has ended.

    Sync calls report from that pool (a `litellm_state` test notes what it is given),
    so after this every report of them, a second one included, is in the log: a
    barrier on what could still write, not a nap. Async calls: `asettle`.
    """
    deadline = time.monotonic() + timeout
    while pending := [f for f in _pool_tasks if not f.done()]:
        _, running = wait_for_futures(pending, timeout=max(0.0, deadline - time.monotonic()))
        assert not running, "LiteLLM's logging thread pool did not finish"


def _litellm_logging_task(task: asyncio.Task[Any]) -> bool:
    """A task of LiteLLM's on this loop that may still report a call.

    Its logging worker's loop never ends (it waits for work): its queue is flushed instead.
    """
    code = getattr(task.get_coro(), "cr_code", None)
    return (
        code is not None
        and code.co_filename.startswith(_LITELLM_DIR)
        and code.co_name != "_worker_loop"  # LoggingWorker's (co_qualname is 3.11+)
        and task is not asyncio.current_task()
        and not task.done()
    )


async def asettle(timeout: float = WAIT_S) -> None:
    """`settle` on the calls' event loop, before it closes (closing cancels its tasks).

    Async calls report in tasks on their loop: a helper task that queues the report
    with LiteLLM's logging worker, which runs it in another task (a stream, in a task
    of its own); some also go to the thread pool. Waits, round by round, until no
    task of LiteLLM's is left on the loop, the worker's queue is empty, and the pool
    is idle.
    """
    await asyncio.wait_for(_drain(), timeout)


async def _drain() -> None:
    while True:
        await GLOBAL_LOGGING_WORKER.flush()
        waits: list[asyncio.Future[Any]] = [
            t for t in asyncio.all_tasks() if _litellm_logging_task(t)
        ]
        waits += [asyncio.wrap_future(f) for f in _pool_tasks if not f.done()]
        if not waits:
            return
        await asyncio.wait(waits)


def run_call(
    kwargs: dict[str, Any],
    *,
    stream: bool,
    is_async: bool,
    until: Callable[[], bool] = lambda: True,
    drain: bool = False,
) -> None:
    """One LiteLLM call, consumed to the end, sync or async; then wait for `until`.

    Async: the wait happens on the call's loop, where LiteLLM's logging task runs.
    With `drain`, then also until LiteLLM has nothing left to report (`settle`).
    """
    if stream:
        kwargs = {**kwargs, "stream": True, "stream_options": {"include_usage": True}}
    if not is_async:
        try:
            response = litellm.completion(**kwargs)
            if stream:
                for _ in response:
                    pass
        finally:
            wait_for(until)
            if drain:
                settle()
        return

    async def go() -> None:
        try:
            response = await litellm.acompletion(**kwargs)
            if stream:
                async for _ in response:
                    pass
        finally:
            await await_for(until)
            if drain:
                await asettle()

    asyncio.run(go())


class FailureSeen(CustomLogger):
    """A plain LiteLLM callback that counts failure reports (registered after ours)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.calls += 1

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.calls += 1


class RecordingSink:
    """An event sink that notes the thread and event loop each append ran on."""

    def __init__(self, block: threading.Event | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.threads: list[threading.Thread] = []
        self.loops: list[asyncio.AbstractEventLoop | None] = []
        self.block = block

    def append(self, event: Mapping[str, Any]) -> None:
        self.threads.append(threading.current_thread())
        try:
            self.loops.append(asyncio.get_running_loop())
        except RuntimeError:
            self.loops.append(None)
        if self.block is not None:
            self.block.wait(WAIT_S)
        self.events.append(dict(event))
