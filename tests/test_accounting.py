"""The accounting promise, through the public API: one exact event per agent invoke."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from graphs import State
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from logs import TOKEN_FIELDS
from logs import usage_events as events
from waits import TIMEOUT_S

from agent_usage import EventLog, UsageCallbackHandler, track_usage
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um


def tokens(event: dict[str, Any]) -> dict[str, Any]:
    """The event's token counts and call counts."""
    return {k: event[k] for k in (*TOKEN_FIELDS, "llm_calls", "llm_calls_without_usage")}


async def call(agent: Any, method: str, payload: Any, config: Any = None) -> Any:
    """`agent.invoke(...)`, or `await agent.ainvoke(...)` when `method` is "ainvoke"."""
    if method == "ainvoke":
        return await agent.ainvoke(payload, config)
    return agent.invoke(payload, config)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def two_tool_calls(usage: Any) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[
            {"name": "add", "args": {"a": 1, "b": 2}, "id": "call-1"},
            {"name": "add", "args": {"a": 3, "b": 4}, "id": "call-2"},
        ],
        usage_metadata=usage,
    )


def tool_agent(**kwargs: Any) -> Any:
    model = ScriptedChatModel(
        script=[
            two_tool_calls(um(100, 20, cache_read=50, reasoning=5)),
            AIMessage(
                content="3 and 7",
                usage_metadata=um(200, 30, cache_creation=40, cache_creation_1h=10),
            ),
        ]
    )
    return create_agent(model, tools=[add], **kwargs)


TOOL_AGENT_TOTALS = {
    "input_tokens": 300,
    "output_tokens": 50,
    "total_tokens": 350,
    "cache_read_input_tokens": 50,
    "cache_creation_input_tokens": 40,
    "reasoning_tokens": 5,
    "llm_calls": 2,
    "llm_calls_without_usage": 0,
}


async def test_parallel_tool_calls_one_event_with_the_sum(tmp_path: Path) -> None:
    """Two model calls around two parallel tool calls make one event holding their sum."""
    log_path = tmp_path / "events.jsonl"
    agent = track_usage(tool_agent(), EventLog(log_path), session_id="s1", metadata={"app": "t"})
    result = await agent.ainvoke({"messages": [HumanMessage("add things")]})
    assert result["messages"][-1].content == "3 and 7"
    [event] = events(log_path)
    assert tokens(event) == TOOL_AGENT_TOTALS
    assert event["cache_creation_1h_input_tokens"] == 10
    assert event["session_id"] == "s1"
    assert event["status"] == "ok"
    assert event["model"] == "scripted-model"
    assert event["metadata"] == {"app": "t"}
    assert event["schema"] == 1 and event["type"] == "llm_usage"
    assert event["models"]["scripted-model"]["llm_calls"] == 2
    assert event["models"]["scripted-model"]["input_tokens"] == 300


async def test_checkpointed_thread_counts_only_the_new_turn(tmp_path: Path) -> None:
    """A second turn on a checkpointed thread logs that turn only, not the history."""
    log_path = tmp_path / "events.jsonl"
    model = ScriptedChatModel(
        script=[
            AIMessage(content="one", usage_metadata=um(100, 10)),
            AIMessage(content="two", usage_metadata=um(250, 20, cache_read=90)),
        ]
    )
    agent = track_usage(
        create_agent(model, tools=[], checkpointer=InMemorySaver()), EventLog(log_path)
    )
    config = {"configurable": {"thread_id": "thread-7"}}
    await agent.ainvoke({"messages": [HumanMessage("hi")]}, config)
    result = await agent.ainvoke({"messages": [HumanMessage("again")]}, config)

    first, second = events(log_path)
    assert (first["input_tokens"], first["output_tokens"]) == (100, 10)
    assert (second["input_tokens"], second["output_tokens"], second["cache_read_input_tokens"]) == (
        250,
        20,
        90,
    )
    assert second["session_id"] == "thread-7"  # thread_id is the session fallback
    # What hand-summing the returned messages would have said: turn 1 again.
    naive = sum(
        m.usage_metadata["input_tokens"]
        for m in result["messages"]
        if isinstance(m, AIMessage) and m.usage_metadata
    )
    assert naive == 350 != second["input_tokens"]


