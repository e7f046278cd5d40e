"""Placeholder: filled in by its issue."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    from agent_usage.cli import CliError

    raise CliError("not built yet")
