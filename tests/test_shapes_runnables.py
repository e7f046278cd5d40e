"""Runnable-level shapes: `with_retry`, `with_fallbacks`, structured output, `asyncio.wait_for`.

Real langchain-openai / langchain-anthropic against the loopback servers where
the shape is about what the provider answered (a 500 before a retry, a failing
primary before a fallback, a JSON-schema answer); `ScriptedChatModel` where it
is about LangChain's own machinery (a parser failure, a timeout).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.structured_output import ToolStrategy
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import JsonOutputParser
from langchain_openai import ChatOpenAI
from langgraph.graph import START, StateGraph
from providers import AnthropicServer, OpenAIServer, Reply, ToolCall
from providers.expect import State, drive, events, expected, numbers, one_node_graph, only_event
from pydantic import BaseModel, SecretStr

from agent_usage import EventLog, track_usage
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um

pytest_plugins = ["providers.fixtures"]

GPT = "gpt-5-mini-2025-08-07"


def chat_openai(server: OpenAIServer, **kwargs: Any) -> ChatOpenAI:
    """`ChatOpenAI` on the fake server, without the SDK's own retries."""
    return ChatOpenAI(
        model="gpt-5-mini",
        base_url=server.url,
        api_key=SecretStr("test"),
        max_retries=0,
        timeout=10,
        stream_usage=True,
        **kwargs,
    )


def openai_usage(prompt: int, completion: int, *, cached: int = 0) -> dict[str, Any]:
    """A Chat Completions usage object as the API sends it."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


# -- with_retry ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["ainvoke", "invoke", "astream-messages"])
async def test_with_retry_inside_a_graph(
    openai_server: OpenAIServer, tmp_path: Path, how: str
) -> None:
    """`model.with_retry()` in a node: the 500 bills nothing, the retried call counts once."""
    openai_server.script(
        Reply(status=500), Reply(text="ok", usage=openai_usage(640, 32, cached=512), model=GPT)
    )
    model = chat_openai(openai_server).with_retry(
        stop_after_attempt=2, wait_exponential_jitter=False
    )
    graph = one_node_graph(model)
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await drive(track_usage(graph, log), how, {"messages": [HumanMessage("hi")]})

    assert len(openai_server.requests) == 2
    event = only_event(path)
    assert event["status"] == "ok"
    assert numbers(event) == expected(640, 32, read=512)
    assert (event["llm_calls"], event["llm_calls_without_usage"]) == (1, 0)


# -- with_fallbacks ----------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["ainvoke", "astream"])
async def test_with_fallbacks_after_a_provider_error(
    openai_server: OpenAIServer, anthropic_server: AnthropicServer, tmp_path: Path, stream: bool
) -> None:
    """Anthropic answers 529 (overloaded), OpenAI takes over: only OpenAI's call is billed."""
    anthropic_server.script(Reply(status=529))
    openai_server.script(Reply(text="ok", usage=openai_usage(300, 30, cached=128), model=GPT))
    options: dict[str, Any] = {"timeout": 10.0}
    primary = ChatAnthropic(
        model_name="claude-sonnet-4-6",
        base_url=anthropic_server.url,
        api_key=SecretStr("test"),
        max_retries=0,
        **options,
    )
    model = primary.with_fallbacks([chat_openai(openai_server)])
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        tracked = track_usage(model, log)
        if stream:
            async for _ in tracked.astream("hi"):
                pass
        else:
            await tracked.ainvoke("hi")

    assert (len(anthropic_server.requests), len(openai_server.requests)) == (1, 1)
    event = only_event(path)
    assert numbers(event) == expected(300, 30, read=128)
    assert event["model"] == GPT
    assert list(event["models"]) == [GPT]
    assert event["llm_calls"] == 1


async def test_fallback_after_a_billed_answer_counts_both(tmp_path: Path) -> None:
    """The primary answered (billed) but its output did not parse: both calls count."""
    primary = ScriptedChatModel(
        model_name="primary", script=[AIMessage(content="not json", usage_metadata=um(400, 40))]
    )
    backup = ScriptedChatModel(
        model_name="backup",
        script=[AIMessage(content='{"value": 5}', usage_metadata=um(410, 12, cache_read=256))],
    )
    chain = (primary | JsonOutputParser()).with_fallbacks([backup | JsonOutputParser()])
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        assert await track_usage(chain, log).ainvoke("hi") == {"value": 5}

    event = only_event(path)
    assert numbers(event) == expected(810, 52, read=256)
    assert {name: row["llm_calls"] for name, row in event["models"].items()} == {
        "primary": 1,
        "backup": 1,
    }


