"""`agent-usage dashboard PATH -o FILE`: render the log into one self-contained HTML file.

The page shows session and user ids that the 0600 log protects, so it is written
0600 too, through a temporary file in the same directory and a rename: a viewer
never sees half a page, and replacing a file never widens who can read it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from .._dashboard import Dashboard, render_dashboard
from ._common import (
    CliError,
    add_engine_argument,
    add_paths_argument,
    add_prices_argument,
    add_time_arguments,
    open_source,
    positive_float,
    print_skip_note,
    read_with_notes,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage dashboard`."""
    add_paths_argument(parser)
    add_engine_argument(parser)
    parser.add_argument(
        "-o", "--output", default="dashboard.html", metavar="FILE", help="default dashboard.html"
    )
    add_time_arguments(parser)
    add_prices_argument(parser)
    parser.add_argument("--title", default="Agent usage", help="the page title")
    parser.add_argument(
        "--session-usd",
        type=positive_float,
        metavar="X",
        help="mark sessions that cost more than X dollars",
    )
    parser.add_argument(
        "--day-usd",
        type=positive_float,
        metavar="Y",
        help="mark UTC days that cost more than Y dollars",
    )


def write_private(output: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `output` as a 0600 file, atomically (temporary file, then rename)."""
    out = os.path.abspath(os.fspath(output))
    # mkstemp creates the file 0600 whatever the umask; the rename keeps that mode.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), prefix=".dashboard-", suffix=".html")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    """Run `agent-usage dashboard`."""
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise CliError(f"output directory does not exist: {out_dir}")
    source = open_source(args)
    holder: list[Dashboard] = []
    read_with_notes(source, lambda events: holder.append(Dashboard(events)))
    (d,) = holder
    page = render_dashboard(
        d,
        title=args.title,
        source=source.reader.path,
        skipped=source.skipped,
        session_usd=args.session_usd,
        day_usd=args.day_usd,
    )
    try:
        write_private(args.output, page)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"wrote {args.output} ({d.total['events']} llm_usage events)", file=sys.stderr)
    print_skip_note(source, d.malformed)
    return 0
