"""Tracking overhead: per-invoke cost of track_usage against the other ways, in one run.

Two agents on in-process chat models that answer in microseconds, so the
bookkeeping is all there is to see:

- one-node: a one-node LangGraph graph whose node awaits a fake chat model (the
  worst case for relative overhead);
- tool-agent: `langchain.agents.create_agent` with one tool, two model calls
  (a tool call, then the answer).

Variants, interleaved round by round in the same process (the order rotated
each round), the process's CPU time per invoke (CPU, not wall time: on a shared
machine the wall clock mostly measures the wait for a core); each ratio is the
median over rounds of the ratio measured within one round:

- untracked: `graph.ainvoke`
- noop: an inline callback handler that does nothing, in the config: what
  langchain-core and LangGraph charge for dispatching callbacks to any handler at
  all. Tracking cannot cost less than this floor.
- tracked: `track_usage(graph, EventLog(...)).ainvoke` (normalise, price, build,
  encode, write one event)
- lc-usage: langchain-core's `get_usage_metadata_callback()` around the invoke plus
  a stdlib `open(path, "a")` + `json.dumps` append of its totals. That function
  registers a new configure hook on every call (langchain issue 32300); the hooks
  it leaked are removed after each timed batch so they never slow the other
  variants (within a batch the leak is part of its cost, as in production).
- langfuse / posthog: their LangChain callback handlers, clients pointed at a dead
  loopback port and never flushing over the network (Langfuse: a span exporter
  that drops; PostHog: send=False), so only their in-process work is timed.

Bars (DESIGN.md): one-node tracked/noop <= 1.05; tracked <= 0.6 of lc-usage;
tracked <= 0.35 of langfuse and of posthog; tool-agent tracked/untracked <= 1.12.
`--profile` also times agent_usage's own steps per event (build incl. pricing,
encode, write).

Usage: python bench/overhead.py [--invokes N] [--rounds R] [--profile] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import operator
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langchain_core.tracers.context import _configure_hooks
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from agent_usage import EventLog, track_usage
from agent_usage.testing import ScriptedChatModel

Variant = Callable[[], Awaitable[Any]]
DEAD = "http://127.0.0.1:9"  # discard port: nothing listens, nothing is ever sent


class NoopHandler(BaseCallbackHandler):
    """Receives every callback inline and does nothing."""

    run_inline = True


class State(TypedDict):
    messages: Annotated[list[BaseMessage], operator.add]


USAGE: Any = {
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
}
META = {"model_name": "claude-sonnet-4-5-20250929", "model_provider": "anthropic"}


def one_node_graph() -> Any:
    reply = AIMessage(content="ok", response_metadata=META, usage_metadata=USAGE)
    model = GenericFakeChatModel(messages=itertools.repeat(reply))

    async def call_model(state: State) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_edge(START, "model")
    g.add_edge("model", END)
    return g.compile()


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def tool_agent() -> Any:
    model = ScriptedChatModel(
        model_name=META["model_name"],
        provider="anthropic",
        script=[
            AIMessage(
                content="",
                tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}],
                usage_metadata=USAGE,
            ),
            AIMessage(content="3", usage_metadata=USAGE),
        ],
    )
    return create_agent(model, tools=[add])


def third_party_handlers() -> dict[str, BaseCallbackHandler]:
    """Langfuse's and PostHog's LangChain handlers, wired so they never touch the network."""
    from langfuse import Langfuse
    from langfuse.langchain import CallbackHandler as LangfuseHandler
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from posthog import Posthog
    from posthog.ai.langchain import CallbackHandler as PostHogHandler

    class DropSpans(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    Langfuse(
        public_key="pk-lf-bench",
        secret_key="sk-lf-bench",
        base_url=DEAD,
        span_exporter=DropSpans(),
        flush_interval=3600,
    )
    posthog = Posthog("phc_bench", host=DEAD, send=False)
    return {
        "langfuse": LangfuseHandler(public_key="pk-lf-bench"),
        "posthog": PostHogHandler(client=posthog, distinct_id="bench"),
    }


def variants(graph: Any, inputs: Any, tmp: Path, handlers: dict[str, Any]) -> dict[str, Variant]:
    log = EventLog(tmp / "events.jsonl")
    tracked = track_usage(graph, log, session_id="bench")
    lc_path = tmp / "lc.jsonl"
    noop = NoopHandler()

    async def untracked() -> Any:
        return await graph.ainvoke(inputs)

    async def noop_call() -> Any:
        return await graph.ainvoke(inputs, {"callbacks": [noop]})

    async def tracked_call() -> Any:
        return await tracked.ainvoke(inputs)

    async def lc_usage() -> Any:
        with get_usage_metadata_callback() as cb:
            result = await graph.ainvoke(inputs)
        with open(lc_path, "a") as f:
            f.write(json.dumps({"type": "llm_usage", "usage": cb.usage_metadata}) + "\n")
        return result

    def via(handler: Any) -> Variant:
        async def call() -> Any:
            return await graph.ainvoke(inputs, {"callbacks": [handler]})

        return call

    return {
        "untracked": untracked,
        "noop": noop_call,
        "tracked": tracked_call,
        "lc-usage": lc_usage,
        **{name: via(h) for name, h in handlers.items()},
    }


CLOCK: Callable[[], float] = time.process_time
CLOCK_NAME = "CPU"


async def timed(fn: Variant, n: int) -> float:
    """Seconds per call over n sequential calls, on `CLOCK`.

    By default the process's CPU time, all threads (the handlers' background
    threads included): on a shared machine wall time mostly measures the wait
    for a core (`--clock wall` measures latency instead). Configure hooks leaked
    by the calls are removed after.
    """
    hooks = len(_configure_hooks)
    start = CLOCK()
    for _ in range(n):
        await fn()
    elapsed = (CLOCK() - start) / n
    del _configure_hooks[hooks:]
    return elapsed


class Samples:
    """Per-round CPU times of each variant; ratios are medians of same-round ratios."""

    def __init__(self, samples: dict[str, list[float]]) -> None:
        self.samples = samples

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, a: str, b: str) -> float:
        """Median over rounds of a/b measured in the same round (drift cancels out)."""
        return statistics.median(
            x / y for x, y in zip(self.samples[a], self.samples[b], strict=True)
        )


async def measure(name: str, fns: dict[str, Variant], invokes: int, rounds: int) -> Samples:
    for fn in fns.values():  # warm up imports, caches, price lookups
        await timed(fn, 30)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns.items())
    for r in range(rounds):
        # Rotate the order each round so no variant always runs after the same one.
        for k, fn in order[r % len(order) :] + order[: r % len(order)]:
            samples[k].append(await timed(fn, invokes))
    result = Samples(samples)
    print(
        f"overhead: {name}: {rounds} rounds x {invokes} ainvokes, median {CLOCK_NAME} per invoke: "
        + ", ".join(f"{k} {result.median(k) * 1e6:.0f} us" for k in fns)
    )
    return result


def bar(label: str, value: float, limit: float) -> None:
    verdict = "ok" if value <= limit else "OVER"
    print(f"overhead: {label} = {value:.3f} (bar <= {limit}) {verdict}")


def profile(tmp: Path, n: int = 20000) -> None:
    """agent_usage's own steps per event, on the tally of a real one-node invoke."""
    from agent_usage._encode import _OPTS, _default
    from agent_usage._event import Call, Tally, build_event
    from agent_usage._log import _dumps
    from agent_usage._pricing import default_pricer
    from agent_usage._usage import normalize_usage

    message = AIMessage(content="ok", response_metadata=META, usage_metadata=USAGE)
    usage = normalize_usage(message)
    assert usage is not None
    pricer = default_pricer()
    tally = Tally()
    tally.calls.append(Call(META["model_name"], "anthropic", usage))
    log = EventLog(tmp / "profile.jsonl")

    def per(fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - start) / n * 1e6

    event: Any = build_event(tally, invoke_id="i", session_id="s", status="ok", pricer=pricer)
    steps = {
        "normalise": per(lambda: normalize_usage(message)),
        "price": per(lambda: pricer.price(META["model_name"], "anthropic", usage)),
        "build (incl. price)": per(
            lambda: build_event(tally, invoke_id="i", session_id="s", status="ok", pricer=pricer)
        ),
        "encode": per(lambda: _dumps(event, default=_default, option=_OPTS)),
        "append (encode + write)": per(lambda: log.append(event)),
    }
    log.close()
    print(
        "overhead: profile, agent_usage's own work per event: "
        + ", ".join(f"{k} {v:.1f} us" for k, v in steps.items())
    )


