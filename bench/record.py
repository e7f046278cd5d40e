"""Run benchmark scripts and record what they print in docs/benchmarks/, dated and placed.

The figures in the docs are produced here, never typed: each script's output goes to
`docs/benchmarks/<name>.txt` under a header naming the date, the machine (CPU model,
cores, memory), the Python and the versions of the packages the figures depend on.
`docs/benchmarks.md` includes those files.

Usage: python bench/record.py [NAME ...]   (default: every bench/*.py but this one)
       extra arguments for one script: python bench/record.py overhead -- --rounds 15
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks"
PACKAGES = ("langchain-core", "langgraph", "orjson", "duckdb", "msgspec")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return "?"
    return f"{pages / 2**30:.0f} GiB"


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def header() -> str:
    """Where and when the figures below were measured."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"# measured {now} on {_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()}, "
        f"{platform.system()} {platform.machine()}\n"
        f"# Python {platform.python_version()}; {_versions()}\n"
    )


def record(name: str, args: list[str]) -> int:
    """Run bench/<name>.py with args and write its stdout to docs/benchmarks/<name>.txt."""
    script = ROOT / "bench" / f"{name}.py"
    command = [sys.executable, str(script), *args]
    print(f"record: {' '.join(command[1:])}", file=sys.stderr)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        print(f"record: {name} failed (exit {done.returncode}); nothing written", file=sys.stderr)
        return done.returncode
    OUT.mkdir(parents=True, exist_ok=True)
    shown = " ".join(["python", f"bench/{name}.py", *args])
    text = header() + f"# $ {shown}\n" + done.stdout
    (OUT / f"{name}.txt").write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


def main() -> int:
    """Command line: which benchmarks to run, and extra arguments for a single one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bench scripts without .py (default: all)")
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    names = args.names or sorted(
        p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in {"record", "gen_log"}
    )
    if extra and len(names) != 1:
        parser.error("arguments after -- need exactly one benchmark name")
    return max((record(name, extra) for name in names), default=0)


if __name__ == "__main__":
    sys.exit(main())
