"""LiteLLM's UsageLogger: the real litellm against loopback OpenAI and Anthropic servers.

Each server speaks its provider's wire format with a scripted `usage`; LiteLLM
parses it as in production and calls the logger back on its own threads and
loops, after the call has returned, so every test waits (bounded) for the event.
Expected numbers are the ones the servers served, written out by hand.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from providers import AnthropicServer, OpenAIServer, Reply
from providers.truncated import TruncatedAnthropicServer

from agent_usage import EventLog, read_events
from agent_usage.exporters.posthog import generation_properties
from agent_usage.integrations.litellm import UsageLogger

pytest_plugins = ["providers.fixtures"]
# litellm 1.110's own warnings (a module it imports on first call makes pydantic warn;
# its streaming path uses deprecated asyncio/pydantic calls). Warnings are errors here, and
# an error inside LiteLLM's logging thread would silently drop the callback under test.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Item.* `ReadOnly` qualifier:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
]

MESSAGES = [{"role": "user", "content": "hi"}]
# Rates (USD per million tokens) given to the logger, so each expected cost below is
# plain arithmetic on the served numbers.
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
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "cache_creation_1h_input_tokens",
)
WAIT_S = 10.0


@dataclass(frozen=True)
class Shape:
    """One provider usage report and the event fields it must give."""

    name: str
    provider: str  # which fake server
    model: str  # LiteLLM model string
    usage: Mapping[str, Any]  # what the server bills, in its own wire format
    expected: Mapping[str, int]
    cost: float


SHAPES = [
    Shape(
        "openai-cached-reasoning",
        "openai",
        "openai/gpt-5-mini",
        {
            "prompt_tokens": 1200,
            "completion_tokens": 400,
            "total_tokens": 1600,
            "prompt_tokens_details": {"cached_tokens": 1000},
            "completion_tokens_details": {"reasoning_tokens": 256},
        },
        {
            "input_tokens": 1200,
            "output_tokens": 400,
            "total_tokens": 1600,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 0,
            "reasoning_tokens": 256,
        },
        # 200 uncached x 0.25 + 1000 read x 0.025 + 400 out x 2.0
        (50 + 25 + 800) / 1e6,
    ),
    Shape(
        "anthropic-read-5m-1h",
        "anthropic",
        "anthropic/claude-sonnet-4-6",
        {
            "input_tokens": 100,  # Anthropic: excludes cache reads and writes
            "output_tokens": 50,
            "cache_read_input_tokens": 400,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        },
        {
            "input_tokens": 800,
            "output_tokens": 50,
            "total_tokens": 850,
            "cache_read_input_tokens": 400,
            "cache_creation_input_tokens": 300,
            "cache_creation_1h_input_tokens": 200,
            "reasoning_tokens": 0,
        },
        # 100 x 3 + 400 read x 0.3 + 100 5m-write x 3.75 + 200 1h-write x 6 + 50 out x 15
        (300 + 120 + 375 + 1200 + 750) / 1e6,
    ),
    Shape(
        "anthropic-5m-only",
        "anthropic",
        "anthropic/claude-sonnet-4-6",
        {
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
        },
        {
            "input_tokens": 600,
            "output_tokens": 20,
            "total_tokens": 620,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 500,
            "cache_creation_1h_input_tokens": 0,
            "reasoning_tokens": 0,
        },
        # 100 x 3 + 500 5m-write x 3.75 + 20 out x 15
        (300 + 1875 + 300) / 1e6,
    ),
]


def _close_leaked_loop() -> None:
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


@pytest.fixture(autouse=True)
def _litellm_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Quiet LiteLLM's console hints and leave no logger (or leaked loop) after a test."""
    litellm.suppress_debug_info = True
    sync_test = not inspect.iscoroutinefunction(request.function)
    if sync_test:
        _close_leaked_loop()
    yield
    litellm.callbacks = []
    litellm.logging_callback_manager._reset_all_callbacks()  # type: ignore[no-untyped-call]
    if sync_test:
        _close_leaked_loop()


@pytest.fixture(scope="module")
def truncated_anthropic() -> Iterator[TruncatedAnthropicServer]:
    with TruncatedAnthropicServer() as server:
        yield server


@pytest.fixture
def servers(openai_server: OpenAIServer, anthropic_server: AnthropicServer) -> dict[str, Any]:
    return {"openai": openai_server, "anthropic": anthropic_server}


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


