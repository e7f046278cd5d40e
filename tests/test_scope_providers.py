"""Counting scoped by context, on the real integrations against loopback servers.

Each case of issue 11 that the old config-carried handler got wrong: a model in
a tool that passes its own callbacks, a tracked runnable inside a tracked agent,
LangChain's LLM cache, and an Anthropic stream that fails after it billed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anthropic
import pytest
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, StateGraph
from logs import usage_events as events
from providers import AnthropicServer, OpenAIServer, Reply, ToolCall
from providers.expect import State, drive, expected, numbers
from pydantic import SecretStr

from agent_usage import EventLog, track_usage

pytest_plugins = ["providers.fixtures"]

AGENT_MODEL = "gpt-5-mini-2025-08-07"
HELPER_MODEL = "claude-sonnet-4-6"
LOOKUP = ToolCall(name="look_up", args={"topic": "tides"}, id="call_look_up")


def openai_model(server: OpenAIServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-5-mini",
        base_url=server.url,
        api_key=SecretStr("test"),
        max_retries=0,
        stream_usage=True,
        **kwargs,
    )


def anthropic_model(server: AnthropicServer, **kwargs: Any) -> ChatAnthropic:
    return ChatAnthropic(
        model_name=HELPER_MODEL,
        base_url=server.url,
        api_key=SecretStr("test"),
        max_retries=0,
        **kwargs,
    )


def openai_usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


class Noted(BaseCallbackHandler):
    """The tool author's own handler: counts the calls it saw."""

    def __init__(self) -> None:
        self.ends = 0

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


def script_agent_and_helper(openai_server: OpenAIServer, anthropic_server: AnthropicServer) -> None:
    """Agent: a tool call (100/10), then the answer (200/20); helper: 1000/100, 512 read."""
    openai_server.script(
        Reply(tool_calls=(LOOKUP,), usage=openai_usage(100, 10), model=AGENT_MODEL),
        Reply(text="High tide at six.", usage=openai_usage(200, 20), model=AGENT_MODEL),
    )
    anthropic_server.script(
        Reply(
            text="Tides: twice a day.",
            usage={"input_tokens": 488, "cache_read_input_tokens": 512, "output_tokens": 100},
        )
    )


AGENT_ROW = expected(300, 30)
HELPER_ROW = expected(1000, 100, read=512)
BOTH = expected(1300, 130, read=512)


def helper_tool(call_helper: Callable[[str], str]) -> Any:
    @tool
    def look_up(topic: str) -> str:
        """Look a topic up with a helper model."""
        return call_helper(topic)

    return look_up


OWN_CALLBACKS: dict[str, Callable[[ChatAnthropic, Noted], Callable[[str], str]]] = {
    "invoke-config": lambda helper, noted: (
        lambda topic: str(helper.invoke(topic, config={"callbacks": [noted]}).content)
    ),
    "with_config": lambda helper, noted: (
        lambda topic: str(helper.with_config(callbacks=[noted]).invoke(topic).content)
    ),
}


@pytest.mark.parametrize("how", ["ainvoke", "astream-messages"])
@pytest.mark.parametrize("own", list(OWN_CALLBACKS))
async def test_model_in_a_tool_with_its_own_callbacks_is_counted(
    openai_server: OpenAIServer,
    anthropic_server: AnthropicServer,
    tmp_path: Path,
    own: str,
    how: str,
) -> None:
    """Case 1: a tool's model call that passes its own callbacks is in the agent's event."""
    script_agent_and_helper(openai_server, anthropic_server)
    noted = Noted()
    look_up = helper_tool(OWN_CALLBACKS[own](anthropic_model(anthropic_server), noted))
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent = track_usage(create_agent(openai_model(openai_server), tools=[look_up]), log)
        await drive(agent, how, {"messages": [HumanMessage("tides?")]})

    assert noted.ends == 1  # the tool's own handler still sees its call
    [event] = events(path)
    assert numbers(event) == BOTH
    assert event["llm_calls"] == 3
    assert event["model"] == "mixed"
    assert {name: numbers(row) for name, row in event["models"].items()} == {
        AGENT_MODEL: AGENT_ROW,
        HELPER_MODEL: HELPER_ROW,
    }


