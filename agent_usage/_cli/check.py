"""`agent-usage check`: exit 1 when a log breaks a spend limit or a usage rule, for cron and CI.

One line per breach on stdout (or one JSON object with `--format json`), exit
code 1 when there is any, 0 when there is none, 2 on bad input. The breaches
are computed by the library (`agent_usage._check`).
"""

from __future__ import annotations

import argparse
import sys

from .._check import check
from ._common import (
    CliError,
    add_format_argument,
    add_prices_argument,
    add_time_arguments,
    check_time_range,
    positive_float,
)

__all__ = ["add_arguments", "run"]


def _percent(text: str) -> float:
    """An argparse `type=`: a percentage from 0 to 100."""
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage check`."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="the events.jsonl log(s)")
    add_time_arguments(parser)
    parser.add_argument(
        "--session-usd", type=positive_float, metavar="X", help="a session costing more fails"
    )
    parser.add_argument(
        "--day-usd", type=positive_float, metavar="Y", help="a UTC day costing more fails"
    )
    parser.add_argument(
        "--max-without-usage",
        type=_percent,
        metavar="PCT",
        help="a model with more than PCT%% of its calls reporting no usage fails",
    )
    parser.add_argument(
        "--fail-on-unpriced", action="store_true", help="a model without a known price fails"
    )
    add_prices_argument(parser)
    add_format_argument(parser, "text", "json")


def run(args: argparse.Namespace) -> int:
    """Run `agent-usage check`: 1 when any breach, else 0."""
    if (
        args.session_usd is None
        and args.day_usd is None
        and args.max_without_usage is None
        and not args.fail_on_unpriced
    ):
        raise CliError(
            "nothing to check: give --session-usd, --day-usd, --max-without-usage "
            "or --fail-on-unpriced"
        )
    check_time_range(args.since, args.until)
    try:
        result = check(
            args.paths,
            since=args.since,
            until=args.until,
            session_usd=args.session_usd,
            day_usd=args.day_usd,
            max_without_usage=args.max_without_usage,
            fail_on_unpriced=args.fail_on_unpriced,
            prices=args.prices,
        )
    except UnicodeDecodeError as exc:
        raise CliError(f"cannot read the log: {exc}") from None
    except ValueError as exc:  # a bad prices file
        raise CliError(str(exc)) from None
    except (IsADirectoryError, PermissionError, FileNotFoundError):
        raise  # one line from main()
    except OSError as exc:
        raise CliError(f"cannot read the log: {exc.strerror or exc}") from None
    if args.format == "json":
        import orjson

        sys.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        for breach in result.breaches:
            print(breach.message)
    notes = []
    if result.skipped:
        notes.append(f"{result.skipped} bad line(s)")
    if result.malformed:
        notes.append(f"{result.malformed} llm_usage event(s) with non-numeric fields")
    if notes:
        print(f"agent-usage: note: skipped {' and '.join(notes)}", file=sys.stderr)
    return 1 if result.breaches else 0