# -- Structured output ------------------------------------------------------------------


class Answer(BaseModel):
    """The structured answer."""

    value: int


@pytest.mark.parametrize("include_raw", [False, True])
async def test_with_structured_output_json_schema(
    openai_server: OpenAIServer, tmp_path: Path, include_raw: bool
) -> None:
    """`with_structured_output` (json_schema): the parsed object comes back, the call is billed."""
    openai_server.script(
        Reply(text='{"value": 5}', usage=openai_usage(250, 9, cached=128), model=GPT)
    )
    model = chat_openai(openai_server).with_structured_output(Answer, include_raw=include_raw)
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        result = await track_usage(model, log).ainvoke("2+3?")

    parsed = result["parsed"] if include_raw else result
    assert parsed == Answer(value=5)
    assert openai_server.requests[0]["response_format"]["type"] == "json_schema"
    event = only_event(path)
    assert numbers(event) == expected(250, 9, read=128)
    assert event["llm_calls"] == 1


@pytest.mark.parametrize("how", ["ainvoke", "astream-messages"])
async def test_agent_response_format_tool_strategy(
    openai_server: OpenAIServer, tmp_path: Path, how: str
) -> None:
    """`create_agent(response_format=ToolStrategy(...))`: the structured call is billed once."""
    openai_server.script(
        Reply(
            tool_calls=(ToolCall("Answer", {"value": 5}, "call_answer"),),
            usage=openai_usage(420, 18, cached=256),
            model=GPT,
        )
    )
    agent = create_agent(chat_openai(openai_server), response_format=ToolStrategy(Answer))
    path = tmp_path / "events.jsonl"
    inputs = {"messages": [HumanMessage("2+3?")]}
    with EventLog(path) as log:
        result = await drive(track_usage(agent, log), how, inputs)
    if how == "ainvoke":
        assert result["structured_response"] == Answer(value=5)

    assert len(openai_server.requests) == 1
    event = only_event(path)
    assert numbers(event) == expected(420, 18, read=256)
    assert event["llm_calls"] == 1


# -- asyncio.wait_for timeouts --------------------------------------------------------


def slow_after_one_call(model: BaseChatModel, stall: asyncio.Event) -> Any:
    """A graph: one model call, then a node that waits far longer than any test timeout."""

    def call(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def stuck(state: State) -> dict[str, Any]:
        stall.set()
        await asyncio.sleep(60)
        return {}

    return (
        StateGraph(State)
        .add_node("call", call)
        .add_node("stuck", stuck)
        .add_edge(START, "call")
        .add_edge("call", "stuck")
        .compile()
    )


@pytest.mark.parametrize("how", ["ainvoke", "astream-updates", "astream-messages"])
async def test_wait_for_timeout_logs_cancelled_with_what_was_spent(
    tmp_path: Path, how: str
) -> None:
    """`asyncio.wait_for` cancels the invoke: the event says "cancelled" and holds call one."""
    model = ScriptedChatModel(
        model_name="timed", script=[AIMessage(content="first", usage_metadata=um(330, 33))]
    )
    stall = asyncio.Event()
    tracked = track_usage(slow_after_one_call(model, stall), EventLog(tmp_path / "events.jsonl"))
    inputs = {"messages": [HumanMessage("hi")]}

    invoke = asyncio.ensure_future(drive(tracked, how, inputs))
    # Let the first node's call finish however loaded the machine is, then time out
    # inside the stuck node: wait_for cancels the invoke exactly as in user code.
    await asyncio.wait_for(stall.wait(), timeout=30)
    with pytest.raises(asyncio.TimeoutError):  # not yet the builtin on 3.10
        await asyncio.wait_for(invoke, timeout=0.2)

    assert invoke.cancelled()
    [event] = events(tmp_path / "events.jsonl")
    assert event["status"] == "cancelled"
    assert numbers(event) == expected(330, 33)
    assert event["llm_calls"] == 1
