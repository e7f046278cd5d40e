"""`agent-usage report`: report rows as a table, CSV or JSON, with a progress bar on a TTY.

Strings from the log are untrusted here as everywhere: the table shows control
characters as visible escapes, CSV cells that a spreadsheet would run as a
formula get a leading quote, and group keys are never cut (two versions of a
model must not look alike).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys

from .._format import csv_safe, format_money, format_rate, format_tokens, printable
from .._report import GROUP_KEYS, ROW_FIELDS, Aggregate, Row
from ._common import (
    add_engine_argument,
    add_format_argument,
    add_paths_argument,
    add_prices_argument,
    add_time_arguments,
    open_source,
    positive_int,
    print_skip_note,
    read_with_notes,
)

__all__ = ["add_arguments", "format_csv", "format_table", "run"]

# The key column is at least this wide, and 8 right-aligned columns with their
# spaces follow: 79 characters while keys fit in it.
_KEY_WIDTH = 17
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


def format_table(
    rows: list[Row], total: Row, *, key_name: str, hidden: int = 0, noun: str = "group"
) -> str:
    """Rows as an aligned text table, then the total and notes.

    Keys are shown whole, control characters escaped; the key column widens
    for a long key rather than cutting it. `hidden` groups were left out by --top.
    """
    keys = [printable(row[key_name]) for row in rows]
    width = max([_KEY_WIDTH, *map(len, keys)])
    lines = [f"{key_name:<{width}}" + "".join(f" {_HEADERS[f]:>{w}}" for f, w, _ in _COLUMNS)]
    for key, row in [*zip(keys, rows, strict=True), ("total", total)]:
        if row is total:
            lines.append("-" * len(lines[0]))
        cells = []
        for f, w, fmt in _COLUMNS:
            text = fmt(row[f])
            if f == "cost_usd" and row["unpriced_events"] and row["cost_usd"] is not None:
                text += "*"  # part of this group's cost is unknown
            cells.append(f" {text:>{w}}")
        lines.append(f"{key:<{width}}" + "".join(cells))
    notes = []
    if hidden:
        notes.append(f"{hidden} more {noun}(s) not shown (--top); the total includes them")
    unpriced = total["unpriced_events"]
    if unpriced:
        notes.append(
            f"* {unpriced} event(s) used a model with no price: its share is not in the cost"
        )
    if total["llm_calls_without_usage"]:
        notes.append(f"{total['llm_calls_without_usage']} LLM call(s) reported no usage")
    return "\n".join(lines + notes) + "\n"


def format_csv(rows: list[Row], *, key_name: str) -> str:
    """Rows as CSV (RFC 4180) with a header; unknown values empty, formulas neutralised."""
    buf = io.StringIO()
    # RFC 4180's CRLF line ends: with CR among them, every Python quotes a field holding
    # a bare CR (3.10 and 3.11 quote only the terminator's characters), so no row is forged.
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([key_name, *ROW_FIELDS])
    for row in rows:
        writer.writerow(
            ["" if row[k] is None else csv_safe(row[k]) for k in (key_name, *ROW_FIELDS)]
        )
    return buf.getvalue()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage report`."""
    add_paths_argument(parser)
    parser.add_argument(
        "--by", choices=tuple(GROUP_KEYS), default="session", help="the grouping (default session)"
    )
    add_engine_argument(parser)
    add_time_arguments(parser)
    add_format_argument(parser, "table", "json", "csv")
    parser.add_argument("--top", type=positive_int, metavar="N", help="only the N costliest groups")
    add_prices_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run `agent-usage report`."""
    source = open_source(args)
    agg = Aggregate(by=args.by)
    read_with_notes(source, agg.feed)
    rows = agg.rows(top=args.top)
    hidden = len(agg) - len(rows)
    if args.format == "json":
        import orjson

        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.format == "csv":
        sys.stdout.write(format_csv(rows, key_name=agg.key_name))
    elif rows:
        total = agg.total_row()
        sys.stdout.write(
            format_table(rows, total, key_name=agg.key_name, hidden=hidden, noun=args.by)
        )
    else:
        print("no llm_usage events" + (" in that time range" if args.since or args.until else ""))
    if hidden and args.format != "table":
        # stdout stays pure JSON/CSV; the note goes beside it.
        print(f"agent-usage: note: {hidden} more {args.by}(s) not shown (--top)", file=sys.stderr)
    print_skip_note(source, agg.malformed)
    return 0
