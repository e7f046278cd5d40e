"""The one error for an optional extra that is not installed: what needs it, what to run."""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(what: str, extra: str, exc: ImportError) -> ImportError:
    """An ImportError saying `what` needs `extra`, with the pip command and the missing module."""
    return ImportError(
        f"{what} needs the '{extra}' extra: pip install 'langchain-agent-usage[{extra}]' "
        f"(missing module: {exc.name or exc})"
    )
