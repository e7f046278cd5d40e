"""Reports at scale: `agent-usage report` (both engines) against the loops users write.

A realistic log is generated once (bench/gen_log.py: 80% `llm_usage` events built by the
library's own event builder, 5 models, ~1,000 sessions, 30 days; seeded). Then, each in
its own process so that peak RSS is the reader's own, interleaved for several rounds,
every reader sums it per session:

- `agent-usage report` with the python engine, and with the duckdb engine;
- a plain orjson loop with a dict group-by (the ten lines a user would write);
- the same loop with json.loads;
- a bare DuckDB read_ndjson GROUP BY (typed columns, ignore_errors=true).

Each reader also runs on a small log with 100 garbage lines (torn, wrong types,
negatives, bools, floats, absurd values, bad timestamps) next to known good events: ours
must give exactly the good events' totals. Figures are medians of CPU time (user + sys,
all threads) and wall time per process (the json.loads loop, in no bar, runs once);
bars are ratios in the same run:

- python engine <= plain orjson loop (ratio of CPU times <= 1.00);
- duckdb engine <= 1.5x the bare read_ndjson GROUP BY.

Usage: python bench/report.py [--lines N] [--rounds R] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PY_BAR = 1.00
DUCKDB_BAR = 1.5
SUMMED = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "llm_calls",
)


# --- the readers (each runs in a child process) ---------------------------------------


def _ours(path: str, engine: str) -> tuple[int, int]:
    from agent_usage import report

    rows = report(path, by="session", engine=engine)
    return sum(r["events"] for r in rows), sum(r["input_tokens"] for r in rows)


def _loop(path: str, loads: Callable[[bytes], Any]) -> tuple[int, int]:
    groups: dict[Any, list[float]] = {}
    with open(path, "rb") as f:
        for line in f:
            e = loads(line)
            if e.get("type") != "llm_usage":
                continue
            g = groups.get(e["session_id"])
            if g is None:
                g = groups[e["session_id"]] = [0] * (len(SUMMED) + 2)
            for i, k in enumerate(SUMMED):
                g[i] += e[k]
            g[-2] += e["cost_usd"] or 0.0
            g[-1] += 1
    return int(sum(g[-1] for g in groups.values())), int(sum(g[0] for g in groups.values()))


def _bare_duckdb(path: str) -> tuple[int, int]:
    import duckdb

    columns = ", ".join(f"{f}: 'BIGINT'" for f in SUMMED)
    sums = ", ".join(f"sum({f})" for f in SUMMED)
    query = (
        f"SELECT session_id, count(*), {sums}, sum(cost_usd) FROM read_ndjson('{path}',"
        f" columns={{type: 'VARCHAR', session_id: 'VARCHAR', {columns}, cost_usd: 'DOUBLE'}},"
        " ignore_errors=true) WHERE type = 'llm_usage' GROUP BY session_id"
    )
    rows = duckdb.connect().execute(query).fetchall()
    return sum(r[1] for r in rows), sum(r[2] or 0 for r in rows)


READERS: dict[str, Callable[[str], tuple[int, int]]] = {
    "agent-usage report (python engine)": lambda p: _ours(p, "python"),
    "agent-usage report (duckdb engine)": lambda p: _ours(p, "duckdb"),
    "plain orjson loop + dict group-by": lambda p: _loop(p, __import__("orjson").loads),
    "json.loads loop": lambda p: _loop(p, json.loads),
    "bare DuckDB read_ndjson GROUP BY": _bare_duckdb,
}
_PY, _DB, _ORJSON, _JSON, _BARE = READERS


def _child(name: str, path: str) -> None:
    try:
        events, tokens = READERS[name](path)
        result: dict[str, Any] = {"events": events, "input_tokens": tokens}
    except Exception as exc:  # a naive reader on garbage: report how it fails
        result = {"error": type(exc).__name__}
    # This process's own peak (VmHWM): ru_maxrss would include the parent's before exec.
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM:"))
    result["peak_mb"] = int(hwm.split()[1]) / 1024
    print(json.dumps(result))


# --- the parent --------------------------------------------------------------------


def run(name: str, path: str) -> tuple[float, float, float, dict[str, Any]]:
    """(wall s, cpu s, peak RSS MB, result) of one reader in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", name, path],
        stdout=subprocess.PIPE,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{name} exited {proc.returncode}")
    result = json.loads(out)
    return wall, usage.ru_utime + usage.ru_stime, result["peak_mb"], result


