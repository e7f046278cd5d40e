"""The tracked scope: every Runnable entry point tracked, `tracking()` blocks, contexts.

On `ScriptedChatModel`, whose script states each call's usage, so every
expected number is the sum of what the script served.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from graphs import State, graph_of
from langchain_core.callbacks import CallbackManager
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tracers.context import _configure_hooks
from langgraph.graph import END, START, StateGraph
from logs import usage_events as events

from agent_usage import EventLog, track_usage, tracking
from agent_usage._budget import BudgetExceeded, CallInfo
from agent_usage._scope import active_scopes, record_external_call
from agent_usage._usage import Usage
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um


def totals(path: Path) -> list[tuple[int, int, int]]:
    """(input, output, llm_calls) per event, sorted."""
    return sorted((e["input_tokens"], e["output_tokens"], e["llm_calls"]) for e in events(path))


def model(n: int = 1, name: str = "scripted-model") -> ScriptedChatModel:
    """Call i reports 10*i input and i output tokens, cycling through n replies."""
    return ScriptedChatModel(
        model_name=name,
        script=[
            AIMessage(content=f"reply {i}", usage_metadata=um(10 * i, i)) for i in range(1, n + 1)
        ],
    )


INPUT = {"messages": [HumanMessage("go")]}


# -- every Runnable method and composition stays tracked ------------------------


async def _drain(agen: Any) -> list[Any]:
    return [x async for x in agen]


RUNNABLE_WAYS: dict[str, Any] = {
    "with_config": lambda t: t.with_config(tags=["x"]).invoke("hi"),
    "bind": lambda t: t.bind(stop=["zzz"]).invoke("hi"),
    "with_retry": lambda t: t.with_retry(stop_after_attempt=2).invoke("hi"),
    "with_fallbacks": lambda t: t.with_fallbacks([model()]).invoke("hi"),
    "with_types": lambda t: t.with_types(input_type=str).invoke("hi"),
    "with_listeners": lambda t: t.with_listeners(on_end=lambda run: None).invoke("hi"),
    "pipe": lambda t: (t | StrOutputParser()).invoke("hi"),
    "pipe-stream": lambda t: list((t | StrOutputParser()).stream("hi")),
    "ror": lambda t: (RunnableLambda(lambda x: x) | t).invoke("hi"),
    "bind_tools": lambda t: t.bind_tools([]).invoke("hi"),
    "stream": lambda t: list(t.stream("hi")),
    "batch_as_completed": lambda t: list(t.batch_as_completed(["hi"])),
    "abatch_as_completed": lambda t: asyncio.run(_drain(t.abatch_as_completed(["hi"]))),
    "astream_events": lambda t: asyncio.run(_drain(t.astream_events("hi", version="v2"))),
    "astream_log": lambda t: asyncio.run(_drain(t.astream_log("hi"))),  # deprecated upstream
    "abatch": lambda t: asyncio.run(t.abatch(["hi"])),
    "batch": lambda t: t.batch(["hi"]),
    "ainvoke": lambda t: asyncio.run(t.ainvoke("hi")),
    "atransform": lambda t: asyncio.run(_drain(t.atransform(_one("hi")))),
}


async def _one(x: Any) -> Any:
    yield x


@pytest.mark.filterwarnings("ignore:astream_log is deprecated")
@pytest.mark.parametrize("way", list(RUNNABLE_WAYS))
def test_every_runnable_way_of_calling_is_tracked(tmp_path: Path, way: str) -> None:
    """Each Runnable method or composition on the tracked object writes the call's event."""
    path = tmp_path / "events.jsonl"
    tracked = track_usage(model(), EventLog(path), session_id="s")
    RUNNABLE_WAYS[way](tracked)
    assert totals(path) == [(10, 1, 1)]
    assert events(path)[0]["session_id"] == "s"


def test_with_config_metadata_sets_the_session(tmp_path: Path) -> None:
    """A session id bound with with_config is the event's, as one passed per call."""
    path = tmp_path / "events.jsonl"
    tracked = track_usage(model(), EventLog(path), session_id="default")
    tracked.with_config(metadata={"session_id": "bound"}).invoke("hi")
    tracked.invoke("hi")
    assert [e["session_id"] for e in events(path)] == ["bound", "default"]