async def test_history_passed_in_is_not_counted(tmp_path: Path) -> None:
    """AIMessages with usage that the caller passes in were billed before: not counted."""
    log_path = tmp_path / "events.jsonl"
    model = ScriptedChatModel(script=[AIMessage(content="ok", usage_metadata=um(40, 4))])
    agent = track_usage(create_agent(model, tools=[]), EventLog(log_path))
    history: list[AnyMessage] = [
        HumanMessage("earlier"),
        AIMessage(content="earlier answer", usage_metadata=um(9999, 999)),
        HumanMessage("now"),
    ]
    await agent.ainvoke({"messages": history})
    [event] = events(log_path)
    assert (event["input_tokens"], event["output_tokens"], event["llm_calls"]) == (40, 4, 1)


async def test_model_in_tool_and_subgraph_counted_once_in_parent(tmp_path: Path) -> None:
    """A model called inside a tool and one inside a subgraph land once in the parent's event."""
    log_path = tmp_path / "events.jsonl"
    tool_model = ScriptedChatModel(
        model_name="tool-model", script=[AIMessage(content="summary", usage_metadata=um(70, 7))]
    )
    sub_model = ScriptedChatModel(
        model_name="sub-model",
        script=[AIMessage(content="sub", usage_metadata=um(30, 3, reasoning=2))],
    )

    @tool
    def summarise(text: str) -> str:
        """Summarise text with a model."""
        return str(tool_model.invoke(text).content)

    agent_model = ScriptedChatModel(
        model_name="agent-model",
        script=[
            AIMessage(
                content="",
                tool_calls=[{"name": "summarise", "args": {"text": "x"}, "id": "t1"}],
                usage_metadata=um(100, 10),
            ),
            AIMessage(content="done", usage_metadata=um(150, 15)),
        ],
    )
    agent = create_agent(agent_model, tools=[summarise])

    sub = StateGraph(State)
    sub.add_node("sub_model", lambda s: {"messages": [sub_model.invoke(s["messages"])]})
    sub.add_edge(START, "sub_model")
    sub.add_edge("sub_model", END)

    parent = StateGraph(State)
    parent.add_node("agent", agent)
    parent.add_node("sub", sub.compile())
    parent.add_edge(START, "agent")
    parent.add_edge("agent", "sub")
    parent.add_edge("sub", END)

    tracked = track_usage(parent.compile(), EventLog(log_path))
    await tracked.ainvoke({"messages": [HumanMessage("go")]})
    [event] = events(log_path)
    assert (
        event["input_tokens"],
        event["output_tokens"],
        event["reasoning_tokens"],
        event["llm_calls"],
    ) == (
        350,
        35,
        2,
        4,
    )
    assert event["model"] == "mixed"
    assert {name: m["llm_calls"] for name, m in event["models"].items()} == {
        "agent-model": 2,
        "tool-model": 1,
        "sub-model": 1,
    }


def echo_session_model() -> ScriptedChatModel:
    """Usage derived from the prompt: call i reports 1000+i input and i output tokens."""

    def reply(messages: list[BaseMessage]) -> AIMessage:
        i = int(str(messages[-1].content))
        return AIMessage(content=f"echo {i}", usage_metadata=um(1000 + i, i + 1))

    return ScriptedChatModel(script=reply)


async def test_forty_concurrent_invokes_never_mix(tmp_path: Path) -> None:
    """Forty concurrent ainvokes with their own sessions each log exactly their own usage."""
    log_path = tmp_path / "events.jsonl"
    agent = track_usage(create_agent(echo_session_model(), tools=[]), EventLog(log_path))
    await asyncio.gather(
        *(
            agent.ainvoke(
                {"messages": [HumanMessage(str(i))]}, {"metadata": {"session_id": f"s{i}"}}
            )
            for i in range(40)
        )
    )
    got = {
        e["session_id"]: (e["input_tokens"], e["output_tokens"], e["llm_calls"])
        for e in events(log_path)
    }
    assert got == {f"s{i}": (1000 + i, i + 1, 1) for i in range(40)}


