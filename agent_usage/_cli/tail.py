"""`agent-usage tail PATH`: follow the log like `tail -F`, one line per new `llm_usage` event.

A missing file is waited for (and read from its start once it appears); a file that
cannot be read, or is not a regular file, is a one-line error and exit code 2.

Each line shows the local time, session, model, tokens in/out, cache hit rate
(cache reads / input) and cost; events whose status is not "ok" say so at the end.
Ctrl-C stops it (exit code 130, no traceback).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._format import printable
from ._common import CliError

__all__ = ["add_arguments", "format_event", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage tail`."""
    parser.add_argument("path", metavar="PATH", help="the events.jsonl to follow")
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="print the events already in the file first, then follow",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="how often to check the file when idle (default 0.25)",
    )


def _printable(value: object, width: int = 0) -> str:
    """Log strings are untrusted: no terminal escape sequences reach the screen."""
    return ("-" if value is None else printable(value)).ljust(width)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _local_time(stamp: object) -> str:
    if not isinstance(stamp, str):
        return _printable(stamp, 19)
    try:
        when = datetime.fromisoformat(stamp[:-1] + "+00:00" if stamp.endswith("Z") else stamp)
    except ValueError:
        return _printable(stamp, 19)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _cost(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "cost unknown"
    return f"${value:.4f}" if value >= 0.01 else f"${value:.6f}"


def format_event(event: Mapping[str, Any]) -> str:
    """One readable line for an `llm_usage` event."""
    inp = _int(event.get("input_tokens"))
    out = _int(event.get("output_tokens"))
    cached = _int(event.get("cache_read_input_tokens"))
    hit = f"{cached / inp:4.0%}" if inp else "   -"
    line = (
        f"{_local_time(event.get('timestamp'))}  "
        f"{_printable(event.get('session_id'), 14)} "
        f"{_printable(event.get('model'), 22)} "
        f"{inp:>9,} in {out:>7,} out  cache {hit}  {_cost(event.get('cost_usd'))}"
    )
    status = event.get("status", "ok")
    if status != "ok":
        line += f"  [{_printable(status)}]"
    return line


def run(args: argparse.Namespace) -> int:
    """Print each new `llm_usage` event until interrupted."""
    from agent_usage._read import follow

    path: str = args.path
    if not 0 < args.interval < float("inf"):  # nan and inf too
        raise CliError(f"--interval must be positive, got {args.interval}")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    # Like `tail -F`: a missing file is waited for; one we cannot read fails now.
    try:
        events = follow(
            path, types={"llm_usage"}, from_start=args.from_start, poll_interval=args.interval
        )
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise
        raise CliError(f"cannot follow {path}: {exc.strerror}") from None
    # Only now, with the file open at its end, is every later append sure to show.
    waiting = "" if os.path.exists(path) else ", waiting for it to appear"
    print(f"following {path}{waiting} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        for event in events:
            print(format_event(event), flush=True)
    except BrokenPipeError:
        # `agent-usage tail ... | head`: the reader left; quiet the flush at exit too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0  # pragma: no cover - follow only ends by an exception
