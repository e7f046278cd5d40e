"""What the shape tests read back and compare: events from the log, token rows written by hand.

Also the ways a tracked model is driven (`MODES`), shared by the per-provider
shape tests so each provider is exercised the same way, and `drive`, which runs
a tracked agent or graph the way a test parameter names.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from logs import TOKEN_FIELDS
from logs import usage_events as events
from typing_extensions import TypedDict

from agent_usage import EventLog, track_usage

from .servers import FakeServer, Reply

__all__ = [
    "MODES",
    "WIRE",
    "Mode",
    "State",
    "add",
    "assert_one_call",
    "drive",
    "events",
    "expected",
    "numbers",
    "one_node_graph",
    "only_event",
    "serve_one_call",
]


def only_event(path: Path) -> dict[str, Any]:
    """The single `llm_usage` event in the log."""
    found = events(path)
    assert len(found) == 1, found
    return found[0]


def numbers(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's token fields, with the 1h part only when it was reported."""
    keys = (*TOKEN_FIELDS, "cache_creation_1h_input_tokens")
    return {k: event[k] for k in keys if k in event}


def expected(
    inp: int,
    out: int,
    *,
    read: int = 0,
    creation: int = 0,
    creation_1h: int | None = None,
    reasoning: int = 0,
) -> dict[str, int]:
    """Event token fields written out by hand, so each table states the truth."""
    row = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": creation,
        "reasoning_tokens": reasoning,
    }
    if creation_1h is not None:
        row["cache_creation_1h_input_tokens"] = creation_1h
    return row


def assert_one_call(event: Mapping[str, Any], model: str, want: Mapping[str, int]) -> None:
    """The event logged one call to `model`, ok, with `want` at its top and in its one row."""
    assert numbers(event) == want
    assert event["status"] == "ok"
    assert (event["llm_calls"], event["llm_calls_without_usage"]) == (1, 0)
    assert event["model"] == model
    assert list(event["models"]) == [model]
    assert numbers(event["models"][model]) == want


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class State(TypedDict):
    """A graph state holding a message list."""

    messages: Annotated[list[AnyMessage], add_messages]


def one_node_graph(model: Runnable[Any, Any]) -> Any:
    """A LangGraph graph whose only node calls the model (or any runnable around one)."""

    def call(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    return StateGraph(State).add_node("model", call).add_edge(START, "model").compile()


async def drive(agent: Any, how: str, inputs: Any, config: Any = None, **stream: Any) -> Any:
    """Run a tracked agent once: `ainvoke`, `invoke`, or stream it in the named mode.

    `how` is "ainvoke", "invoke", "astream-<mode>" or "stream-<mode>"; `stream`
    (e.g. ``subgraphs=True``) goes to the stream calls. Returns what an invoke returned.
    """
    if how == "ainvoke":
        return await agent.ainvoke(inputs, config)
    if how == "invoke":
        return agent.invoke(inputs, config)
    if how.startswith("astream"):
        async for _ in agent.astream(inputs, config, stream_mode=how.split("-")[1], **stream):
            pass
        return None
    for _ in agent.stream(inputs, config, stream_mode=how.split("-")[1], **stream):
        pass
    return None


@dataclass(frozen=True)
class Mode:
    """One way of running a tracked invoke; `streams` says whether the wire call streams."""

    name: str
    streams: bool
    run: Callable[[BaseChatModel, EventLog], Awaitable[None]]


async def _invoke(model: BaseChatModel, log: EventLog) -> None:
    track_usage(model, log).invoke("hi")


async def _ainvoke(model: BaseChatModel, log: EventLog) -> None:
    await track_usage(model, log).ainvoke("hi")


async def _stream(model: BaseChatModel, log: EventLog) -> None:
    for _ in track_usage(model, log).stream("hi"):
        pass


async def _astream(model: BaseChatModel, log: EventLog) -> None:
    async for _ in track_usage(model, log).astream("hi"):
        pass


async def _graph_astream_messages(model: BaseChatModel, log: EventLog) -> None:
    # "messages" mode makes LangGraph call the model in streaming mode.
    agent = track_usage(one_node_graph(model), log)
    async for _ in agent.astream({"messages": [HumanMessage("hi")]}, stream_mode="messages"):
        pass


async def _graph_ainvoke(model: BaseChatModel, log: EventLog) -> None:
    await track_usage(one_node_graph(model), log).ainvoke({"messages": [HumanMessage("hi")]})


MODES = [
    Mode("invoke", False, _invoke),
    Mode("ainvoke", False, _ainvoke),
    Mode("stream", True, _stream),
    Mode("astream", True, _astream),
    Mode("graph.ainvoke", False, _graph_ainvoke),
    # LangGraph hands its "messages" handler to an async node's model call through
    # contextvars, which asyncio tasks inherit only from 3.11: on 3.10 that call is
    # not streamed on the wire (its usage must count all the same).
    Mode("graph.astream-messages", sys.version_info >= (3, 11), _graph_astream_messages),
]
# The two ways a bare model call reaches the wire: one JSON answer, or streamed.
WIRE = [m for m in MODES if m.name in ("ainvoke", "astream")]


async def serve_one_call(
    server: FakeServer, model: BaseChatModel, path: Path, mode: Mode, reply: Reply
) -> dict[str, Any]:
    """Serve `reply` to one call run the way `mode` says, logged to `path`; the request sent."""
    server.script(reply)
    with EventLog(path) as log:
        await mode.run(model, log)
    assert server.pending == 0
    assert len(server.requests) == 1
    return server.requests[0]