async def test_one_handler_many_concurrent_roots(tmp_path: Path) -> None:
    """One UsageCallbackHandler shared by concurrent invokes writes one unmixed event per root."""
    log_path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(log_path))
    graph = create_agent(echo_session_model(), tools=[])
    await asyncio.gather(
        *(
            graph.ainvoke(
                {"messages": [HumanMessage(str(i))]},
                {"callbacks": [handler], "metadata": {"session_id": f"s{i}"}},
            )
            for i in range(20)
        )
    )
    got = {e["session_id"]: (e["input_tokens"], e["output_tokens"]) for e in events(log_path)}
    assert got == {f"s{i}": (1000 + i, i + 1) for i in range(20)}


@pytest.mark.parametrize("method", ["invoke", "ainvoke"])
async def test_handler_matches_wrapper(tmp_path: Path, method: str) -> None:
    """The callback handler alone gives the wrapper's numbers for the same agent."""
    log_path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(log_path), session_id="h1")
    run_id = uuid.uuid4()
    config: Any = {"callbacks": [handler], "run_id": run_id}
    inputs = {"messages": [HumanMessage("add")]}
    await call(tool_agent(), method, inputs, config)
    [event] = events(log_path)
    assert tokens(event) == TOOL_AGENT_TOTALS
    assert event["session_id"] == "h1"
    assert event["invoke_id"] == str(run_id)


def test_handler_on_a_bare_model_and_thread_fallback(tmp_path: Path) -> None:
    """A chat model called on its own is its own root; thread_id is the session fallback."""
    log_path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(log_path))
    model = ScriptedChatModel(script=[AIMessage(content="a", usage_metadata=um(11, 2))])
    model.invoke("x", {"callbacks": [handler], "metadata": {"thread_id": "t9"}})
    [event] = events(log_path)
    assert (event["input_tokens"], event["llm_calls"], event["session_id"]) == (11, 1, "t9")


STREAM_CASES = [
    pytest.param("astream", "updates", id="astream-updates"),
    pytest.param("astream", "messages", id="astream-messages"),
    pytest.param("astream", "values", id="astream-values"),
    pytest.param("astream", ["messages", "updates"], id="astream-multi"),
    pytest.param("stream", "updates", id="stream-updates"),
    pytest.param("stream", "messages", id="stream-messages"),
    pytest.param("astream_events", None, id="astream-events"),
    pytest.param("invoke", None, id="invoke"),
]


@pytest.mark.parametrize(("method", "mode"), STREAM_CASES)
async def test_streaming_counts_as_invoking(tmp_path: Path, method: str, mode: Any) -> None:
    """Every stream mode, sync or async, logs the same usage as ainvoke."""
    log_path = tmp_path / "events.jsonl"
    agent = track_usage(tool_agent(), EventLog(log_path))
    inputs = {"messages": [HumanMessage("add")]}
    chunks: list[Any] = []
    if method == "astream":
        chunks = [c async for c in agent.astream(inputs, stream_mode=mode)]
    elif method == "astream_events":
        chunks = [c async for c in agent.astream_events(inputs, version="v2")]
    elif method == "stream":
        chunks = list(agent.stream(inputs, stream_mode=mode))
    else:
        chunks = [agent.invoke(inputs)]
    assert chunks
    [event] = events(log_path)
    assert tokens(event) == TOOL_AGENT_TOTALS
    assert event["status"] == "ok"


def failing_graph(boom: BaseException, model: ScriptedChatModel) -> Any:
    def explode(state: State) -> dict[str, Any]:
        raise boom

    g = StateGraph(State)
    g.add_node("model", lambda s: {"messages": [model.invoke(s["messages"])]})
    g.add_node("explode", explode)
    g.add_edge(START, "model")
    g.add_edge("model", "explode")
    g.add_edge("explode", END)
    return g.compile()


@pytest.mark.parametrize("method", ["invoke", "ainvoke"])
async def test_error_after_a_call_logs_the_call_and_reraises_the_same_exception(
    tmp_path: Path, method: str
) -> None:
    """Raising after one call: the same exception object, status error, the usage kept."""
    log_path = tmp_path / "events.jsonl"
    boom = ValueError("boom")
    model = ScriptedChatModel(script=[AIMessage(content="a", usage_metadata=um(120, 12))])
    agent = track_usage(failing_graph(boom, model), EventLog(log_path))
    with pytest.raises(ValueError) as caught:
        await call(agent, method, {"messages": [HumanMessage("x")]})
    assert caught.value is boom
    [event] = events(log_path)
    assert (event["status"], event["input_tokens"], event["output_tokens"], event["llm_calls"]) == (
        "error",
        120,
        12,
        1,
    )


