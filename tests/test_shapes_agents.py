"""LangChain v1 agent and LangGraph shapes on `ScriptedChatModel`: exact events per invoke.

Summarisation, retry and fallback middleware; a human-in-the-loop interrupt and
its resume; a `Send` fan-out whose failed branch is resumed from the
checkpoint; subgraphs streamed with `subgraphs=True`. Every number expected
below is the sum of the usage the script served for the calls that ran in that
invoke, written out by hand.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import (
    HumanInTheLoopMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
)
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send
from providers.expect import add, drive, events, expected, numbers, only_event
from typing_extensions import TypedDict

from agent_usage import EventLog, track_usage
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um

ADD = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call-add"}


def tool_call(usage: Any) -> AIMessage:
    """A reply that calls `add(2, 3)`."""
    return AIMessage(content="", tool_calls=[ADD], usage_metadata=usage)


def answer(text: str, usage: Any) -> AIMessage:
    """A final text reply."""
    return AIMessage(content=text, usage_metadata=usage)


RUNS = ["ainvoke", "invoke", "astream-messages", "stream-updates"]


# -- Summarisation middleware ---------------------------------------------------


@pytest.mark.parametrize("how", RUNS)
async def test_summarisation_call_counts_history_does_not(tmp_path: Path, how: str) -> None:
    """The summariser's own call counts in the invoke; the history it summarises does not."""
    summariser = ScriptedChatModel(
        model_name="summariser",
        script=[answer("the user chatted about adding", um(3000, 150, cache_read=2048))],
    )
    model = ScriptedChatModel(
        model_name="agent-model",
        script=[tool_call(um(400, 30)), answer("5", um(500, 10, reasoning=4))],
    )
    agent = create_agent(
        model,
        tools=[add],
        middleware=[
            SummarizationMiddleware(summariser, trigger=("messages", 6), keep=("messages", 1))
        ],
    )
    # Eight earlier turns, each AI message carrying the usage it once billed.
    history: list[BaseMessage] = []
    for i in range(4):
        history += [HumanMessage(f"q{i}"), answer(f"a{i}", um(9000, 900))]
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await drive(track_usage(agent, log), how, {"messages": [*history, HumanMessage("2+3?")]})

    assert summariser.calls == 1
    assert model.calls == 2
    event = only_event(path)
    assert numbers(event) == expected(3900, 190, read=2048, reasoning=4)
    assert event["llm_calls"] == 3
    assert event["model"] == "mixed"
    assert numbers(event["models"]["summariser"]) == expected(3000, 150, read=2048)
    assert numbers(event["models"]["agent-model"]) == expected(900, 40, reasoning=4)


# -- Retry and fallback middleware ------------------------------------------------


def flaky(replies: list[AIMessage], fail_first: int) -> Callable[[list[BaseMessage]], AIMessage]:
    """A script that raises on its first `fail_first` calls, then answers in order."""
    state = {"calls": 0}

    def reply(messages: list[BaseMessage]) -> AIMessage:
        state["calls"] += 1
        if state["calls"] <= fail_first:
            raise ConnectionError(f"flaky call {state['calls']}")
        return replies[state["calls"] - fail_first - 1]

    return reply


@pytest.mark.parametrize("how", RUNS)
async def test_retry_middleware_counts_the_calls_that_answered(tmp_path: Path, how: str) -> None:
    """ModelRetryMiddleware: a failed attempt bills nothing; the answers after it count."""
    model = ScriptedChatModel(
        model_name="flaky-model",
        script=flaky([tool_call(um(300, 20, cache_read=256)), answer("5", um(350, 8))], 1),
    )
    retry = ModelRetryMiddleware(max_retries=2, initial_delay=0.0, jitter=False)
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent = track_usage(create_agent(model, tools=[add], middleware=[retry]), log)
        await drive(agent, how, {"messages": [HumanMessage("2+3?")]})

    assert model.calls == 3
    event = only_event(path)
    assert event["status"] == "ok"
    assert numbers(event) == expected(650, 28, read=256)
    assert (event["llm_calls"], event["llm_calls_without_usage"]) == (2, 0)