def logged(path: Path) -> list[dict[str, Any]]:
    return list(read_events(path, types={"llm_usage"})) if path.exists() else []


def wait_for(check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll until `check()` holds (LiteLLM calls back after the call returned)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for LiteLLM's callback"
        time.sleep(0.01)


async def await_for(check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """`wait_for` for async tests: the callback runs on this loop, so yield to it."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for LiteLLM's callback"
        await asyncio.sleep(0.01)


def numbers(event: Mapping[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in TOKEN_KEYS if k in event}


def run_call(
    kwargs: dict[str, Any],
    *,
    stream: bool,
    is_async: bool,
    until: Callable[[], bool] = lambda: True,
) -> None:
    """One LiteLLM call, consumed to the end, sync or async; then wait for `until`.

    Async: the wait happens on the call's loop, where LiteLLM's logging task runs.
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
        return

    async def go() -> None:
        try:
            response = await litellm.acompletion(**kwargs)
            if stream:
                async for _ in response:
                    pass
        finally:
            await await_for(until)

    asyncio.run(go())


# -- one event per call, every shape, every way of calling -----------------------


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_one_event_per_call(
    tmp_path: Path, servers: dict[str, Any], shape: Shape, stream: bool, is_async: bool
) -> None:
    """Each call writes one event holding exactly what the provider billed, priced."""
    server = servers[shape.provider]
    server.script(Reply(text="hello there", usage=shape.usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), prices=PRICES))

    run_call(
        call_kwargs(server, shape.model),
        stream=stream,
        is_async=is_async,
        until=lambda: len(logged(path)) >= 1,
    )

    time.sleep(0.2)  # a second report of the same call would land by now
    [event] = logged(path)
    assert numbers(event) == shape.expected
    assert event["status"] == "ok"
    assert event["llm_calls"] == 1
    assert event["cost_usd"] == pytest.approx(shape.cost)
    bare = shape.model.split("/", 1)[1]
    assert event["model"] == bare
    assert event["models"][bare]["provider"] == shape.provider
    assert server.pending == 0


def test_session_from_call_metadata(tmp_path: Path, openai_server: OpenAIServer) -> None:
    """metadata["session_id"] of the call wins; else the logger's session_id."""
    usage = SHAPES[0].usage
    openai_server.script(Reply(text="a", usage=usage), Reply(text="b", usage=usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), session_id="default-session", prices=PRICES))

    kwargs = call_kwargs(openai_server, "openai/gpt-5-mini")
    litellm.completion(**kwargs, metadata={"session_id": "user-7"})
    litellm.completion(**kwargs)

    wait_for(lambda: len(logged(path)) == 2)
    assert sorted(e["session_id"] for e in logged(path)) == ["default-session", "user-7"]


def test_metadata_and_invoke_id(tmp_path: Path, openai_server: OpenAIServer) -> None:
    """The logger's metadata is copied into each event; invoke_id is LiteLLM's call id."""
    openai_server.script(Reply(text="a", usage=SHAPES[0].usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), metadata={"app": "billing"}, prices=PRICES))

    response = litellm.completion(**call_kwargs(openai_server, "openai/gpt-5-mini"))

    wait_for(lambda: len(logged(path)) == 1)
    [event] = logged(path)
    assert event["metadata"] == {"app": "billing"}
    assert event["invoke_id"] == response._hidden_params["litellm_call_id"]
    assert event["session_id"] is None