def two_step_graph() -> Any:
    first = ScriptedChatModel(script=[AIMessage(content="first", usage_metadata=um(10, 1))])
    second = ScriptedChatModel(script=[AIMessage(content="second", usage_metadata=um(20, 2))])
    g = StateGraph(State)
    g.add_node("one", lambda s: {"messages": [first.invoke(s["messages"])]})
    g.add_node("two", lambda s: {"messages": [second.invoke(s["messages"])]})
    g.add_edge(START, "one")
    g.add_edge("one", "two")
    g.add_edge("two", END)
    return g.compile()


async def test_abandoned_async_stream_is_cancelled_with_spent_usage(tmp_path: Path) -> None:
    """Closing an astream after the first step logs status cancelled with that step's usage."""
    log_path = tmp_path / "events.jsonl"
    agent = track_usage(two_step_graph(), EventLog(log_path))
    stream = agent.astream({"messages": [HumanMessage("x")]}, stream_mode="updates")
    first = await stream.__anext__()
    assert "one" in first
    await stream.aclose()
    [event] = events(log_path)
    assert (event["status"], event["input_tokens"], event["llm_calls"]) == ("cancelled", 10, 1)


def test_abandoned_sync_stream_is_cancelled_with_spent_usage(tmp_path: Path) -> None:
    """Breaking out of a sync stream logs status cancelled with what was spent."""
    log_path = tmp_path / "events.jsonl"
    agent = track_usage(two_step_graph(), EventLog(log_path))
    stream = agent.stream({"messages": [HumanMessage("x")]}, stream_mode="updates")
    for _ in stream:
        break
    stream.close()
    [event] = events(log_path)
    assert (event["status"], event["input_tokens"]) == ("cancelled", 10)


async def test_cancelled_task_logs_cancelled(tmp_path: Path) -> None:
    """A task cancelled mid-invoke logs status cancelled with the calls before it."""
    log_path = tmp_path / "events.jsonl"
    model = ScriptedChatModel(script=[AIMessage(content="a", usage_metadata=um(60, 6))])
    started = asyncio.Event()

    async def wait_forever(state: State) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    g = StateGraph(State)
    g.add_node("model", lambda s: {"messages": [model.invoke(s["messages"])]})
    g.add_node("wait", wait_forever)
    g.add_edge(START, "model")
    g.add_edge("model", "wait")
    g.add_edge("wait", END)
    agent = track_usage(g.compile(), EventLog(log_path))
    task = asyncio.create_task(agent.ainvoke({"messages": [HumanMessage("x")]}))
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)
    [event] = events(log_path)
    assert (event["status"], event["input_tokens"]) == ("cancelled", 60)


async def test_no_usage_writes_no_event_and_mixed_counts_calls_without(tmp_path: Path) -> None:
    """A call without usage alone writes nothing; beside one with usage it is counted."""
    log_path = tmp_path / "events.jsonl"
    bare = GenericFakeChatModel(
        messages=iter([AIMessage(content="no usage"), AIMessage(content="again")])
    )
    await track_usage(bare, EventLog(log_path)).ainvoke("hi")
    assert events(log_path) == []

    with_usage = ScriptedChatModel(script=[AIMessage(content="u", usage_metadata=um(5, 1))])
    g = StateGraph(State)
    g.add_node("bare", lambda s: {"messages": [bare.invoke(s["messages"])]})
    g.add_node("priced", lambda s: {"messages": [with_usage.invoke(s["messages"])]})
    g.add_edge(START, "bare")
    g.add_edge("bare", "priced")
    g.add_edge("priced", END)
    await track_usage(g.compile(), EventLog(log_path)).ainvoke({"messages": [HumanMessage("x")]})
    [event] = events(log_path)
    assert (event["llm_calls"], event["llm_calls_without_usage"], event["input_tokens"]) == (
        1,
        1,
        5,
    )


