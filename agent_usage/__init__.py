"""agent_usage: exact per-invoke token and cost accounting for LangChain/LangGraph agents.

Wrap an agent with `track_usage` (or add a `UsageCallbackHandler` to a config's
callbacks) and every invoke appends one `llm_usage` event to an `EventLog`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._log import EventLog
from ._read import afollow, follow, read_events
from ._report import report
from ._usage import Usage, normalize_usage

if TYPE_CHECKING:
    from ._handler import UsageCallbackHandler
    from ._wrapper import track_usage


__all__ = [
    "EventLog",
    "Usage",
    "UsageCallbackHandler",
    "afollow",
    "follow",
    "normalize_usage",
    "read_events",
    "report",
    "track_usage",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The names whose modules import LangChain, loaded on first use (PEP 562).

    So the log, the reader, reports and the `agent-usage` command line start without it.
    """
    value: Any
    if name == "UsageCallbackHandler":
        from ._handler import UsageCallbackHandler as value
    elif name == "track_usage":
        from ._wrapper import track_usage as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