def garbage_log(path: Path) -> dict[str, int]:
    """1,000 good lines and 100 garbage lines; returns the good lines' totals."""
    from gen_log import append_garbage, write_log

    write_log(path, 1_000, seed=7)
    expected = {"events": 0, "input_tokens": 0}
    with open(path, "rb") as f:
        for line in f:
            e = json.loads(line)
            if e["type"] == "llm_usage":
                expected["events"] += 1
                expected["input_tokens"] += e["input_tokens"]
    append_garbage(path, 100)
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", metavar="PATH", help="reuse (or keep) the generated log here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(args.keep) if args.keep else Path(tmp) / "events.jsonl"
        if not log.exists():
            subprocess.run(
                [
                    sys.executable,
                    os.path.join(os.path.dirname(__file__), "gen_log.py"),
                    str(log),
                    "--lines",
                    str(args.lines),
                ],
                check=True,
                env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        dirty = Path(tmp) / "garbage.jsonl"
        expected = garbage_log(dirty)
        walls: dict[str, list[float]] = {n: [] for n in READERS}
        cpus: dict[str, list[float]] = {n: [] for n in READERS}
        rss: dict[str, float] = {}
        for round_ in range(args.rounds):
            for name in READERS:
                if name == _JSON and round_:
                    continue  # context, not a bar: one run keeps the default under 3 min
                took, used, peak, _result = run(name, str(log))
                walls[name].append(took)
                cpus[name].append(used)
                rss[name] = max(rss.get(name, 0.0), peak)
        on_garbage = {name: run(name, str(dirty))[3] for name in READERS}
        size_mb = log.stat().st_size / 1e6

    wall = {n: statistics.median(v) for n, v in walls.items()}
    cpu = {n: statistics.median(v) for n, v in cpus.items()}
    print(
        f"log: {args.lines:,} lines, {size_mb:.0f} MB (80% llm_usage); report --by session; "
        f"{args.rounds} rounds, whole process, medians; ratios to agent-usage report (python)"
    )
    for name in READERS:
        print(
            f"{name}: wall {wall[name]:.2f} s ({wall[name] / wall[_PY]:.2f}), "
            f"cpu {cpu[name]:.2f} s ({cpu[name] / cpu[_PY]:.2f}), "
            f"peak RSS {rss[name]:.0f} MB; on 100 garbage lines: "
            f"{_verdict(on_garbage[name], expected)}"
        )
    py = cpu[_PY] / cpu[_ORJSON]
    db = cpu[_DB] / cpu[_BARE]
    db_wall = wall[_DB] / wall[_BARE]
    print(
        f"bar: python engine / plain orjson loop = {py:.2f} cpu (<= {PY_BAR:.2f})"
        + ("" if py <= PY_BAR else "  OVER THE BAR")
    )
    print(
        f"bar: duckdb engine / bare read_ndjson = {db:.2f} cpu, {db_wall:.2f} wall "
        f"(<= {DUCKDB_BAR:.2f})" + ("" if db <= DUCKDB_BAR else "  OVER THE BAR")
    )


def _verdict(result: dict[str, Any], expected: dict[str, int]) -> str:
    if "error" in result:
        return f"crashes ({result['error']})"
    extra_events = result["events"] - expected["events"]
    extra_tokens = result["input_tokens"] - expected["input_tokens"]
    if not extra_events and not extra_tokens:
        return "exact (skips them, totals unchanged)"
    return f"wrong: {extra_events:+,} events, {extra_tokens:+,} input tokens"


if __name__ == "__main__":
    main()