# -- failures -----------------------------------------------------------------


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


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_http_error_reaches_caller_and_logs_nothing(
    tmp_path: Path, openai_server: OpenAIServer, is_async: bool
) -> None:
    """A refused call raises LiteLLM's own error, unchanged; no usage, so no event."""
    openai_server.script(Reply(status=500))
    path = tmp_path / "events.jsonl"
    logger = UsageLogger(EventLog(path), prices=PRICES)
    after = FailureSeen()  # LiteLLM calls its callbacks in order: ours has run before it
    litellm.callbacks = [logger, after]

    with pytest.raises(litellm.exceptions.InternalServerError):
        run_call(
            call_kwargs(openai_server, "openai/gpt-5-mini"),
            stream=False,
            is_async=is_async,
            until=lambda: after.calls > 0,
        )

    assert logged(path) == []
    assert logger.failures == {}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_interrupted_stream_logs_error_with_reported_usage(
    tmp_path: Path, truncated_anthropic: TruncatedAnthropicServer, is_async: bool
) -> None:
    """A stream cut after message_start: status "error" with the input side it reported."""
    truncated_anthropic.reset()
    truncated_anthropic.script(Reply(text="one two three four", usage=SHAPES[1].usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), prices=PRICES))

    with pytest.raises(litellm.exceptions.MidStreamFallbackError):
        run_call(
            call_kwargs(truncated_anthropic, "anthropic/claude-sonnet-4-6"),
            stream=True,
            is_async=is_async,
            until=lambda: len(logged(path)) == 1,
        )

    [event] = logged(path)
    assert event["status"] == "error"
    # The input side as message_start reported it; the output is LiteLLM's count of the
    # text delivered before the cut (the provider never sent a final count).
    served = SHAPES[1].expected
    for key in (
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation_1h_input_tokens",
    ):
        assert event[key] == served[key], key
    assert 0 < event["output_tokens"] < served["output_tokens"]


# -- where LiteLLM calls back, and that the logger never gets in its way ----------


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


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_sync_calls_are_logged_on_litellm_threads(
    openai_server: OpenAIServer, stream: bool
) -> None:
    """Sync calls: the logger runs on LiteLLM's logging threads, after the call returned."""
    release = threading.Event()
    openai_server.script(Reply(text="a b", usage=SHAPES[0].usage))
    sink = RecordingSink(block=release)
    register(UsageLogger(sink, prices=PRICES))

    started = time.monotonic()
    run_call(call_kwargs(openai_server, "openai/gpt-5-mini"), stream=stream, is_async=False)
    returned = time.monotonic() - started

    # The sink is stuck in append, yet the call has returned: the logger is off its path.
    wait_for(lambda: len(sink.threads) == 1)
    assert sink.events == []
    assert returned < WAIT_S
    release.set()
    wait_for(lambda: len(sink.events) == 1)
    assert sink.threads[0] is not threading.main_thread()
    assert sink.threads[0].name.startswith("litellm-logging")
    assert sink.loops == [None]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_async_calls_are_logged_in_a_task_on_the_callers_loop(
    openai_server: OpenAIServer, stream: bool
) -> None:
    """acompletion: the logger runs on the caller's loop, in LiteLLM's task, after the return."""
    openai_server.script(Reply(text="a b", usage=SHAPES[0].usage))
    sink = RecordingSink()
    register(UsageLogger(sink, prices=PRICES))
    kwargs = call_kwargs(openai_server, "openai/gpt-5-mini")
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})

    response = await litellm.acompletion(**kwargs)
    if stream:
        async for _ in response:
            pass
    assert sink.events == []  # nothing ran inside the call itself

    await await_for(lambda: len(sink.events) == 1)
    assert sink.loops == [asyncio.get_running_loop()]
    assert sink.threads == [threading.current_thread()]


