"""What the subcommands share: `CliError`, the time/prices/format options, reading with notes.

Option values are checked by argparse itself (`type=`, `choices=`), so a bad one
is the parser's one-line error and exit code 2 before any work starts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from .._read import EventReader
from .._report import EventSource, parse_bound

__all__ = [
    "CliError",
    "add_format_argument",
    "add_prices_argument",
    "add_time_arguments",
    "check_time_range",
    "open_source",
    "positive_float",
    "positive_int",
    "print_skip_note",
    "read_with_notes",
    "with_progress",
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
            args.path, since=args.since, until=args.until, prices=getattr(args, "prices", None)
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def with_progress(
    events: Iterable[dict[str, Any]], reader: EventReader, stream: IO[str], *, every: int = 4096
) -> Iterator[dict[str, Any]]:
    """Pass `events` through, drawing a bar of bytes read on `stream` (a TTY)."""
    total = max(reader.bytes_total, 1)
    last = 0.0
    for i, e in enumerate(events, 1):
        if i % every == 0:
            now = time.monotonic()
            if now - last >= 0.2:
                last = now
                share = min(reader.bytes_read / total, 1.0)
                bar = "#" * int(share * 30)
                stream.write(f"\rreading [{bar:<30}] {share * 100:5.1f}%")
                stream.flush()
        yield e
    if last:
        stream.write("\r" + " " * 48 + "\r")
        stream.flush()


def read_with_notes(source: EventSource, sink: Callable[[Iterable[dict[str, Any]]], Any]) -> None:
    """Feed `source` into `sink(events)` with a progress bar on a TTY stderr.

    Raises:
        CliError: the log could not be read to the end.
    """
    events: Iterable[dict[str, Any]] = source
    if sys.stderr.isatty():
        events = with_progress(source, source.reader, sys.stderr)
    try:
        sink(events)
    except (UnicodeDecodeError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CliError(f"cannot read {source.reader.path}: {reason}") from None


def print_skip_note(source: EventSource, malformed: int) -> None:
    """One stderr line when bad lines or malformed events were skipped."""
    parts = []
    if source.skipped:
        parts.append(f"{source.skipped} bad line(s)")
    if malformed:
        parts.append(f"{malformed} llm_usage event(s) with non-numeric fields")
    if parts:
        print(f"agent-usage: note: skipped {' and '.join(parts)}", file=sys.stderr)
