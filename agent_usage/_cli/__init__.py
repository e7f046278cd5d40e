"""The `agent-usage` command line: report, dashboard, tail, export, demo.

One module per subcommand, each with `add_arguments(parser)` and `run(args) -> int`,
imported here by name. Those modules import only the standard library and the
log/report modules at load time (their heavy imports sit inside `run`), so
`agent-usage --help` and `agent-usage report` never import LangChain. Bad input
is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from .. import __version__
from .._format import printable
from . import dashboard, demo, export, report, tail
from ._common import CliError

__all__ = ["CliError", "main"]

# name -> (module, one-line help)
_COMMANDS: dict[str, tuple[ModuleType, str]] = {
    "report": (report, "sum usage per session, model, day or hour"),
    "dashboard": (dashboard, "write a self-contained HTML dashboard"),
    "tail": (tail, "follow the log and print each new llm_usage event"),
    "export": (export, "back-fill a log into OpenTelemetry or PostHog"),
    "demo": (demo, "run an offline LangGraph agent, write a log, print the report"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="agent-usage",
        description="Token usage and cost of LangChain/LangGraph agents, from their event log.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module, help_text) in _COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `agent-usage` console script; returns the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad option (already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        code: int = args._run(args)
    except CliError as exc:
        message = str(exc)
    except BrokenPipeError:  # `agent-usage report ... | head`
        return 0
    except FileNotFoundError as exc:
        message = f"no such file: {exc.filename}"
    except OSError as exc:  # a directory, no permission, a name too long, ...
        message = f"{exc.strerror or exc}: {exc.filename}"
    except KeyboardInterrupt:
        return 130
    else:
        return code
    # One line, whatever a file name or value holds (no terminal control sequences).
    print(f"agent-usage {args.command}: error: {printable(message)}", file=sys.stderr)
    return 2