@pytest.mark.parametrize("how", RUNS)
async def test_fallback_middleware_bills_the_fallback_model(tmp_path: Path, how: str) -> None:
    """ModelFallbackMiddleware: the primary fails every time, the fallback's calls are the bill."""
    primary = ScriptedChatModel(model_name="primary", script=["never"], fail_after=1)
    fallback = ScriptedChatModel(
        model_name="fallback",
        script=[tool_call(um(210, 21, cache_creation=128)), answer("5", um(230, 3))],
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent = create_agent(primary, tools=[add], middleware=[ModelFallbackMiddleware(fallback)])
        await drive(track_usage(agent, log), how, {"messages": [HumanMessage("2+3?")]})

    assert (primary.calls, fallback.calls) == (2, 2)
    event = only_event(path)
    assert event["status"] == "ok"
    assert numbers(event) == expected(440, 24, creation=128)
    assert event["model"] == "fallback"
    assert list(event["models"]) == ["fallback"]
    assert event["llm_calls"] == 2


# -- Human in the loop: interrupt, then resume ---------------------------------------


# LangGraph's interrupt() finds its config through contextvars, which asyncio tasks
# only inherit from Python 3.11: on 3.10 an async HITL agent raises even untracked.
ASYNC_INTERRUPT = pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="LangGraph interrupt() in async nodes needs Python 3.11+ (fails untracked on 3.10)",
)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("ainvoke", marks=ASYNC_INTERRUPT),
        "invoke",
        pytest.param("astream-updates", marks=ASYNC_INTERRUPT),
    ],
)
async def test_interrupt_and_resume_each_log_their_own_calls(tmp_path: Path, how: str) -> None:
    """The interrupted invoke logs the call before the interrupt; the resume logs only its own."""
    model = ScriptedChatModel(
        model_name="hitl-model",
        script=[
            tool_call(um(800, 40, cache_creation=512)),
            answer("5", um(900, 12, cache_read=512)),
        ],
    )
    agent = create_agent(
        model,
        tools=[add],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"add": True})],
        checkpointer=InMemorySaver(),
    )
    path = tmp_path / "events.jsonl"
    config: RunnableConfig = {"configurable": {"thread_id": "review-1"}}
    with EventLog(path) as log:
        tracked = track_usage(agent, log)
        await drive(tracked, how, {"messages": [HumanMessage("2+3?")]}, config)
        state = await agent.aget_state(config)
        assert [i.value["action_requests"][0]["name"] for i in state.interrupts] == ["add"]
        assert len(events(path)) == 1
        resume: Command[Any] = Command(resume={"decisions": [{"type": "approve"}]})
        await drive(tracked, how, resume, config)

    assert model.calls == 2
    first, second = events(path)
    assert numbers(first) == expected(800, 40, creation=512)
    assert numbers(second) == expected(900, 12, read=512)
    assert [e["session_id"] for e in (first, second)] == ["review-1", "review-1"]
    assert [e["status"] for e in (first, second)] == ["ok", "ok"]
    assert (first["llm_calls"], second["llm_calls"]) == (1, 1)
    assert first["invoke_id"] != second["invoke_id"]


# -- Send fan-out with a failed branch, resumed from the checkpoint -------------------


class FanOut(TypedDict):
    """Topics to research and the notes the branches wrote."""

    topics: list[str]
    notes: Annotated[list[str], operator.add]


class Branch(TypedDict):
    """What `Send` hands one branch."""

    topic: str


# Usage derived from the topic, so concurrent branches cannot swap numbers.
SERVED = {"alpha": um(100, 10), "beta": um(200, 20, cache_read=64), "gamma": um(400, 40)}


def fan_out_graph(model: ScriptedChatModel, broken: dict[str, int]) -> Any:
    """START sends one `work` branch per topic; a topic in `broken` fails that many times."""

    def work(branch: Branch) -> dict[str, Any]:
        reply = model.invoke(branch["topic"])
        if broken.get(branch["topic"]):
            broken[branch["topic"]] -= 1
            raise RuntimeError(f"{branch['topic']}'s parser broke")
        return {"notes": [f"{branch['topic']}: {reply.text}"]}

    def fan_out(state: FanOut) -> list[Send]:
        return [Send("work", {"topic": t}) for t in state["topics"]]

    builder = StateGraph(FanOut)
    # A Send payload is not the graph state; the typed overloads cannot say so.
    builder.add_node("work", cast(Any, work))
    builder.add_conditional_edges(START, fan_out, ["work"])
    builder.add_edge("work", END)
    return builder.compile(checkpointer=InMemorySaver())


def worker() -> ScriptedChatModel:
    """The branches' model: its usage follows from the topic it is asked about."""
    return ScriptedChatModel(
        model_name="worker",
        script=lambda messages: answer("note", SERVED[str(messages[-1].content)]),
    )