def test_same_result_same_exception_and_passthrough(tmp_path: Path) -> None:
    """Results and the very exception object reach the caller; attributes pass through."""
    failing = ScriptedChatModel(script=["x"], fail_after=1, model_name="fails")
    tracked = track_usage(failing, EventLog(tmp_path / "e.jsonl"))
    with pytest.raises(RuntimeError) as caught:
        tracked.invoke("hi")
    assert "scripted failure" in str(caught.value)
    assert tracked.model_name == "fails"
    assert tracked.wrapped is failing
    assert tracked.calls == 1


@pytest.mark.filterwarnings("ignore:The v3 streaming protocol")
def test_v3_event_streams_say_they_are_untracked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """stream_events(version='v3') passes through untracked, with a warning, never silently."""
    tracked = track_usage(graph_of(lambda s: {"messages": []}), EventLog(tmp_path / "e.jsonl"))
    tracked.stream_events(INPUT, version="v3")
    assert any("not tracked" in r.message for r in caplog.records)


# -- nesting and contexts ----------------------------------------------------------


def test_nested_tracked_invokes_each_count_their_calls_once(tmp_path: Path) -> None:
    """An inner tracked runnable inside an outer one: two events, the outer includes the inner."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    inner_model = ScriptedChatModel(script=[AIMessage(content="i", usage_metadata=um(1000, 100))])
    inner = track_usage(inner_model, log, session_id="inner")
    outer_model = model()
    outer = track_usage(
        graph_of(
            lambda s: {"messages": [outer_model.invoke(s["messages"])]},
            lambda s: {"messages": [inner.invoke(s["messages"])]},
        ),
        log,
        session_id="outer",
    )
    outer.invoke(INPUT)
    got = {e["session_id"]: (e["input_tokens"], e["llm_calls"]) for e in events(path)}
    assert got == {"inner": (1000, 1), "outer": (1010, 2)}


async def test_async_nodes_without_config_and_threads_are_counted(tmp_path: Path) -> None:
    """Async nodes calling ainvoke without config, to_thread, and a raw thread given the config."""
    path = tmp_path / "events.jsonl"
    m = model(3)

    async def async_node(state: State) -> dict[str, Any]:
        return {"messages": [await m.ainvoke(state["messages"])]}

    async def to_thread_node(state: State) -> dict[str, Any]:
        return {"messages": [await asyncio.to_thread(m.invoke, state["messages"])]}

    def raw_thread_node(state: State, config: RunnableConfig) -> dict[str, Any]:
        # A plain thread does not copy the context: the config carries the scope.
        out: list[Any] = []
        worker = threading.Thread(target=lambda: out.append(m.invoke("x", config)))
        worker.start()
        worker.join(timeout=10)
        return {"messages": out}

    tracked = track_usage(graph_of(async_node, to_thread_node, raw_thread_node), EventLog(path))
    await tracked.ainvoke(INPUT)
    assert totals(path) == [(60, 6, 3)]


async def test_concurrent_tracked_invokes_never_mix(tmp_path: Path) -> None:
    """Thirty concurrent invokes, nested tasks included, each count only their own calls."""
    path = tmp_path / "events.jsonl"

    def reply(messages: list[BaseMessage]) -> AIMessage:
        i = int(str(messages[-1].content))
        return AIMessage(content="ok", usage_metadata=um(i, 1))

    m = ScriptedChatModel(script=reply)

    async def node(state: State) -> dict[str, Any]:
        replies = await asyncio.gather(*(m.ainvoke(state["messages"]) for _ in range(2)))
        return {"messages": list(replies)}

    tracked = track_usage(graph_of(node), EventLog(path))
    await asyncio.gather(
        *(
            tracked.ainvoke({"messages": [HumanMessage(str(i))]}, {"metadata": {"session_id": i}})
            for i in range(1, 31)
        )
    )
    got = {e["session_id"]: (e["input_tokens"], e["llm_calls"]) for e in events(path)}
    assert got == {str(i): (2 * i, 2) for i in range(1, 31)}


def test_consumer_calls_between_stream_chunks_are_not_counted(tmp_path: Path) -> None:
    """The scope is active while the agent computes, not while the consumer holds a chunk."""
    path = tmp_path / "events.jsonl"
    inside = model(1)
    outside = ScriptedChatModel(script=[AIMessage(content="o", usage_metadata=um(5000, 500))])
    tracked = track_usage(
        graph_of(
            lambda s: {"messages": [inside.invoke(s["messages"])]},
            lambda s: {"messages": [inside.invoke(s["messages"])]},
        ),
        EventLog(path),
    )
    for _ in tracked.stream(INPUT, stream_mode="updates"):
        outside.invoke("the consumer's own call")
    assert totals(path) == [(20, 2, 2)]


# -- tracking() blocks ---------------------------------------------------------------


def test_tracking_block_writes_one_event_per_root_invoke(tmp_path: Path) -> None:
    """Inside `with tracking(...)`: one event per root invoke; outside it nothing."""
    path = tmp_path / "events.jsonl"
    m = model(3)
    g = graph_of(lambda s: {"messages": [m.invoke(s["messages"])]})
    with tracking(EventLog(path), session_id="blk", metadata={"app": "a"}):
        g.invoke(INPUT)
        m.invoke("a bare model call is a root too")
    g.invoke(INPUT)  # after the block: untracked
    found = events(path)
    assert totals(path) == [(10, 1, 1), (20, 2, 1)]
    assert {e["session_id"] for e in found} == {"blk"}
    assert all(e["metadata"] == {"app": "a"} for e in found)


async def test_async_tracking_block_with_own_callbacks_and_tasks(tmp_path: Path) -> None:
    """`async with tracking(...)`: concurrent roots, async nodes and own callbacks all counted."""
    path = tmp_path / "events.jsonl"
    m = model(1)

    async def node(state: State) -> dict[str, Any]:
        first = await m.ainvoke(state["messages"])
        second = await m.ainvoke(state["messages"], {"callbacks": []})  # its own (none)
        return {"messages": [first, second]}

    g = graph_of(node)
    async with tracking(EventLog(path)):
        await asyncio.gather(g.ainvoke(INPUT), g.ainvoke(INPUT))
    assert totals(path) == [(20, 2, 2), (20, 2, 2)]


def test_tracked_agent_inside_a_tracking_block_is_one_of_its_roots(tmp_path: Path) -> None:
    """A wrapper's invoke inside a block: the wrapper's event and the block's, same numbers."""
    block_path, own_path = tmp_path / "block.jsonl", tmp_path / "own.jsonl"
    tracked = track_usage(model(), EventLog(own_path))
    with tracking(EventLog(block_path)):
        tracked.invoke("hi")
    assert totals(own_path) == totals(block_path) == [(10, 1, 1)]
    assert events(own_path)[0]["invoke_id"] == events(block_path)[0]["invoke_id"]


