"""`agent-usage export parquet PATH... -o DIR`: the events as a Parquet dataset by UTC day.

Dispatched to by `agent-usage export` (target `parquet`); the writing lives in the
library (`agent_usage._parquet`), this module only reads options and prints the result.
"""

from __future__ import annotations

import argparse
import sys

from ._common import CliError, check_time_range

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Write the dataset; one line per day written, then a total."""
    from .._parquet import export_parquet

    if not args.output:
        raise CliError("export parquet needs -o DIR (the dataset's root directory)")
    check_time_range(args.since, args.until)
    try:
        written = export_parquet(args.path, args.output, since=args.since, until=args.until)
    except (ValueError, ImportError) as exc:
        raise CliError(str(exc)) from None
    for day, n in written.items():
        print(f"day={day}: {n} events")
    print(f"exported {sum(written.values())} llm_usage events to {args.output}", file=sys.stderr)
    return 0
