"""Tracking overhead: tracked vs untracked ainvoke of a one-node LangGraph graph.

The worst case for overhead: an in-process fake chat model that answers in
microseconds, so the bookkeeping is all there is to see. Four variants run
interleaved in the same process, several rounds each, and the medians are
compared:

- untracked: `graph.ainvoke`
- tracked: `track_usage(graph, EventLog(...)).ainvoke` (normalise, price, write)
- langchain-core way: `UsageMetadataCallbackHandler` in the config plus a stdlib
  `open(path, "a")` + `json.dumps` append of its totals after each invoke
- no-op handler (for context, not a bar): an inline callback handler that does
  nothing, i.e. what langchain-core and LangGraph charge for dispatching callbacks
  to any handler at all (run managers, per-event dispatch, and on Python 3.11 a
  slow `runtime_checkable` Protocol isinstance per model call). Tracking cannot
  cost less than this; the rest of the gap is ours.

Bars (DESIGN.md): tracked/untracked <= 1.15; tracked/langchain-core way < 1.

Usage: python bench/overhead.py [--invokes N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import operator
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from agent_usage import EventLog, track_usage


class NoopHandler(BaseCallbackHandler):
    """Receives every callback inline and does nothing."""

    run_inline = True


class State(TypedDict):
    messages: Annotated[list[BaseMessage], operator.add]


def build_graph() -> Any:
    reply = AIMessage(
        content="ok",
        response_metadata={
            "model_name": "claude-sonnet-4-5-20250929",
            "model_provider": "anthropic",
        },
        usage_metadata={
            "input_tokens": 1200,
            "output_tokens": 80,
            "total_tokens": 1280,
            "input_token_details": {
                "cache_read": 1000,
                "cache_creation": 0,
                "ephemeral_5m_input_tokens": 100,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_token_details": {"reasoning": 20},
        },
    )
    model = GenericFakeChatModel(messages=itertools.repeat(reply))

    async def call_model(state: State) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_edge(START, "model")
    g.add_edge("model", END)
    return g.compile()


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    """Seconds per call over n sequential calls."""
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n


async def main(invokes: int, rounds: int) -> None:
    graph = build_graph()
    inputs = {"messages": [HumanMessage("hi")]}
    with tempfile.TemporaryDirectory() as tmp:
        log = EventLog(Path(tmp) / "events.jsonl")
        tracked = track_usage(graph, log, session_id="bench")
        lc_path = Path(tmp) / "lc.jsonl"

        async def untracked_call() -> Any:
            return await graph.ainvoke(inputs)

        async def tracked_call() -> Any:
            return await tracked.ainvoke(inputs)

        async def langchain_way() -> Any:
            handler = UsageMetadataCallbackHandler()
            result = await graph.ainvoke(inputs, {"callbacks": [handler]})
            with open(lc_path, "a") as f:
                f.write(
                    json.dumps(
                        {
                            "type": "llm_usage",
                            "session_id": "bench",
                            "usage": handler.usage_metadata,
                        }
                    )
                    + "\n"
                )
            return result

        noop = NoopHandler()

        async def noop_call() -> Any:
            return await graph.ainvoke(inputs, {"callbacks": [noop]})

        variants = {
            "untracked": untracked_call,
            "tracked": tracked_call,
            "langchain": langchain_way,
            "noop-handler": noop_call,
        }
        for fn in variants.values():  # warm up imports, caches, price lookup
            await timed(fn, 50)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, fn in variants.items():
                samples[name].append(await timed(fn, invokes))
        log.close()

    med = {name: statistics.median(v) for name, v in samples.items()}
    print(
        f"overhead: {rounds} rounds x {invokes} ainvokes, medians per invoke: "
        + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in med.items())
    )
    print(f"overhead: tracked/untracked = {med['tracked'] / med['untracked']:.3f} (bar <= 1.15)")
    print(
        f"overhead: tracked/langchain-core handler + json append = "
        f"{med['tracked'] / med['langchain']:.3f} (bar < 1)"
    )
    floor = med["noop-handler"] / med["untracked"]
    ours = (med["tracked"] - med["noop-handler"]) / med["untracked"]
    print(
        f"overhead: context: a no-op inline handler alone = {floor:.3f} of untracked "
        f"(langchain-core/LangGraph callback dispatch); agent_usage's own work = {ours:+.3f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=9)
    ns = parser.parse_args()
    asyncio.run(main(ns.invokes, ns.rounds))