def test_ten_thousand_scopes_add_no_hook_and_leave_nothing_behind(tmp_path: Path) -> None:
    """Scopes set one context variable: no configure hook per scope, none left active after."""
    path = tmp_path / "events.jsonl"
    tracked = track_usage(model(), EventLog(path))
    tracked.invoke("hi")
    hooks = len(_configure_hooks)
    for _ in range(10_000):
        with tracking(None):
            pass
    for _ in range(200):
        tracked.invoke("hi")
    assert len(_configure_hooks) == hooks
    handlers = CallbackManager.configure().handlers
    assert not [h for h in handlers if type(h).__module__.startswith("agent_usage")]
    assert len(events(path)) == 201


# -- the budget hook and external calls ------------------------------------------------


class StopAfter:
    """A stand-in Budget: its guard refuses the call after `n` calls in the invoke."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen: list[tuple[str, Any]] = []

    def _guard(self, *, log: Any, pricer: Any) -> StopAfter:
        return self

    def before_call(self, call: CallInfo) -> None:
        self.seen.append(("before", call.invoke_tokens))
        if call.invoke_tokens and len([s for s in self.seen if s[0] == "after"]) >= self.n:
            raise BudgetExceeded("invoke", 10.0, float(call.invoke_tokens), "tokens")

    def after_call(self, call: CallInfo, tokens: int, cost_usd: float | None) -> None:
        self.seen.append(("after", tokens))

    def invoke_finished(self, event: Any) -> None:
        self.seen.append(("finished", event["status"]))


@pytest.mark.parametrize("method", ["invoke", "ainvoke"])
async def test_budget_refusal_stops_the_call_before_it_is_sent(tmp_path: Path, method: str) -> None:
    """BudgetExceeded from before_call stops the model call; the event says budget_exceeded."""
    path = tmp_path / "events.jsonl"
    m = model(2)
    budget = StopAfter(1)
    tracked = track_usage(
        graph_of(
            lambda s: {"messages": [m.invoke(s["messages"])]},
            lambda s: {"messages": [m.invoke(s["messages"])]},
        ),
        EventLog(path),
        budget=budget,
    )
    with pytest.raises(BudgetExceeded) as caught:
        if method == "ainvoke":
            await tracked.ainvoke(INPUT)
        else:
            tracked.invoke(INPUT)
    assert m.calls == 1  # the second call was never made
    [event] = events(path)
    assert (event["status"], event["input_tokens"], event["llm_calls"]) == (
        "budget_exceeded",
        10,
        1,
    )
    assert event["budget"] == caught.value.as_event_field()
    assert budget.seen == [
        ("before", 0),
        ("after", 11),
        ("before", 11),
        ("finished", "budget_exceeded"),
    ]


def test_external_calls_join_the_active_scopes_once(tmp_path: Path) -> None:
    """A call recorded from outside LangChain counts in every active scope, once per response id."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    usage = Usage(input_tokens=700, output_tokens=70)

    def node(state: State) -> dict[str, Any]:
        reply = m.invoke(state["messages"])
        # Seen both ways: LangChain already counted this response id.
        assert record_external_call(usage, model="ext", key=reply.id) == 0
        assert record_external_call(usage, model="ext", key="resp-1") == 1
        assert record_external_call(usage, model="ext", key="resp-1") == 0
        return {"messages": [reply]}

    m = ScriptedChatModel(script=[AIMessage(content="a", id="resp-0", usage_metadata=um(10, 1))])
    track_usage(graph_of(node), log, session_id="wrapped").invoke(INPUT)
    assert record_external_call(usage, model="ext") == 0  # outside any scope
    with tracking(log, session_id="block"):
        captured = active_scopes()
        assert record_external_call(usage, model="ext", provider="p") == 1
    assert record_external_call(usage, model="ext", within=captured) == 1
    got = sorted((e["session_id"], e["input_tokens"], e["llm_calls"]) for e in events(path))
    assert got == [("block", 700, 1), ("block", 700, 1), ("wrapped", 710, 2)]