@pytest.mark.parametrize("method", ["ainvoke", "invoke", "astream-updates"])
async def test_send_fanout_parallel_branches_sum(tmp_path: Path, method: str) -> None:
    """Three `Send` branches running at once: one event, the sum of the three calls."""
    model = worker()
    config: Any = {"configurable": {"thread_id": "fan-ok"}}
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        tracked = track_usage(fan_out_graph(model, {}), log)
        await drive(tracked, method, {"topics": ["alpha", "beta", "gamma"], "notes": []}, config)

    assert model.calls == 3
    event = only_event(path)
    assert numbers(event) == expected(700, 70, read=64)
    assert event["llm_calls"] == 3


@pytest.mark.parametrize("method", ["ainvoke", "invoke"])
async def test_send_fanout_failed_branch_resumed(tmp_path: Path, method: str) -> None:
    """Branches that finished are logged with the failed invoke and not re-run on resume."""
    model = worker()
    # gamma fails once, after its model call was billed.
    graph = fan_out_graph(model, {"gamma": 1})
    # One branch at a time, in Send order: alpha and beta have finished (and
    # their writes are checkpointed) when gamma fails.
    config: Any = {"configurable": {"thread_id": "fan-1"}, "max_concurrency": 1}
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        tracked = track_usage(graph, log)
        with pytest.raises(RuntimeError, match="gamma's parser broke"):
            await drive(
                tracked, method, {"topics": ["alpha", "beta", "gamma"], "notes": []}, config
            )
        result = await drive(tracked, method, None, config)

    assert sorted(result["notes"]) == ["alpha: note", "beta: note", "gamma: note"]
    assert model.calls == 4  # alpha, beta, gamma, and gamma again on resume
    failed, resumed = events(path)
    assert failed["status"] == "error"
    assert numbers(failed) == expected(700, 70, read=64)
    assert failed["llm_calls"] == 3
    assert resumed["status"] == "ok"
    assert numbers(resumed) == expected(400, 40)
    assert resumed["llm_calls"] == 1


# -- Subgraphs streamed with subgraphs=True --------------------------------------------


class Messages(TypedDict):
    """A plain message list state."""

    messages: Annotated[list[AnyMessage], operator.add]


@pytest.mark.parametrize("modes", [["updates"], ["messages", "updates"]], ids=["upd", "msg+upd"])
@pytest.mark.parametrize("sync", [False, True], ids=["astream", "stream"])
async def test_subgraphs_streamed_count_every_level(
    tmp_path: Path, modes: list[str], sync: bool
) -> None:
    """A parent node, an agent subgraph and a nested subgraph, streamed with subgraphs=True."""
    planner = ScriptedChatModel(model_name="planner", script=[answer("plan", um(50, 5))])
    agent_model = ScriptedChatModel(
        model_name="agent-model",
        script=[tool_call(um(120, 12, reasoning=6)), answer("5", um(140, 4, cache_read=100))],
    )
    inner_model = ScriptedChatModel(
        model_name="inner", script=[answer("checked", um(70, 7, cache_creation=64))]
    )
    inner = (
        StateGraph(Messages)
        .add_node("check", lambda s: {"messages": [inner_model.invoke(s["messages"])]})
        .add_edge(START, "check")
        .compile()
    )
    parent = (
        StateGraph(Messages)
        .add_node("plan", lambda s: {"messages": [planner.invoke(s["messages"])]})
        .add_node("agent", create_agent(agent_model, tools=[add]))
        .add_node("inner", inner)
        .add_edge(START, "plan")
        .add_edge("plan", "agent")
        .add_edge("agent", "inner")
        .compile()
    )
    path = tmp_path / "events.jsonl"
    namespaces: set[tuple[str, ...]] = set()
    inputs = {"messages": [HumanMessage("2+3?")]}
    with EventLog(path) as log:
        tracked = track_usage(parent, log)
        if sync:
            for ns, *_ in tracked.stream(inputs, stream_mode=modes, subgraphs=True):
                namespaces.add(ns)
        else:
            async for ns, *_ in tracked.astream(inputs, stream_mode=modes, subgraphs=True):
                namespaces.add(ns)

    # The stream really came from inside the subgraphs.
    assert any(ns and ns[0].startswith("agent:") for ns in namespaces)
    assert any(ns and ns[0].startswith("inner:") for ns in namespaces)
    event = only_event(path)
    assert numbers(event) == expected(380, 28, read=100, creation=64, reasoning=6)
    assert event["llm_calls"] == 4
    assert {name: row["llm_calls"] for name, row in event["models"].items()} == {
        "planner": 1,
        "agent-model": 2,
        "inner": 1,
    }
