"""`agent-usage report`: report rows as an 80-column table, CSV or JSON, with a
progress bar on a TTY; also the number formats and CLI helpers the dashboard shares.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ._engine_python import LogFiles
from ._report import GROUP_KEYS, ROW_FIELDS, Aggregate, EventSource, Row, parse_bound

__all__ = [
    "add_arguments",
    "add_time_arguments",
    "format_csv",
    "format_money",
    "format_rate",
    "format_table",
    "format_tokens",
    "open_source",
    "print_skip_note",
    "read_with_notes",
    "run",
    "with_progress",
]

# --- formatting ----------------------------------------------------------------


def format_tokens(n: float | None) -> str:
    """12, 12.3k, 4.5M, 1.2B."""
    if n is None:
        return "-"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            value = n / limit
            return f"{value:.0f}{suffix}" if abs(value) >= 100 else f"{value:.1f}{suffix}"
    return f"{n:.0f}"


def format_money(x: float | None) -> str:
    """$1.23, $0.0042, $12.3k; "n/a" when unknown."""
    if x is None:
        return "n/a"
    if abs(x) >= 10_000:
        return "$" + format_tokens(x)
    if abs(x) >= 0.01 or x == 0:
        return f"${x:,.2f}"
    return f"${x:.4f}"


def format_rate(x: float | None) -> str:
    """A share as a percentage: 42.1%."""
    return "-" if x is None else f"{x * 100:.1f}%"


# key width 17 + 8 right-aligned columns with their spaces: 79 characters.
_COLUMNS = (
    ("events", 6, format_tokens),
    ("llm_calls", 6, format_tokens),
    ("input_tokens", 7, format_tokens),
    ("output_tokens", 6, format_tokens),
    ("cache_hit_rate", 6, format_rate),
    ("reasoning_tokens", 6, format_tokens),
    ("cost_usd", 9, format_money),
    ("cache_savings_usd", 8, format_money),
)
_HEADERS = {
    "events": "events",
    "llm_calls": "calls",
    "input_tokens": "input",
    "output_tokens": "output",
    "cache_hit_rate": "cache",
    "reasoning_tokens": "reason",
    "cost_usd": "cost",
    "cache_savings_usd": "saved",
}
_KEY_WIDTH = 17


def _cell_key(value: Any) -> str:
    text = "(none)" if value is None else str(value)
    text = text.replace("\n", " ").replace("\t", " ")
    return text if len(text) <= _KEY_WIDTH else text[: _KEY_WIDTH - 1] + "…"


def format_table(rows: list[Row], total: Row, *, key_name: str) -> str:
    """Rows as an aligned text table that fits an 80-column terminal."""
    lines = [f"{key_name:<{_KEY_WIDTH}}" + "".join(f" {_HEADERS[f]:>{w}}" for f, w, _ in _COLUMNS)]
    for row in [*rows, total]:
        if row is total:
            lines.append("-" * len(lines[0]))
        cells = []
        for f, w, fmt in _COLUMNS:
            text = fmt(row[f])
            if f == "cost_usd" and row["unpriced_events"] and row["cost_usd"] is not None:
                text += "*"  # part of this group's cost is unknown
            cells.append(f" {text:>{w}}")
        lines.append(f"{_cell_key(row[key_name]):<{_KEY_WIDTH}}" + "".join(cells))
    unpriced = total["unpriced_events"]
    notes = []
    if unpriced:
        notes.append(
            f"* {unpriced} event(s) used a model with no price: its share is not in the cost"
        )
    if total["llm_calls_without_usage"]:
        notes.append(f"{total['llm_calls_without_usage']} LLM call(s) reported no usage")
    return "\n".join(lines + notes) + "\n"


def format_csv(rows: list[Row], *, key_name: str) -> str:
    """Rows as CSV with a header; unknown values are empty cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([key_name, *ROW_FIELDS])
    for row in rows:
        writer.writerow(["" if row[k] is None else row[k] for k in (key_name, *ROW_FIELDS)])
    return buf.getvalue()


# --- progress ------------------------------------------------------------------


def with_progress(
    events: Iterable[dict[str, Any]], reader: LogFiles, stream: IO[str], *, every: int = 4096
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


# --- CLI -----------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage report`."""
    parser.add_argument("path", metavar="PATH", help="the events.jsonl log")
    parser.add_argument("--by", default="session", help="session (default), model, day or hour")
    add_time_arguments(parser)
    parser.add_argument("--format", default="table", help="table (default), json or csv")
    parser.add_argument(
        "--top", type=int, default=None, metavar="N", help="only the N costliest groups"
    )
    parser.add_argument(
        "--prices", default=None, metavar="FILE", help="re-price with a TOML/JSON price file"
    )


def add_time_arguments(parser: argparse.ArgumentParser) -> None:
    """--since/--until, shared with the dashboard."""
    parser.add_argument(
        "--since", default=None, metavar="ISO", help="from this date/datetime (UTC)"
    )
    parser.add_argument(
        "--until",
        default=None,
        metavar="ISO",
        help="before this datetime; a date includes that day",
    )


def open_source(args: argparse.Namespace) -> EventSource:
    """The event source for parsed CLI args; bad values become `CliError`."""
    from .cli import CliError

    for option, value, end in (("--since", args.since, False), ("--until", args.until, True)):
        try:
            parse_bound(value, end=end)
        except ValueError as exc:
            raise CliError(f"{option}: {exc}") from None
    try:
        return EventSource(
            args.path, since=args.since, until=args.until, prices=getattr(args, "prices", None)
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


def read_with_notes(source: EventSource, sink: Any) -> None:
    """Feed `source` into `sink(events)` with a progress bar on a TTY stderr, then note skips."""
    events: Iterable[dict[str, Any]] = source
    if sys.stderr.isatty():
        events = with_progress(source, source.reader, sys.stderr)
    try:
        sink(events)
    except (UnicodeDecodeError, OSError) as exc:
        from .cli import CliError

        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CliError(f"cannot read {source.reader.path}: {reason}") from None


def run(args: argparse.Namespace) -> int:
    """Run `agent-usage report`."""
    from .cli import CliError

    if args.by not in GROUP_KEYS:
        raise CliError(f"unknown --by {args.by!r}: use one of {', '.join(GROUP_KEYS)}")
    if args.format not in ("table", "json", "csv"):
        raise CliError(f"unknown --format {args.format!r}: use table, json or csv")
    if args.top is not None and args.top < 1:
        raise CliError(f"--top must be a positive integer, got {args.top}")
    source = open_source(args)
    agg = Aggregate(by=args.by)
    read_with_notes(source, agg.feed)
    rows = agg.rows(top=args.top)
    if args.format == "json":
        import orjson

        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format == "csv":
        sys.stdout.write(format_csv(rows, key_name=agg.key_name))
    elif rows:
        sys.stdout.write(format_table(rows, agg.total_row(), key_name=agg.key_name))
    else:
        print("no llm_usage events" + (" in that time range" if args.since or args.until else ""))
    print_skip_note(source, agg.malformed)
    return 0


def print_skip_note(source: EventSource, malformed: int) -> None:
    """One stderr line when bad lines or malformed events were skipped."""
    parts = []
    if source.skipped:
        parts.append(f"{source.skipped} bad line(s)")
    if malformed:
        parts.append(f"{malformed} llm_usage event(s) with non-numeric fields")
    if parts:
        print(f"agent-usage: note: skipped {' and '.join(parts)}", file=sys.stderr)
