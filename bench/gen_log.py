"""A realistic, seeded event log for the report benchmarks.

80% of the lines are `llm_usage` events built by the library's own event builder
(`agent_usage._event.build_event`, priced by its own `Pricer`) over 5 models
(one of them unpriced), about 1,000 sessions and 30 days; 20% are other event
types a shared log carries (tool calls, timings, errors). The same seed writes the
same file.

A pool of invokes is built once through `build_event` (pricing is the slow part);
each line takes one of them and gets its own ids, session and timestamp.

Usage: python bench/gen_log.py OUT.jsonl [--lines N] [--seed S] [--garbage N]
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from agent_usage._event import Call, Tally, build_event
from agent_usage._pricing import Pricer
from agent_usage._usage import Usage

# (model, provider): four priced by the price library, one internal model unpriced.
MODELS = (
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gpt-5-mini", "openai"),
    ("gemini-2.5-flash", "google"),
    ("acme-internal-7b", "acme"),
)
SESSIONS = 1_000
DAYS = 30
START = datetime(2026, 10, 1, tzinfo=timezone.utc)
_POOL = 4_000


def _usage(rng: random.Random) -> Usage:
    inp = rng.randint(800, 60_000)
    read = rng.randint(0, inp // 2) if rng.random() < 0.7 else 0
    write = rng.randint(0, inp // 10) if rng.random() < 0.3 else 0
    out = rng.randint(20, 4_000)
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=write,
        cache_creation_1h_input_tokens=write if write and rng.random() < 0.2 else None,
        reasoning_tokens=rng.randint(0, out // 2) if rng.random() < 0.4 else 0,
    )


def invoke_pool(rng: random.Random, size: int = _POOL) -> list[dict[str, Any]]:
    """`size` events from the library's builder: 1-4 calls each, 1 in 6 over two models."""
    pricer = Pricer()
    pool = []
    for i in range(size):
        tally = Tally()
        main = rng.choice(MODELS)
        for _ in range(rng.randint(1, 4)):
            name, provider = rng.choice(MODELS) if rng.random() < 1 / 6 else main
            tally.calls.append(Call(name, provider, _usage(rng)))
        if rng.random() < 0.05:
            tally.without_usage.append(None)
        status = "ok" if rng.random() < 0.97 else "error"
        event = build_event(
            tally,
            invoke_id=f"{i:032x}",
            session_id="s",
            status=status,  # type: ignore[arg-type]
            pricer=pricer,
            metadata={"app": "support-bot", "env": "prod"},
        )
        assert event is not None
        pool.append(dict(event))
    return pool


def _other(rng: random.Random, ts: str, session: str) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.6:
        return {
            "type": "tool_call",
            "timestamp": ts,
            "session_id": session,
            "tool": "search_documents",
            "args": {"query": "quarterly revenue by region", "k": 8},
            "duration_ms": round(rng.uniform(5, 400), 3),
        }
    if kind < 0.9:
        return {"type": "timing", "timestamp": ts, "span": "retrieve", "duration_ms": 12.5}
    return {"type": "error", "timestamp": ts, "session_id": session, "error": "TimeoutError"}


def write_log(path: str | Path, lines: int, *, seed: int = 16, hosts: int = 0) -> int:
    """Write `lines` lines to `path`; returns how many are `llm_usage` events.

    With `hosts`, every event carries a "host" field (one of that many).
    """
    rng = random.Random(seed)
    pool = invoke_pool(rng)
    span = DAYS * 86_400
    dumps = orjson.dumps
    n_usage = 0
    with open(path, "wb") as f:
        chunk: list[bytes] = []
        for i in range(lines):
            # Roughly in time order, as a log is.
            when = START + timedelta(seconds=span * i / lines + rng.random())
            ts = when.isoformat()
            session = f"session-{rng.randrange(SESSIONS):04d}"
            if rng.random() < 0.8:
                n_usage += 1
                event = dict(pool[rng.randrange(len(pool))])
                event["event_id"] = f"{rng.getrandbits(128):032x}"
                event["timestamp"] = ts
                event["session_id"] = session
            else:
                event = _other(rng, ts, session)
            if hosts:
                event["host"] = f"worker-{rng.randrange(hosts):02d}"
            chunk.append(dumps(event))
            if len(chunk) >= 10_000:
                chunk.append(b"")
                f.write(b"\n".join(chunk))
                chunk.clear()
        if chunk:
            chunk.append(b"")
            f.write(b"\n".join(chunk))
    return n_usage


# Lines that break naive readers: torn, wrong types, absurd numbers, foreign objects.
GARBAGE = (
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "input_tokens": 12',
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "session_id": ["a"],'
    b' "input_tokens": 1000, "output_tokens": 200, "total_tokens": 1200, "llm_calls": 1}',
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "session_id": "g",'
    b' "input_tokens": "1000", "output_tokens": 200, "total_tokens": 1200, "llm_calls": 1}',
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "session_id": "g",'
    b' "input_tokens": -1000, "output_tokens": 200, "total_tokens": -800, "llm_calls": 1}',
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "session_id": "g",'
    b' "input_tokens": true, "output_tokens": 200, "total_tokens": 201, "llm_calls": 1}',
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "session_id": "g",'
    b' "input_tokens": 1000.5, "output_tokens": 200, "total_tokens": 1200, "llm_calls": 1}',
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "session_id": "g",'
    b' "input_tokens": 1000000000000000000000000000000, "output_tokens": 1, "llm_calls": 1}',
    b'{"type": "llm_usage", "timestamp": "not a date", "session_id": "g",'
    b' "input_tokens": 1000, "output_tokens": 200, "total_tokens": 1200, "llm_calls": 1}',
    b'{"type": "llm_usage", "timestamp": "2026-10-02T00:00:00+00:00", "session_id": "g",'
    b' "input_tokens": 1000, "output_tokens": 200, "cost_usd": 1e308, "llm_calls": 1}',
    b"[1, 2, 3]",
)


def append_garbage(path: str | Path, n: int = 100) -> None:
    """Append `n` bad lines (cycling through GARBAGE), each on its own line."""
    with open(path, "ab") as f:
        f.write(b"\n".join(GARBAGE[i % len(GARBAGE)] for i in range(n)) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--hosts", type=int, default=0)
    parser.add_argument("--garbage", type=int, default=0, help="append N bad lines")
    args = parser.parse_args()
    n = write_log(args.out, args.lines, seed=args.seed, hosts=args.hosts)
    if args.garbage:
        append_garbage(args.out, args.garbage)
    print(f"wrote {args.out}: {args.lines} lines, {n} llm_usage")


if __name__ == "__main__":
    main()