SESSION_CASES = [
    pytest.param(
        {"metadata": {"session_id": "meta"}, "configurable": {"thread_id": "t"}},
        "fixed",
        "meta",
        id="metadata-wins",
    ),
    pytest.param({"configurable": {"thread_id": "t"}}, "fixed", "fixed", id="wrapper-str"),
    pytest.param(
        {"configurable": {"thread_id": "t"}, "tags": ["u42"]},
        lambda c: c["tags"][0],
        "u42",
        id="wrapper-callable",
    ),
    pytest.param(
        {"configurable": {"thread_id": "t"}}, lambda c: None, "t", id="callable-none-then-thread"
    ),
    pytest.param({"configurable": {"thread_id": "t"}}, None, "t", id="thread-id"),
    pytest.param({}, None, None, id="none"),
]


@pytest.mark.parametrize(("config", "session", "expected"), SESSION_CASES)
def test_session_id_resolution(
    tmp_path: Path, config: dict[str, Any], session: Any, expected: str | None
) -> None:
    """session_id: config metadata, else the wrapper's, else thread_id, else null."""
    log_path = tmp_path / "events.jsonl"
    model = ScriptedChatModel(script=[AIMessage(content="a", usage_metadata=um(1, 1))])
    checkpointer = InMemorySaver() if "configurable" in config else None
    agent = track_usage(
        create_agent(model, tools=[], checkpointer=checkpointer),
        EventLog(log_path),
        session_id=session,
    )
    agent.invoke({"messages": [HumanMessage("x")]}, config)
    [event] = events(log_path)
    assert event["session_id"] == expected


def test_wrapper_is_transparent(tmp_path: Path) -> None:
    """Same results as the bare agent, other attributes pass through, model label applies."""
    bare = tool_agent()
    tracked = track_usage(
        tool_agent(), EventLog(tmp_path / "e.jsonl"), model="anthropic:claude-sonnet-4-5"
    )
    inputs = {"messages": [HumanMessage("add", id="h1")]}
    expected = bare.invoke(inputs)
    got = tracked.invoke(inputs)
    assert [m.content for m in got["messages"]] == [m.content for m in expected["messages"]]
    assert tracked.get_graph().nodes.keys() == bare.get_graph().nodes.keys()
    assert tracked.wrapped.name == bare.name
    [event] = events(tmp_path / "e.jsonl")
    assert event["model"] == "anthropic:claude-sonnet-4-5"
    assert set(event["models"]) == {"scripted-model"}


def test_batch_logs_one_event_per_input(tmp_path: Path) -> None:
    """batch() is tracked input by input."""
    log_path = tmp_path / "events.jsonl"
    agent = track_usage(create_agent(echo_session_model(), tools=[]), EventLog(log_path))
    agent.batch([{"messages": [HumanMessage("1")]}, {"messages": [HumanMessage("2")]}])
    assert sorted(e["input_tokens"] for e in events(log_path)) == [1001, 1002]


# How long a call in `gated_graph` gives a batch to let in more calls than it may.
OVERSHOOT_S = 0.05


def gated_graph(counter: dict[str, int], together: int = 1) -> Any:
    """Calls the echo model, then fails on input "13"; counts how many run at once.

    Each call waits until `together` calls are in (a batch that never runs that many at
    once fails with BrokenBarrierError), so that many surely overlap, whatever the load.
    """
    model = echo_session_model()
    in_flight = threading.Condition()
    arrived = threading.Barrier(together, timeout=TIMEOUT_S)

    def call(state: State) -> dict[str, Any]:
        # A sync node: sync invokes run it in batch's threads, async ones in executors.
        with in_flight:
            counter["now"] += 1
            counter["peak"] = max(counter["peak"], counter["now"])
            in_flight.notify_all()
        arrived.wait()
        with in_flight:
            # A batch that let in one call too many would do so now: wait briefly for
            # that failure. Only catching it depends on how long; passing does not.
            in_flight.wait_for(lambda: counter["now"] > together, timeout=OVERSHOOT_S)
            counter["now"] -= 1
        reply = model.invoke(state["messages"])
        if state["messages"][-1].content == "13":
            raise ValueError("unlucky")
        return {"messages": [reply]}

    g = StateGraph(State)
    g.add_node("model", call)
    g.add_edge(START, "model")
    g.add_edge("model", END)
    return g.compile()