def test_never_raises_into_litellm(
    openai_server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink and an exporter that raise: the call is unaffected, failures counted, logged once."""

    class Broken:
        def append(self, event: Mapping[str, Any]) -> None:
            raise OSError("disk full")

        def export(self, event: Mapping[str, Any]) -> None:
            raise RuntimeError("exporter down")

    broken = Broken()
    openai_server.script(*[Reply(text="x", usage=SHAPES[0].usage)] * 3)
    logger = register(UsageLogger(broken, exporters=[broken], prices=PRICES))

    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            response = litellm.completion(**call_kwargs(openai_server, "openai/gpt-5-mini"))
            assert response.choices[0].message.content == "x"
        wait_for(lambda: sum(logger.failures.values()) == 6)

    assert logger.failures == {"writing the llm_usage event": 3, "exporting to Broken": 3}
    ours = [r for r in caplog.records if r.name.startswith("agent_usage")]
    assert len(ours) == 2  # once per cause
    # LiteLLM never saw an exception from its callback.
    assert not [r for r in caplog.records if r.name.startswith("LiteLLM") and r.exc_info]


def test_concurrent_calls_never_mix(tmp_path: Path, anthropic_server: AnthropicServer) -> None:
    """Calls from many threads and tasks at once: one event each, its own session and usage."""
    n = 12
    # Each reply bills a distinct input, so every event can be traced to one reply.
    anthropic_server.script(
        *[
            Reply(text="ok", usage={"input_tokens": 10 + i, "output_tokens": 1})
            for i in range(2 * n)
        ]
    )
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), prices=PRICES))
    kwargs = call_kwargs(anthropic_server, "anthropic/claude-sonnet-4-6")

    threads = [
        threading.Thread(
            target=litellm.completion, kwargs={**kwargs, "metadata": {"session_id": f"t{i}"}}
        )
        for i in range(n)
    ]

    async def tasks() -> None:
        await asyncio.gather(
            *[litellm.acompletion(**kwargs, metadata={"session_id": f"a{i}"}) for i in range(n)]
        )
        # LiteLLM logs these in tasks on this loop: wait for them before it closes.
        await await_for(lambda: sum(e["session_id"][0] == "a" for e in logged(path)) == n)

    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join(WAIT_S)
    wait_for(lambda: len(logged(path)) == 2 * n)

    events = logged(path)
    assert sorted(e["session_id"] for e in events) == sorted(
        [f"t{i}" for i in range(n)] + [f"a{i}" for i in range(n)]
    )
    assert sorted(e["input_tokens"] for e in events) == [10 + i for i in range(2 * n)]
    assert len({e["invoke_id"] for e in events}) == 2 * n


# -- the PostHog mapping gets the whole picture ----------------------------------


def test_posthog_generation_has_cache_reasoning_and_cost(
    tmp_path: Path, servers: dict[str, Any]
) -> None:
    """$ai_generation from these events: cache read, cache creation (5m/1h), reasoning, cost."""
    servers["openai"].script(Reply(text="a", usage=SHAPES[0].usage))
    servers["anthropic"].script(Reply(text="b", usage=SHAPES[1].usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), session_id="s1", prices=PRICES))
    litellm.completion(**call_kwargs(servers["openai"], SHAPES[0].model))
    litellm.completion(**call_kwargs(servers["anthropic"], SHAPES[1].model))
    wait_for(lambda: len(logged(path)) == 2)

    props = {model: p for event in logged(path) for model, p in generation_properties(event)}
    openai = props["gpt-5-mini"]
    assert openai["$ai_input_tokens"] == 1200
    assert openai["$ai_output_tokens"] == 400
    assert openai["$ai_cache_read_input_tokens"] == 1000
    assert openai["$ai_reasoning_tokens"] == 256
    assert openai["$ai_total_cost_usd"] == pytest.approx(SHAPES[0].cost)
    anthropic = props["claude-sonnet-4-6"]
    # PostHog's Anthropic convention: input without cache reads and writes (100 served).
    assert anthropic["$ai_input_tokens"] == 100
    assert anthropic["$ai_cache_read_input_tokens"] == 400
    assert anthropic["$ai_cache_creation_input_tokens"] == 300
    assert anthropic["$ai_cache_creation_1h_input_tokens"] == 200
    assert anthropic["$ai_cache_creation_5m_input_tokens"] == 100
    assert anthropic["$ai_total_cost_usd"] == pytest.approx(SHAPES[1].cost)
    assert anthropic["$ai_session_id"] == "s1"


# -- construction and the optional extra ------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"session_id": 7}, TypeError),
        ({"metadata": ["app"]}, TypeError),
        ({"exporters": [object()]}, TypeError),
        ({"prices": {"m": {"input": -1, "output": 1}}}, ValueError),
    ],
    ids=["session", "metadata", "exporter", "prices"],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], error: type) -> None:
    """Configuration errors surface when the logger is built, naming the value."""
    with pytest.raises(error):
        UsageLogger(None, **kwargs)


def test_bad_log_fails_at_construction() -> None:
    """A log without append() is refused."""
    with pytest.raises(TypeError, match="append"):
        UsageLogger("events.jsonl")  # type: ignore[arg-type]


def test_litellm_imported_only_by_the_integration() -> None:
    """`import agent_usage` leaves litellm unimported; a missing extra names the install."""
    code = (
        "import sys, agent_usage, agent_usage.integrations\n"
        "assert 'litellm' not in sys.modules, 'litellm imported'\n"
        "sys.modules['litellm'] = None\n"
        "try:\n"
        "    import agent_usage.integrations.litellm\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'langchain-agent-usage[litellm]'" in out.stdout
