"""The `agent-usage` command line: report, dashboard, tail, export, demo.

Each subcommand lives in its own module, which provides `add_arguments(parser)`
and `run(args) -> int`; those modules keep their heavy imports inside `run` so
that `agent-usage --help` stays fast. Bad input is one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["CliError", "main"]

# name -> (module, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "report": ("agent_usage._report_cli", "sum usage per session, model, day or hour"),
    "dashboard": ("agent_usage._dashboard", "write a self-contained HTML dashboard"),
    "tail": ("agent_usage._tail", "follow the log and print each new llm_usage event"),
    "export": ("agent_usage.exporters._cli", "back-fill a log into OpenTelemetry or PostHog"),
    "demo": ("agent_usage._demo", "run an offline LangGraph agent, write a log, print the report"),
}


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="agent-usage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module_name, help_text) in _COMMANDS.items():
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `agent-usage` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args._run(args)
    except CliError as exc:
        print(f"agent-usage {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"agent-usage {args.command}: error: no such file: {exc.filename}", file=sys.stderr)
        return 2
    except (IsADirectoryError, PermissionError) as exc:
        print(f"agent-usage {args.command}: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    # Run as `python -m agent_usage.cli`: go through the imported module, so that the
    # CliError the subcommands raise is the class caught above, not a __main__ copy.
    from agent_usage.cli import main as _main

    sys.exit(_main())