@pytest.mark.parametrize("method", ["batch", "abatch"])
async def test_batch_honours_max_concurrency_and_return_exceptions(
    tmp_path: Path, method: str
) -> None:
    """As Runnable.batch: at most max_concurrency at once, exceptions returned in place."""
    log_path = tmp_path / "events.jsonl"
    counter = {"now": 0, "peak": 0}
    agent = track_usage(gated_graph(counter, together=2), EventLog(log_path))
    inputs = [{"messages": [HumanMessage(str(i))]} for i in range(10, 16)]
    config: RunnableConfig = {"max_concurrency": 2}
    if method == "abatch":
        results = await agent.abatch(inputs, config, return_exceptions=True)
    else:
        results = await asyncio.to_thread(agent.batch, inputs, config, return_exceptions=True)
    assert counter["peak"] == 2
    assert isinstance(results[3], ValueError)
    assert [r["messages"][-1].content for i, r in enumerate(results) if i != 3] == [
        "echo 10",
        "echo 11",
        "echo 12",
        "echo 14",
        "echo 15",
    ]
    by_input = {e["input_tokens"] - 1000: e["status"] for e in events(log_path)}
    assert by_input == {10: "ok", 11: "ok", 12: "ok", 13: "error", 14: "ok", 15: "ok"}


async def test_abatch_without_return_exceptions_raises(tmp_path: Path) -> None:
    """Without return_exceptions the first failure propagates, as from Runnable.abatch."""
    agent = track_usage(gated_graph({"now": 0, "peak": 0}), EventLog(tmp_path / "e.jsonl"))
    with pytest.raises(ValueError, match="unlucky"):
        await agent.abatch([{"messages": [HumanMessage("13")]}])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"agent": object()}, "Runnable"),
        ({"log": "events.jsonl"}, "append"),
        ({"session_id": 3}, "session_id"),
        ({"model": 3}, "model"),
        ({"metadata": ["x"]}, "metadata"),
    ],
    ids=["agent", "log", "session", "model", "metadata"],
)
def test_bad_arguments_name_the_value(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    """Bad configuration raises TypeError naming what is wrong, at construction."""
    args: dict[str, Any] = {"agent": tool_agent(), "log": EventLog(tmp_path / "e.jsonl"), **kwargs}
    agent, log = args.pop("agent"), args.pop("log")
    with pytest.raises(TypeError, match=match):
        track_usage(agent, log, **args)


class BrokenSink:
    def append(self, event: Any) -> None:
        raise OSError("disk on fire")


def test_a_broken_log_never_breaks_the_agent(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that raises is logged once and counted; the agent's result is unchanged."""
    agent = track_usage(tool_agent(), BrokenSink())
    for _ in range(3):
        result = agent.invoke({"messages": [HumanMessage("add")]})
        assert result["messages"][-1].content == "3 and 7"
    assert agent.failures == {"writing the llm_usage event": 3}
    assert len([r for r in caplog.records if "writing the llm_usage event" in r.message]) == 1


@pytest.mark.parametrize("method", ["invoke", "ainvoke"])
async def test_strict_log_never_replaces_the_agents_exception(method: str, tmp_path: Path) -> None:
    """A strict log that cannot write raises on success, never in place of the agent's error."""
    model = ScriptedChatModel(script=[AIMessage(content="a", usage_metadata=um(120, 12))] * 2)
    boom = ValueError("boom")
    log = EventLog(tmp_path / "events.jsonl", strict=True)
    log.close()  # every append now fails: strict raises, the wrapper counts
    failing = track_usage(failing_graph(boom, model), log)
    with pytest.raises(ValueError) as caught:
        await call(failing, method, {"messages": [HumanMessage("x")]})
    assert caught.value is boom
    assert failing.failures == {"writing the llm_usage event": 1}

    fine = track_usage(create_agent(echo_session_model(), tools=[]), log)
    with pytest.raises(ValueError, match="is closed"):
        await call(fine, method, {"messages": [HumanMessage("1")]})
