"""LiteLLM inside tracked LangChain agents: ChatLiteLLM, and direct litellm calls from tools.

The real langchain-litellm and litellm against the loopback OpenAI and Anthropic
servers. Each call must be counted exactly once in the invoke's event, whether it
is seen through LangChain's callbacks (ChatLiteLLM), through LiteLLM's callback
(`UsageLogger`), or both; the logger writes no event of its own for them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import litellm
import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_litellm import ChatLiteLLM
from logs import usage_events
from providers import AnthropicServer, OpenAIServer, Reply, ToolCall
from providers.expect import numbers
from providers.litellm_support import (
    LITELLM_MARKS,
    PRICES,
    asettle,
    litellm_state,  # noqa: F401  (LITELLM_MARKS uses it)
    settle,
    wait_for,
)

from agent_usage import EventLog, track_usage, tracking
from agent_usage.integrations.litellm import UsageLogger

pytest_plugins = ["providers.fixtures"]
pytestmark = LITELLM_MARKS

LOOKUP = ToolCall(name="look_up", args={"topic": "tides"}, id="call_1")
# What the servers bill, in their own wire formats.
OPENAI_TOOL_TURN = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1024},
    "completion_tokens_details": {"reasoning_tokens": 192},
}
OPENAI_ANSWER_TURN = {
    "prompt_tokens": 1400,
    "completion_tokens": 50,
    "total_tokens": 1450,
    "prompt_tokens_details": {"cached_tokens": 1280},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
ANTHROPIC_TOOL_TURN = {
    "input_tokens": 20,
    "output_tokens": 40,
    "cache_read_input_tokens": 1000,
    "cache_creation_input_tokens": 600,
    "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 400},
}
ANTHROPIC_ANSWER_TURN = {
    "input_tokens": 30,
    "output_tokens": 15,
    "cache_read_input_tokens": 1600,
    "cache_creation_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
}

# The two turns of each agent, summed by hand.
OPENAI_AGENT = {
    "input_tokens": 2600,
    "output_tokens": 350,
    "total_tokens": 2950,
    "cache_read_input_tokens": 2304,
    "cache_creation_input_tokens": 0,
    "reasoning_tokens": 192,
}
ANTHROPIC_AGENT = {
    "input_tokens": 20 + 1000 + 600 + 30 + 1600,  # Anthropic input excludes cache: added back
    "output_tokens": 55,
    "total_tokens": 3250 + 55,
    "cache_read_input_tokens": 2600,
    "cache_creation_input_tokens": 600,
    "cache_creation_1h_input_tokens": 400,
    "reasoning_tokens": 0,
}


@tool
def look_up(topic: str) -> str:
    """Look a topic up."""
    return f"{topic}: twice a day"


def chat_litellm(server: Any, model: str, *, streaming: bool) -> ChatLiteLLM:
    return ChatLiteLLM(model=model, api_base=server.url, api_key="sk-test", streaming=streaming)


def run_agent(agent: Any, *, is_async: bool) -> None:
    """Run the agent, then let LiteLLM finish reporting its calls (on the agent's loop)."""
    inputs = {"messages": [HumanMessage("When is high tide?")]}
    if is_async:

        async def go() -> None:
            await agent.ainvoke(inputs)
            await asettle()

        asyncio.run(go())
    else:
        agent.invoke(inputs)
        settle()


@pytest.mark.parametrize("with_logger", [False, True], ids=["langchain-only", "plus-logger"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_chatlitellm_agent_counts_exactly_once(
    tmp_path: Path,
    openai_server: OpenAIServer,
    anthropic_server: AnthropicServer,
    provider: str,
    streaming: bool,
    is_async: bool,
    with_logger: bool,
) -> None:
    """A ChatLiteLLM agent in track_usage: cache and reasoning exact, each call once."""
    if provider == "openai":
        server: Any = openai_server
        model, turns, want = (
            "openai/gpt-5-mini",
            (OPENAI_TOOL_TURN, OPENAI_ANSWER_TURN),
            OPENAI_AGENT,
        )
    else:
        server = anthropic_server
        model = "anthropic/claude-sonnet-4-6"
        turns, want = (ANTHROPIC_TOOL_TURN, ANTHROPIC_ANSWER_TURN), dict(ANTHROPIC_AGENT)
        if streaming:
            # langchain-litellm keeps LiteLLM's raw usage only for responses it did not
            # stream; a streamed message has no 5m/1h split left to recover.
            del want["cache_creation_1h_input_tokens"]
    server.script(
        Reply(tool_calls=(LOOKUP,), usage=turns[0]), Reply(text="At six.", usage=turns[1])
    )
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    if with_logger:
        litellm.callbacks = [UsageLogger(log, prices=PRICES)]
    agent = create_agent(chat_litellm(server, model, streaming=streaming), tools=[look_up])

    # run_agent returns once LiteLLM has nothing left to report: an event the logger
    # wrote of its own for a ChatLiteLLM call would be in the log.
    run_agent(track_usage(agent, log, prices=PRICES), is_async=is_async)

    [event] = usage_events(path)
    assert numbers(event) == want
    assert event["llm_calls"] == 2
    assert event["llm_calls_without_usage"] == 0
    assert event["cost_usd"] is not None
    assert server.pending == 0


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_litellm_call_in_a_tool_is_counted_once_in_the_invoke(
    tmp_path: Path,
    openai_server: OpenAIServer,
    anthropic_server: AnthropicServer,
    is_async: bool,
) -> None:
    """A tool calls litellm directly: its usage (1h writes included) joins the invoke's event."""
    openai_server.script(
        Reply(tool_calls=(LOOKUP,), usage=OPENAI_TOOL_TURN),
        Reply(text="At six.", usage=OPENAI_ANSWER_TURN),
    )
    anthropic_server.script(Reply(text="Twice a day.", usage=ANTHROPIC_TOOL_TURN))
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    litellm.callbacks = [UsageLogger(log, session_id="logger-session", prices=PRICES)]
    helper = {
        "model": "anthropic/claude-sonnet-4-6",
        "messages": [{"role": "user", "content": "tides"}],
        "api_base": anthropic_server.url,
        "api_key": "sk-test",
    }

    @tool
    def ask_helper(topic: str) -> str:
        """Ask a helper model."""
        return str(litellm.completion(**helper).choices[0].message.content)

    @tool
    async def aask_helper(topic: str) -> str:
        """Ask a helper model."""
        response = await litellm.acompletion(**helper)
        return str(response.choices[0].message.content)

    lookup = ToolCall(name="aask_helper" if is_async else "ask_helper", args={"topic": "t"}, id="c")
    openai_server.reset()
    openai_server.script(
        Reply(tool_calls=(lookup,), usage=OPENAI_TOOL_TURN),
        Reply(text="At six.", usage=OPENAI_ANSWER_TURN),
    )
    agent = create_agent(
        chat_litellm(openai_server, "openai/gpt-5-mini", streaming=False),
        tools=[aask_helper if is_async else ask_helper],
    )

    run_agent(track_usage(agent, log, session_id="s1", prices=PRICES), is_async=is_async)

    [event] = usage_events(path)
    assert event["session_id"] == "s1"
    assert event["llm_calls"] == 3
    helper_row = {
        "input_tokens": 1620,
        "output_tokens": 40,
        "total_tokens": 1660,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 600,
        "cache_creation_1h_input_tokens": 400,
        "reasoning_tokens": 0,
    }
    assert numbers(event["models"]["claude-sonnet-4-6"]) == helper_row
    assert numbers(event) == {k: OPENAI_AGENT.get(k, 0) + helper_row[k] for k in helper_row}


def test_direct_calls_in_a_tracking_block_are_one_event_each(
    tmp_path: Path, anthropic_server: AnthropicServer
) -> None:
    """Inside tracking() but outside any invoke, each litellm call is one event, written once."""
    anthropic_server.script(*[Reply(text="ok", usage=ANTHROPIC_TOOL_TURN)] * 2)
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    litellm.callbacks = [UsageLogger(log, prices=PRICES)]
    with tracking(log, session_id="block", prices=PRICES):
        for _ in range(2):
            litellm.completion(
                model="anthropic/claude-sonnet-4-6",
                messages=[{"role": "user", "content": "hi"}],
                api_base=anthropic_server.url,
                api_key="sk-test",
            )
    wait_for(lambda: len(usage_events(path)) >= 2)
    settle()  # a second report of either call would be in the log now

    events = usage_events(path)
    assert len(events) == 2
    assert {e["session_id"] for e in events} == {"block"}
    assert all(e["cache_creation_1h_input_tokens"] == 400 for e in events)


def test_call_reported_after_its_invoke_ended_is_not_lost(
    tmp_path: Path, anthropic_server: AnthropicServer
) -> None:
    """A tracked runnable that returns right after a litellm call: the call is logged once.

    LiteLLM reports it from its thread pool after the call returned, usually after
    the invoke ended: then it is its own event; if it lands in time, the invoke's.
    """
    anthropic_server.script(Reply(text="ok", usage=ANTHROPIC_TOOL_TURN))
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    litellm.callbacks = [UsageLogger(log, prices=PRICES)]

    def ask(question: str) -> str:
        response = litellm.completion(
            model="anthropic/claude-sonnet-4-6",
            messages=[{"role": "user", "content": question}],
            api_base=anthropic_server.url,
            api_key="sk-test",
        )
        return str(response.choices[0].message.content)

    track_usage(RunnableLambda(ask), log, prices=PRICES).invoke("tides?")
    wait_for(lambda: len(usage_events(path)) >= 1)
    settle()  # were the call counted twice (its own event and the invoke's), both are in

    [event] = usage_events(path)
    assert event["input_tokens"] == 1620
    assert event["cache_creation_1h_input_tokens"] == 400
