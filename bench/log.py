"""Event log speed: appends, and read + aggregate by session, against baselines in one run.

Every figure is a ratio against a baseline measured in the same process, the median
of several interleaved rounds (these machines are noisy):

- append: `EventLog.append` vs `open(path, "a")` + `json.dumps` per event (the usual
  hand-written way; bar >= 8x) and vs the floor, one `orjson.dumps` + one `os.write`
  per event on an O_APPEND descriptor (bar >= 0.6).
- read: `read_events(types={"llm_usage"})` summed by session, vs a `json.loads`-per-line
  loop over the same file (bar >= 4x), on N lines where 1 in 5 is `llm_usage`.
- memory: heap peak (tracemalloc) and RSS of a fresh process reading 1x and 4x the
  file: flat, not growing.

Usage: python bench/log.py [--lines N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from agent_usage import EventLog, read_events

MODELS = ["claude-sonnet-4-5-20250929", "gpt-5-mini-2025-08-07", "gemini-2.5-flash"]


def usage_event(rng: random.Random, i: int) -> dict[str, Any]:
    """An `llm_usage` event shaped like the ones `build_event` writes."""
    model = rng.choice(MODELS)
    inp, out = rng.randint(200, 30_000), rng.randint(10, 2_000)
    cached = rng.randint(0, inp // 2)
    row = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": rng.randint(0, 500),
        "reasoning_tokens": rng.randint(0, out // 2),
    }
    cost = round(inp * 3e-6 + out * 15e-6, 6)
    return {
        "type": "llm_usage",
        "schema": 1,
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "invoke_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": f"2026-11-22T{i % 24:02d}:{i % 60:02d}:09.123456+00:00",
        "session_id": f"session-{rng.randint(0, 999)}",
        "model": model,
        "status": "ok",
        "duration_ms": round(rng.uniform(200, 9000), 3),
        **row,
        "llm_calls": 1,
        "llm_calls_without_usage": 0,
        "cost_usd": cost,
        "cache_savings_usd": round(cached * 2.7e-6, 6),
        "models": {model: {"provider": "anthropic", **row, "llm_calls": 1, "cost_usd": cost}},
        "metadata": {"app": "support-bot", "env": "prod"},
    }


def other_event(rng: random.Random, i: int) -> dict[str, Any]:
    """The other event types other code writes into the same file."""
    common = {
        "timestamp": f"2026-11-22T{i % 24:02d}:{i % 60:02d}:09.123456+00:00",
        "session_id": f"session-{rng.randint(0, 999)}",
    }
    kind = i % 3
    if kind == 0:
        return {
            "type": "tool_call",
            **common,
            "tool": rng.choice(["search", "fetch_url", "sql"]),
            "args": {"query": "refund policy for order " + str(rng.randint(1, 10**6))},
            "duration_ms": round(rng.uniform(5, 900), 3),
        }
    if kind == 1:
        return {"type": "timing", **common, "span": "retrieve", "ms": rng.uniform(1, 50)}
    return {"type": "error", **common, "error": "TimeoutError", "message": "upstream timed out"}


def median_rate(samples: list[float]) -> float:
    return statistics.median(samples)


# ---------------------------------------------------------------------------- append


def bench_append(tmp: Path, n: int, rounds: int) -> None:
    rng = random.Random(1)
    events = [usage_event(rng, i) for i in range(1000)]

    def naive(path: Path, count: int) -> None:
        for i in range(count):
            with open(path, "a") as f:
                f.write(json.dumps(events[i % 1000]) + "\n")

    def floor(path: Path, count: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        dumps, write, opt = orjson.dumps, os.write, orjson.OPT_APPEND_NEWLINE
        for i in range(count):
            write(fd, dumps(events[i % 1000], option=opt))
        os.close(fd)

    def ours(path: Path, count: int) -> None:
        with EventLog(path) as log:
            append = log.append
            for i in range(count):
                append(events[i % 1000])

    # The naive way is ~30x slower: fewer events keep the round short; rates compare.
    variants: dict[str, tuple[Callable[[Path, int], None], int]] = {
        "open+json.dumps": (naive, max(n // 10, 1000)),
        "floor": (floor, n),
        "EventLog": (ours, n),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (fn, count) in variants.items():
            path = tmp / f"append-{name}.jsonl"
            start = time.perf_counter()
            fn(path, count)
            rates[name].append(count / (time.perf_counter() - start))
            path.unlink()
    med = {k: median_rate(v) for k, v in rates.items()}
    print(
        f"append: {rounds} rounds, medians: "
        + ", ".join(f"{k} {v:,.0f} events/s" for k, v in med.items())
    )
    print(
        f"append: {med['EventLog'] / med['open+json.dumps']:.1f}x open+json.dumps, "
        f"{med['EventLog'] / med['floor']:.2f}x floor (bar >=8x, >=0.6)"
    )


# ---------------------------------------------------------------------------- read


def write_mixed_log(path: Path, lines: int) -> None:
    rng = random.Random(2)
    with open(path, "wb") as f:
        batch: list[bytes] = []
        for i in range(lines):
            event = usage_event(rng, i) if i % 5 == 0 else other_event(rng, i)
            batch.append(orjson.dumps(event))
            if len(batch) == 10_000:
                f.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            f.write(b"\n".join(batch) + b"\n")


def aggregate_ours(path: Path) -> dict[Any, list[float]]:
    totals: dict[Any, list[float]] = {}
    for event in read_events(path, types={"llm_usage"}):
        row = totals.get(event["session_id"])
        if row is None:
            row = totals[event["session_id"]] = [0, 0, 0.0, 0]
        row[0] += event["total_tokens"]
        row[1] += event["cache_read_input_tokens"]
        row[2] += event["cost_usd"]
        row[3] += 1
    return totals


def aggregate_json_loads(path: Path) -> dict[Any, list[float]]:
    totals: dict[Any, list[float]] = {}
    with open(path, "rb") as f:
        for line in f:
            event = json.loads(line)
            if event.get("type") != "llm_usage":
                continue
            row = totals.get(event["session_id"])
            if row is None:
                row = totals[event["session_id"]] = [0, 0, 0.0, 0]
            row[0] += event["total_tokens"]
            row[1] += event["cache_read_input_tokens"]
            row[2] += event["cost_usd"]
            row[3] += 1
    return totals


def bench_read(path: Path, lines: int, rounds: int) -> None:
    variants = {"json.loads loop": aggregate_json_loads, "read_events": aggregate_ours}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    results = {}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            results[name] = fn(path)
            seconds[name].append(time.perf_counter() - start)
    assert results["read_events"] == results["json.loads loop"], "aggregates differ"
    med = {k: statistics.median(v) for k, v in seconds.items()}
    usage = sum(int(r[3]) for r in results["read_events"].values())
    size_mb = path.stat().st_size / 1e6
    print(
        f"read: {lines:,} lines ({size_mb:,.0f} MB, {usage:,} llm_usage), {rounds} rounds, "
        f"medians: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items())
    )
    print(
        f"read: {med['json.loads loop'] / med['read_events']:.1f}x json.loads loop "
        f"(bar >=4x); {lines / med['read_events']:,.0f} lines/s, "
        f"{usage / med['read_events']:,.0f} llm_usage events/s"
    )


def peak_rss_child(path: Path) -> None:
    """In a fresh process: read and aggregate, timed, then again under tracemalloc."""
    rss_before = current_rss_kb()
    start = time.perf_counter()
    totals = aggregate_ours(path)
    elapsed = time.perf_counter() - start
    # ru_maxrss would show the parent's size (Linux carries it over fork): use statm.
    rss_after = current_rss_kb()
    tracemalloc.start()
    aggregate_ours(path)
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    events = sum(int(r[3]) for r in totals.values())
    print(
        json.dumps(
            {
                "rss_before_kb": rss_before,
                "rss_after_kb": rss_after,
                "heap_peak_kb": heap_peak / 1024,
                "events": events,
                "s": elapsed,
            }
        )
    )


def current_rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def bench_memory(path: Path, tmp: Path, lines: int) -> None:
    big = tmp / "events-4x.jsonl"
    with open(big, "wb") as out:
        for _ in range(4):
            with open(path, "rb") as f:
                shutil.copyfileobj(f, out, 16 << 20)
    figures = []
    for label, file in (("1x", path), ("4x", big)):
        stdout = subprocess.run(
            [sys.executable, __file__, "--peak-rss-of", str(file)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        m = json.loads(stdout)
        figures.append(m)
        print(
            f"memory: {label} ({lines * int(label[0]):,} lines, "
            f"{file.stat().st_size / 1e6:,.0f} MB): read_events heap peak "
            f"{m['heap_peak_kb'] / 1024:.1f} MB (tracemalloc), process RSS "
            f"{m['rss_before_kb'] / 1024:.1f} MB before, {m['rss_after_kb'] / 1024:.1f} MB after; "
            f"{m['events'] / m['s']:,.0f} llm_usage events/s"
        )
    heap = (figures[1]["heap_peak_kb"] - figures[0]["heap_peak_kb"]) / 1024
    rss = (figures[1]["rss_after_kb"] - figures[0]["rss_after_kb"]) / 1024
    print(
        f"memory: 4x the file changes heap peak by {heap:+.1f} MB and RSS after by {rss:+.1f} MB "
        "(flat: streaming, not load-all)"
    )
    big.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the read log")
    parser.add_argument("--appends", type=int, default=200_000, help="events per append round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peak-rss-of", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.peak_rss_of:
        peak_rss_child(ns.peak_rss_of)
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bench_append(tmp, min(ns.appends, ns.lines), ns.rounds)
        path = tmp / "events.jsonl"
        write_mixed_log(path, ns.lines)
        bench_read(path, ns.lines, max(3, ns.rounds // 2 + 1))
        bench_memory(path, tmp, ns.lines)


if __name__ == "__main__":
    main()