def test_capture_events_collects_every_event_written_in_the_block(tmp_path: Path) -> None:
    """capture_events: events of log-less and logged tracking, nested captures, none after."""
    from agent_usage.testing import capture_events

    path = tmp_path / "events.jsonl"
    logless = track_usage(model(), None)
    logged = track_usage(model(2, name="other"), EventLog(path))
    with capture_events() as outer:
        logless.invoke("hi")
        with capture_events() as inner:
            logged.invoke("hi")
    logless.invoke("after the block")
    assert [(e["model"], e["input_tokens"]) for e in outer] == [
        ("scripted-model", 10),
        ("other", 10),
    ]
    assert [e["event_id"] for e in inner] == [e["event_id"] for e in events(path)]


@pytest.mark.parametrize("method", ["invoke", "stream", "ainvoke"])
async def test_parallel_branches_in_langgraph_threads_with_own_callbacks(
    tmp_path: Path, method: str
) -> None:
    """Fan-out branches run on LangGraph's executor threads; own callbacks there still count."""
    path = tmp_path / "events.jsonl"
    m = model(1)

    def branch(state: State) -> dict[str, Any]:
        return {"messages": [m.invoke(state["messages"], {"callbacks": []})]}

    g = StateGraph(State)
    for name in ("a", "b", "c"):
        g.add_node(name, branch)
        g.add_edge(START, name)
        g.add_edge(name, END)
    tracked = track_usage(g.compile(), EventLog(path))
    if method == "invoke":
        tracked.invoke(INPUT)
    elif method == "stream":
        list(tracked.stream(INPUT, stream_mode="updates"))
    else:
        await tracked.ainvoke(INPUT)
    assert totals(path) == [(30, 3, 3)]
