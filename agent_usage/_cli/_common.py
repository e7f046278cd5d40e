"""What the subcommands share: `CliError`, the time/prices/format options, reading with notes.

Option values are checked by argparse itself (`type=`, `choices=`), so a bad one
is the parser's one-line error and exit code 2 before any work starts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from .._engine_python import LogFiles
from .._report import ENGINES, EventSource, parse_bound

__all__ = [
    "CliError",
    "add_engine_argument",
    "add_format_argument",
    "add_paths_argument",
    "add_prices_argument",
    "add_time_arguments",
    "check_time_range",
    "open_source",
    "positive_float",
    "positive_int",
    "print_skip_note",
    "read_with_notes",
]


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def positive_int(text: str) -> int:
    """An argparse `type=`: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse `type=`: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _bound(end: bool) -> Callable[[str], str]:
    def check(text: str) -> str:
        try:
            parse_bound(text, end=end)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return check


def add_time_arguments(parser: argparse.ArgumentParser) -> None:
    """--since/--until, the same for every command that reads the log."""
    parser.add_argument(
        "--since", type=_bound(False), metavar="ISO", help="from this date/datetime (UTC)"
    )
    parser.add_argument(
        "--until",
        type=_bound(True),
        metavar="ISO",
        help="before this datetime; a date includes that day",
    )


def add_paths_argument(parser: argparse.ArgumentParser) -> None:
    """PATH...: one or more logs or globs (one log per worker or host), read as one."""
    parser.add_argument(
        "path",
        metavar="PATH",
        nargs="+",
        help="event logs or globs (quote them); each log's rotated files are read too",
    )


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """--engine python|duckdb (the DuckDB engine needs the [duckdb] extra)."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="python",
        help="python (default) or duckdb (needs the [duckdb] extra): the same sums",
    )


def add_prices_argument(parser: argparse.ArgumentParser) -> None:
    """--prices FILE: re-price every event."""
    parser.add_argument("--prices", metavar="FILE", help="re-price with a TOML/JSON price file")


def add_format_argument(parser: argparse.ArgumentParser, *formats: str) -> None:
    """--format, one of `formats` (the first is the default)."""
    parser.add_argument(
        "--format",
        choices=formats,
        default=formats[0],
        help=f"{formats[0]} (default), " + " or ".join(formats[1:]),
    )


def check_time_range(since: str | None, until: str | None) -> None:
    """Refuse an empty range: --since at or after --until is a mistake, not "no events".

    Raises:
        CliError: the range holds no moment.
    """
    if since is not None and until is not None:
        lo, hi = parse_bound(since), parse_bound(until, end=True)
        if lo is not None and hi is not None and lo >= hi:
            raise CliError(f"--since {since} is not before --until {until}: nothing to read")


def open_source(args: argparse.Namespace) -> EventSource:
    """The event source for parsed CLI args; an empty time range or bad prices is `CliError`."""
    check_time_range(args.since, args.until)
    try:
        return EventSource(
            args.path,
            since=args.since,
            until=args.until,
            prices=getattr(args, "prices", None),
            engine=getattr(args, "engine", "python"),
        )
    except (ValueError, ImportError) as exc:
        raise CliError(str(exc)) from None


def read_with_notes(source: EventSource, sink: Callable[[EventSource], Any]) -> None:
    """Feed `source` into `sink(source)`, with a progress bar on a TTY stderr.

    The sink gets the source itself (not a generator over it), so aggregates take
    their fast typed path; the bar is drawn from the reader's chunk callback.

    Raises:
        CliError: the log could not be read to the end.
    """
    if sys.stderr.isatty():
        source.reader.on_chunk = _ProgressBar(source.reader, sys.stderr)
    try:
        sink(source)
    except (UnicodeDecodeError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CliError(f"cannot read {source.reader.path}: {reason}") from None
    finally:
        if isinstance(source.reader.on_chunk, _ProgressBar):
            source.reader.on_chunk.clear()


class _ProgressBar:
    """Draws "reading [####   ] 42.0%" at most five times a second."""

    def __init__(self, reader: LogFiles, stream: IO[str]) -> None:
        self.reader, self.stream, self.last = reader, stream, 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2:
            self.last = now
            share = min(self.reader.bytes_read / max(self.reader.bytes_total, 1), 1.0)
            self.stream.write(f"\rreading [{'#' * int(share * 30):<30}] {share * 100:5.1f}%")
            self.stream.flush()

    def clear(self) -> None:
        if self.last:
            self.stream.write("\r" + " " * 48 + "\r")
            self.stream.flush()


def print_skip_note(source: EventSource, malformed: int) -> None:
    """One stderr line when bad lines or malformed events were skipped."""
    parts = []
    if source.skipped:
        parts.append(f"{source.skipped} bad line(s)")
    if malformed:
        parts.append(f"{malformed} malformed llm_usage event(s) (a field of the wrong type)")
    if parts:
        print(f"agent-usage: note: skipped {' and '.join(parts)}", file=sys.stderr)
