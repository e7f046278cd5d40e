"""Budget cost: the check per model call next to the tracking overhead, and the first use.

1. Per call. On the one-node LangGraph graph of bench/overhead.py (a fake chat model
   that answers in microseconds: bookkeeping is all there is to see), interleaved
   rounds in one process: untracked, tracked, and tracked with a session + day
   budget on the same log (when `track_usage` takes `budget=`). Also the guard
   alone: `before_call` + `after_call` of a session + day budget on a log file,
   per call. Reported: the check's cost per call, the tracking overhead per call
   (tracked - untracked), their ratio, and tracked+budget / tracked.
2. First use. A seeded 1,000,000-line log (1 in 5 lines `llm_usage`, the rest
   other event types; 2,000 sessions over 30 days ending today) is read by a fresh
   ledger (what the first budget check of a process does), next to the bare
   `read_events` loop and a plain `json.loads`-per-line loop summing per session
   over the same file, interleaved in the same run. bench/gen_log.py's log is used
   when that script is there.

Bars: the check costs at most a tenth of the tracking overhead per call (it must stay
in the noise next to it); the first read costs at most 2.5x the bare `read_events`
loop over the same file (the floor: reading and parsing the events at all).

Usage: python bench/budget.py [--invokes N] [--rounds R] [--lines N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from langchain_core.messages import HumanMessage

from agent_usage import Budget, EventLog, read_events, track_usage
from agent_usage._budget import CallInfo
from agent_usage._ledger import Ledger
from agent_usage._pricing import default_pricer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/gen_log.py, if present

from overhead import one_node_graph  # the graph bench/overhead.py measures

BUDGET = Budget(session_usd=1e9, day_usd=1e9)


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    """Seconds per call over n sequential calls."""
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n


def guard_alone(
    path: Path, n: int, *, append: EventLog | None = None
) -> Callable[[], Awaitable[None]]:
    """n checks + counts of a session + day budget, as the recorder makes them per call.

    With `append`, one event is appended to the log before each check (as the previous
    invoke's event is): the check then reads it back.
    """
    guard = BUDGET._guard(log=path, pricer=default_pricer())
    info = CallInfo(
        invoke_id="bench-invoke",
        session_id="bench",
        metadata={"app": "bench"},
        model="claude-sonnet-4-5",
        invoke_tokens=0,
        invoke_cost_usd=0.0,
    )

    event = {**OTHER_EVENT, "invoke_id": "another-process"}

    async def run() -> None:
        for _ in range(n):
            if append is not None:
                append.append(event)
            guard.before_call(info)
            guard.after_call(info, 1280, 0.0012)

    return run


OTHER_EVENT: dict[str, Any] = {
    "type": "llm_usage",
    "schema": 1,
    "event_id": "0" * 32,
    "timestamp": "2026-11-30T10:00:00.000000+00:00",
    "session_id": "bench",
    "model": "claude-sonnet-4-5",
    "status": "ok",
    "input_tokens": 1200,
    "output_tokens": 80,
    "total_tokens": 1280,
    "llm_calls": 1,
    "cost_usd": 0.0012,
    "models": {
        "claude-sonnet-4-5": {"input_tokens": 1200, "output_tokens": 80, "cost_usd": 0.0012}
    },
}


async def _append(log: EventLog) -> None:
    log.append(OTHER_EVENT)


async def per_call(invokes: int, rounds: int) -> None:
    graph = one_node_graph()
    inputs = {"messages": [HumanMessage("hi")]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        log = EventLog(path)
        tracked = track_usage(graph, log, session_id="bench")
        variants: dict[str, Callable[[], Awaitable[Any]]] = {
            "untracked": lambda: graph.ainvoke(inputs),
            "tracked": lambda: tracked.ainvoke(inputs),
        }
        try:
            budgeted = track_usage(graph, log, session_id="bench", budget=BUDGET)
            variants["tracked+budget"] = lambda: budgeted.ainvoke(inputs)
        except TypeError:
            print("budget: track_usage takes no budget= on this branch; guard alone only")
        # One "invoke" of the guard alone = as many checks as the graph makes calls (1).
        variants["guard-alone"] = guard_alone(Path(tmp) / "guard.jsonl", 1)
        appended = EventLog(Path(tmp) / "guard2.jsonl")
        variants["append-alone"] = lambda: _append(appended)
        variants["append+guard"] = guard_alone(Path(tmp) / "guard2.jsonl", 1, append=appended)
        for fn in variants.values():  # warm up imports, caches, price lookup, first read
            await timed(fn, 50)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, fn in variants.items():
                samples[name].append(await timed(fn, invokes))
        log.close()

    med = {name: statistics.median(v) for name, v in samples.items()}
    print(
        f"budget: {rounds} rounds x {invokes} ainvokes (1 model call each), medians: "
        + ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in med.items())
    )
    tracking = med["tracked"] - med["untracked"]
    check = med["guard-alone"]
    print(
        f"budget: check per model call (before_call + after_call, session + day) "
        f"= {check * 1e6:.1f} us; tracking overhead per call = {tracking * 1e6:.1f} us; "
        f"check/tracking overhead = {check / tracking:.3f} (bar <= 0.10); "
        f"check/untracked invoke = {check / med['untracked']:.4f}"
    )
    read_back = med["append+guard"] - med["append-alone"]
    print(
        f"budget: check when one event was appended since the last (read back and parsed) "
        f"= {read_back * 1e6:.1f} us; /tracking overhead = {read_back / tracking:.3f}"
    )
    if "tracked+budget" in med:
        # Paired per round (the two ran back to back), so slow drift cancels out.
        paired = statistics.median(
            b / t for b, t in zip(samples["tracked+budget"], samples["tracked"], strict=True)
        )
        print(
            f"budget: tracked+budget/tracked = {paired:.3f} (end to end, median of "
            f"per-round ratios; the guard-alone figure above is the check's own cost)"
        )


# --------------------------------------------------------------------- first use


def write_log(path: Path, lines: int, seed: int = 7) -> int:
    """A seeded log: 1 in 5 lines llm_usage; returns the llm_usage event count."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=30)
    span = (now - start).total_seconds()
    sessions = [f"session-{i:05d}" for i in range(2000)]
    events = 0
    with open(path, "wb") as f:
        buf = []
        for i in range(lines):
            ts = (start + timedelta(seconds=span * i / lines)).isoformat()
            if i % 5 == 0:
                events += 1
                inp, out = rng.randint(200, 20000), rng.randint(10, 2000)
                cost = round(inp * 3e-6 + out * 15e-6, 8)
                row = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
                e: dict[str, Any] = {
                    "type": "llm_usage",
                    "schema": 1,
                    "event_id": f"{rng.getrandbits(64):016x}",
                    "invoke_id": f"{rng.getrandbits(64):016x}",
                    "timestamp": ts,
                    "session_id": rng.choice(sessions),
                    "model": "claude-sonnet-4-5",
                    "status": "ok",
                    **row,
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "reasoning_tokens": 0,
                    "llm_calls": 1,
                    "llm_calls_without_usage": 0,
                    "cost_usd": cost,
                    "models": {"claude-sonnet-4-5": {**row, "llm_calls": 1, "cost_usd": cost}},
                    "metadata": {"user_id": f"user-{rng.randint(0, 99)}"},
                }
            else:
                e = {"type": rng.choice(("tool_call", "timing")), "timestamp": ts, "ms": i % 997}
            buf.append(orjson.dumps(e) + b"\n")
            if len(buf) >= 10000:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
    return events


def plain_loop(path: Path) -> dict[str, int]:
    """The hand-written way: json.loads every line, sum the tokens per session."""
    totals: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e.get("type") == "llm_usage":
                s = e.get("session_id")
                totals[s] = totals.get(s, 0) + e.get("total_tokens", 0)
    return totals


def _generator() -> tuple[str, Callable[[Path, int], int]]:
    """bench/gen_log.py's log when it is there (the report benchmarks' own), else ours."""
    try:
        shared = importlib.import_module("gen_log").write_log
    except ImportError:
        return "bench/budget.py's log, 1 line in 5 llm_usage", write_log
    return "bench/gen_log.py's log", lambda path, lines: int(shared(path, lines))


def first_use(lines: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        t = time.perf_counter()
        source, generate = _generator()
        events = generate(path, lines)
        size = path.stat().st_size
        print(
            f"budget: wrote {lines:,} lines ({events:,} llm_usage, {size / 1e6:.0f} MB; {source}) "
            f"in {time.perf_counter() - t:.1f} s"
        )
        ours: list[float] = []
        reader: list[float] = []
        loop: list[float] = []
        expected = plain_loop(path)
        for _ in range(rounds):  # interleaved
            ledger = Ledger(str(path))
            t = time.perf_counter()
            ledger.spent(None, day=True)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            for _event in read_events(path, types={"llm_usage"}):
                pass
            reader.append(time.perf_counter() - t)
            t = time.perf_counter()
            plain_loop(path)
            loop.append(time.perf_counter() - t)
            ledger.close()
        for session, tokens in list(expected.items())[:50]:  # the ledger read it all
            spent, _ = ledger.spent(session, day=False)
            assert spent is not None and spent[1] == tokens, (session, spent, tokens)
    a, r, b = (statistics.median(x) for x in (ours, reader, loop))
    print(
        f"budget: first use on {lines:,} lines (median of {rounds}): ledger {a:.2f} s "
        f"({lines / a / 1e6:.2f} M lines/s); = {a / r:.2f}x the bare read_events loop over "
        f"the file (its floor; bar <= 2.5x), {a / b:.2f}x a json.loads-per-line loop"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--first-use-rounds", type=int, default=3)
    ns = parser.parse_args()
    asyncio.run(per_call(ns.invokes, ns.rounds))
    first_use(ns.lines, ns.first_use_rounds)