async def main(invokes: int, rounds: int, with_profile: bool) -> None:
    handlers = third_party_handlers()
    inputs = {"messages": [HumanMessage("hi")]}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "one").mkdir()
        (tmp / "tool").mkdir()
        one = await measure(
            "one-node", variants(one_node_graph(), inputs, tmp / "one", handlers), invokes, rounds
        )
        tools = await measure(
            "tool-agent",
            variants(tool_agent(), inputs, tmp / "tool", handlers),
            max(1, invokes // 4),
            rounds,
        )
        if with_profile:
            profile(tmp)

    ours = (one.median("tracked") - one.median("noop")) * 1e6
    print(
        f"overhead: one-node: noop floor = {one.ratio('noop', 'untracked'):.3f} of untracked; "
        f"agent_usage's own work above it = {ours:+.0f} us per invoke"
    )
    bar("one-node tracked/noop", one.ratio("tracked", "noop"), 1.05)
    bar("one-node tracked/lc-usage", one.ratio("tracked", "lc-usage"), 0.6)
    bar("one-node tracked/langfuse", one.ratio("tracked", "langfuse"), 0.35)
    bar("one-node tracked/posthog", one.ratio("tracked", "posthog"), 0.35)
    bar("tool-agent tracked/untracked", tools.ratio("tracked", "untracked"), 1.12)
    for label, s in (("one-node", one), ("tool-agent", tools)):
        print(
            f"overhead: {label} ratios to untracked: "
            + ", ".join(f"{k} {s.ratio(k, 'untracked'):.2f}" for k in s.samples)
        )
    print(f"overhead: python {sys.version.split()[0]}, {os.cpu_count()} cpus")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ns = parser.parse_args()
    if ns.clock == "wall":
        CLOCK, CLOCK_NAME = time.perf_counter, "wall time"
    asyncio.run(main(ns.invokes, ns.rounds, ns.profile))