INNER: dict[str, Callable[[ChatAnthropic, EventLog], Any]] = {
    "tracked-chain": lambda helper, log: track_usage(
        ChatPromptTemplate.from_messages([("human", "{topic}")]) | helper | StrOutputParser(),
        log,
        session_id="inner",
    ),
    "tracked-model": lambda helper, log: (
        track_usage(helper, log, session_id="inner") | StrOutputParser()
    ),
}


@pytest.mark.parametrize("inner", list(INNER))
@pytest.mark.parametrize("method", ["invoke", "ainvoke"])
async def test_tracked_runnable_inside_a_tracked_agent_gives_both_events(
    openai_server: OpenAIServer,
    anthropic_server: AnthropicServer,
    tmp_path: Path,
    inner: str,
    method: str,
) -> None:
    """Case 2: nested tracking writes both events, each call once in each; outer has all."""
    script_agent_and_helper(openai_server, anthropic_server)
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        chain = INNER[inner](anthropic_model(anthropic_server), log)

        def call_helper(topic: str) -> str:
            result: str = chain.invoke({"topic": topic} if inner == "tracked-chain" else topic)
            return result

        agent = track_usage(
            create_agent(openai_model(openai_server), tools=[helper_tool(call_helper)]),
            log,
            session_id="outer",
        )
        await drive(agent, method, {"messages": [HumanMessage("tides?")]})

    by_session = {e["session_id"]: e for e in events(path)}
    assert set(by_session) == {"inner", "outer"}
    assert numbers(by_session["inner"]) == HELPER_ROW
    assert by_session["inner"]["llm_calls"] == 1
    assert numbers(by_session["outer"]) == BOTH
    assert by_session["outer"]["llm_calls"] == 3
    assert numbers(by_session["outer"]["models"][HELPER_MODEL]) == HELPER_ROW


PRICES = {"gpt-5-mini": {"input": 1.0, "output": 2.0}}  # USD per million tokens


async def test_llm_cache_hit_counts_no_tokens_and_no_cost(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    """Case 3: the same prompt twice through InMemoryCache: one request, one hit, one cost."""
    openai_server.script(
        Reply(text="cached answer", usage=openai_usage(100, 10), model=AGENT_MODEL)
    )
    model = openai_model(openai_server, cache=InMemoryCache())

    def ask(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke("the same prompt")]}

    graph = (
        StateGraph(State)
        .add_node("first", ask)
        .add_node("second", ask)
        .add_edge(START, "first")
        .add_edge("first", "second")
        .compile()
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        tracked = track_usage(graph, log, prices=PRICES)
        await tracked.ainvoke({"messages": [HumanMessage("go")]})
        # An invoke answered only from the cache spent nothing: no event.
        await tracked.ainvoke({"messages": [HumanMessage("again")]})

    assert len(openai_server.requests) == 1
    [event] = events(path)
    assert numbers(event) == expected(100, 10)
    assert (event["llm_calls"], event["llm_cache_hits"]) == (1, 1)
    assert event["llm_calls_without_usage"] == 0
    assert event["cost_usd"] == pytest.approx(100 * 1e-6 + 10 * 2e-6)


BROKEN_USAGE: Mapping[str, Any] = {
    "input_tokens": 300,
    "cache_creation_input_tokens": 1200,
    "cache_read_input_tokens": 2000,
    "output_tokens": 45,
}


@pytest.mark.parametrize("how", ["ainvoke", "astream-messages"])
async def test_anthropic_stream_broken_after_usage_logs_it_as_error(
    anthropic_server: AnthropicServer, tmp_path: Path, how: str
) -> None:
    """Case 4: an error event after message_delta: the billed usage, status error."""
    anthropic_server.script(Reply(text="Half an ans", usage=BROKEN_USAGE, break_stream=True))
    model: BaseChatModel = anthropic_model(anthropic_server, streaming=True)
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent = track_usage(create_agent(model, tools=[]), log)
        inputs = {"messages": [HumanMessage("explain")]}
        with pytest.raises(anthropic.APIStatusError) as raised:
            await drive(agent, how, inputs)

    assert "Overloaded" in str(raised.value)
    assert anthropic_server.requests[0]["stream"] is True
    [event] = events(path)
    assert event["status"] == "error"
    assert numbers(event) == expected(3500, 45, read=2000, creation=1200)
    assert event["llm_calls"] == 1
    assert list(event["models"]) == [HELPER_MODEL]
