"""Where LiteLLM calls the UsageLogger back, and that the logger never gets in its way.

The real litellm against the loopback OpenAI and Anthropic servers: the threads and
event loops the hooks run on, a sink that blocks or raises, calls from many threads
and tasks at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import litellm
import pytest
from logs import usage_events
from providers import AnthropicServer, OpenAIServer, Reply
from providers.litellm_support import (
    LITELLM_MARKS,
    PRICES,
    WAIT_S,
    RecordingSink,
    await_for,
    call_kwargs,
    litellm_state,  # noqa: F401  (LITELLM_MARKS uses it)
    register,
    run_call,
    wait_for,
)
from test_litellm import SHAPES

from agent_usage import EventLog
from agent_usage.integrations.litellm import UsageLogger

pytest_plugins = ["providers.fixtures"]
pytestmark = LITELLM_MARKS


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
        await await_for(lambda: sum(e["session_id"][0] == "a" for e in usage_events(path)) == n)

    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join(WAIT_S)
    wait_for(lambda: len(usage_events(path)) == 2 * n)

    events = usage_events(path)
    assert sorted(e["session_id"] for e in events) == sorted(
        [f"t{i}" for i in range(n)] + [f"a{i}" for i in range(n)]
    )
    assert sorted(e["input_tokens"] for e in events) == [10 + i for i in range(2 * n)]
    assert len({e["invoke_id"] for e in events}) == 2 * n
