"""`UsageCallbackHandler` on its own: error, cancel and stream paths, without the wrapper."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from graphs import State, graph_of
from langchain_core.messages import AIMessage, HumanMessage
from logs import usage_events as events

from agent_usage import EventLog, UsageCallbackHandler
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um


def summary(path: Path) -> list[tuple[str, int, int, int]]:
    return sorted(
        (e["status"], e["input_tokens"], e["output_tokens"], e["llm_calls"]) for e in events(path)
    )


def model(*usages: tuple[int, int]) -> ScriptedChatModel:
    return ScriptedChatModel(
        script=[AIMessage(content=f"r{i}", usage_metadata=um(*u)) for i, u in enumerate(usages)]
    )


def calls(m: ScriptedChatModel) -> Any:
    """A graph node that calls `m` on the messages so far."""
    return lambda s: {"messages": [m.invoke(s["messages"])]}


INPUT = {"messages": [HumanMessage("go")]}


@pytest.mark.parametrize("method", ["invoke", "ainvoke"])
async def test_error_after_a_call_logs_it_with_status_error(tmp_path: Path, method: str) -> None:
    """A graph that raises after one call: the handler's event has that call, status error."""
    path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(path), session_id="h")
    m = model((120, 12))
    boom = ValueError("boom")

    def explode(state: State) -> dict[str, Any]:
        raise boom

    g = graph_of(calls(m), explode)
    with pytest.raises(ValueError) as caught:
        if method == "ainvoke":
            await g.ainvoke(INPUT, {"callbacks": [handler]})
        else:
            g.invoke(INPUT, {"callbacks": [handler]})
    assert caught.value is boom
    assert summary(path) == [("error", 120, 12, 1)]
    assert events(path)[0]["session_id"] == "h"


async def test_model_call_failing_before_billing_writes_nothing(tmp_path: Path) -> None:
    """A bare model call that raises before billing writes nothing (no usage)."""
    path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(path))
    failing = ScriptedChatModel(script=["x"], fail_after=1)
    with pytest.raises(RuntimeError):
        await failing.ainvoke("hi", {"callbacks": [handler]})
    assert events(path) == []
    assert handler.failures == {}


async def test_cancelled_task_logs_cancelled(tmp_path: Path) -> None:
    """A task cancelled mid-graph: the handler writes status cancelled with the calls before."""
    path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(path))
    m = model((60, 6))
    started = asyncio.Event()

    async def wait_forever(state: State) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    g = graph_of(calls(m), wait_forever)
    task = asyncio.create_task(g.ainvoke(INPUT, {"callbacks": [handler]}))
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert summary(path) == [("cancelled", 60, 6, 1)]


@pytest.mark.parametrize("mode", ["updates", "messages", "values"])
async def test_streamed_graph_counts_as_invoked(tmp_path: Path, mode: str) -> None:
    """astream in each mode with the handler: one event, the sum of both calls."""
    path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(path))
    m = model((10, 1), (20, 2))
    g = graph_of(calls(m), calls(m))
    chunks = [c async for c in g.astream(INPUT, {"callbacks": [handler]}, stream_mode=mode)]
    assert chunks
    assert summary(path) == [("ok", 30, 3, 2)]


async def test_abandoned_stream_logs_cancelled_with_what_was_spent(tmp_path: Path) -> None:
    """Closing an astream after the first step: status cancelled, the first call's usage."""
    path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(path))
    m = model((10, 1), (20, 2))
    g = graph_of(calls(m), calls(m))
    stream = g.astream(INPUT, {"callbacks": [handler]}, stream_mode="updates")
    first = await stream.__anext__()
    assert "n0" in first
    await stream.aclose()
    assert summary(path) == [("cancelled", 10, 1, 1)]


def test_bare_model_stream_is_one_event(tmp_path: Path) -> None:
    """model.stream with the handler: the usage of the last chunk, one event."""
    path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(path))
    chunks = list(model((33, 3)).stream("hi", {"callbacks": [handler]}))
    assert "".join(str(c.content) for c in chunks) == "r0"
    assert summary(path) == [("ok", 33, 3, 1)]


async def test_own_callbacks_inside_a_handler_root_are_counted(tmp_path: Path) -> None:
    """A node calling a model with its own callbacks (and none inherited) counts in the root."""
    path = tmp_path / "events.jsonl"
    handler = UsageCallbackHandler(EventLog(path))
    m = model((10, 1))

    async def node(state: State) -> dict[str, Any]:
        return {"messages": [await m.ainvoke(state["messages"], {"callbacks": []})]}

    await graph_of(node).ainvoke(INPUT, {"callbacks": [handler]})
    assert summary(path) == [("ok", 10, 1, 1)]


def test_session_callable_sees_the_same_config_shape_as_the_wrappers(tmp_path: Path) -> None:
    """The session callable gets metadata and configurable.thread_id, as track_usage's does."""
    path = tmp_path / "events.jsonl"
    seen: list[Any] = []

    def session(config: Any) -> str:
        seen.append(config)
        return f"{config['metadata']['user']}@{config['configurable']['thread_id']}"

    handler = UsageCallbackHandler(EventLog(path), session_id=session)
    model((1, 1)).invoke(
        "hi", {"callbacks": [handler], "metadata": {"user": "ann", "thread_id": "t1"}}
    )
    assert events(path)[0]["session_id"] == "ann@t1"


def test_handler_on_a_tracked_invoke_and_inside_a_block_each_write_once(tmp_path: Path) -> None:
    """Handler + wrapper on one invoke, then handler + block on one root: each counts once."""
    from agent_usage import track_usage, tracking

    paths = {name: tmp_path / f"{name}.jsonl" for name in ("handler", "wrapper", "block")}
    handler = UsageCallbackHandler(EventLog(paths["handler"]))
    m = model((10, 1), (20, 2), (30, 3))
    g = graph_of(
        calls(m),
        lambda s: {"messages": [m.invoke(s["messages"], {"callbacks": []})]},
    )
    track_usage(g, EventLog(paths["wrapper"])).invoke(INPUT, {"callbacks": [handler]})
    with tracking(EventLog(paths["block"])):
        g.invoke(INPUT, {"callbacks": [handler]})  # two root trackers on one root
        m.invoke("a later root in the block")  # the block still tracks after it
    assert summary(paths["wrapper"]) == [("ok", 30, 3, 2)]
    assert summary(paths["handler"]) == [("ok", 30, 3, 2), ("ok", 40, 4, 2)]
    assert summary(paths["block"]) == [("ok", 20, 2, 1), ("ok", 40, 4, 2)]
