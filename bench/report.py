"""Report speed: `report()` against the bare reader loop over the same log.

A mixed log (1 in 5 lines `llm_usage`, the rest other event types a shared log
carries) is written once; then, interleaved in the same process for several
rounds, the bare reader loop

    for e in read_events(path, types={"llm_usage"}): pass

and `report(path, by=...)` read it (CPU time of each run). The ratio of the
medians is what the report adds to reading. Bar: at most 1.30 (30% over reading). A
"floor" loop (each event's key and numbers fetched, nothing summed) is timed
too, to show how much of the ratio any per-event Python work costs.

Usage: python bench/report.py [--lines N] [--rounds R] [--by session|model|day|hour]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

import orjson

from agent_usage import read_events, report

BAR = 1.30
SUMMED = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "llm_calls",
    "cost_usd",
    "cache_savings_usd",
    "llm_calls_without_usage",
)

_MODELS = (
    ("claude-sonnet-4-5-20250929", "anthropic", 3e-6),
    ("gpt-5-mini-2025-08-07", "openai", 0.25e-6),
    ("acme-internal-7b", "acme", None),
)


def write_log(path: Path, lines: int) -> int:
    """A mixed log of `lines` lines, 1 in 5 `llm_usage`; returns how many those are."""
    n_usage = 0
    with open(path, "wb") as f:
        chunk: list[bytes] = []
        for i in range(lines):
            day, hour = 1 + (i // 40_000) % 28, (i // 2_000) % 24
            ts = f"2026-11-{day:02d}T{hour:02d}:{i % 60:02d}:07.123456+00:00"
            if i % 5 == 0:
                n_usage += 1
                name, provider, rate = _MODELS[i % 3]
                inp, out = 1200 + i % 5000, 80 + i % 700
                cost = None if rate is None else round(inp * rate + out * rate * 5, 8)
                row = {
                    "provider": provider,
                    "input_tokens": inp,
                    "output_tokens": out,
                    "total_tokens": inp + out,
                    "cache_read_input_tokens": inp // 2,
                    "cache_creation_input_tokens": 0,
                    "reasoning_tokens": out // 4,
                    "llm_calls": 2,
                    "cost_usd": cost,
                    "cache_savings_usd": None if cost is None else round(cost / 4, 8),
                }
                event = {
                    "type": "llm_usage",
                    "schema": 1,
                    "event_id": f"{i:032x}",
                    "invoke_id": f"{i:036x}",
                    "timestamp": ts,
                    "session_id": f"session-{i % 997}",
                    "model": name,
                    "status": "ok",
                    "duration_ms": 812.345,
                    **{k: v for k, v in row.items() if k != "provider"},
                    "llm_calls_without_usage": 0,
                    "models": {name: row},
                }
            elif i % 5 in (1, 3):
                event = {
                    "type": "tool_call",
                    "timestamp": ts,
                    "session_id": f"session-{i % 997}",
                    "tool": "search_documents",
                    "args": {"query": "quarterly revenue by region", "k": 8},
                    "duration_ms": 41.2,
                }
            else:
                event = {
                    "type": "timing",
                    "timestamp": ts,
                    "span": "retrieve",
                    "duration_ms": 12.5,
                    "ok": True,
                }
            chunk.append(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
            if len(chunk) >= 10_000:
                f.write(b"".join(chunk))
                chunk.clear()
        f.write(b"".join(chunk))
    return n_usage


def timed(fn: Callable[[], object]) -> float:
    # CPU time of this process: both sides are single-threaded and CPU-bound, and
    # on a shared machine wall time mostly measures the neighbours.
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--by", default="session")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        n_usage = write_log(path, args.lines)
        size_mb = os.path.getsize(path) / 1e6

        def bare() -> None:
            for _ in read_events(path, types={"llm_usage"}):
                pass

        def rep() -> None:
            report(path, by=args.by)

        fields = itemgetter(*SUMMED)

        def floor() -> None:
            # The least a Python aggregation does per event: its key and its
            # numbers, nothing summed. Context for the bar, not a bar.
            for e in read_events(path, types={"llm_usage"}):
                e.get("session_id")
                fields(e)

        bare()  # warm the page cache for both
        bare_times, report_times, floor_times = [], [], []
        for _ in range(args.rounds):
            bare_times.append(timed(bare))
            report_times.append(timed(rep))
            floor_times.append(timed(floor))
        t_bare = statistics.median(bare_times)
        t_report = statistics.median(report_times)
        t_floor = statistics.median(floor_times)

    ratio = t_report / t_bare
    print(f"log: {args.lines} lines, {size_mb:.0f} MB, {n_usage} llm_usage; by {args.by}")
    print(f"bare reader: {t_bare:.3f} s ({n_usage / t_bare:,.0f} events/s)")
    print(f"floor (key + one itemgetter per event): {t_floor / t_bare:.2f}x of the bare reader")
    print(
        f"report: {n_usage} events in {t_report:.3f} s, {ratio:.2f}x of the bare reader "
        f"(bar <= {BAR:.2f}){'' if ratio <= BAR else '  OVER THE BAR'}"
    )


if __name__ == "__main__":
    main()
