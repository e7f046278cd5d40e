"""agent_usage: exact per-invoke token and cost accounting for LangChain/LangGraph agents.

Wrap an agent with `track_usage` (or add a `UsageCallbackHandler` to a config's
callbacks) and every invoke appends one `llm_usage` event to an `EventLog`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._budget import Budget, BudgetExceeded
from ._event import LlmUsageEvent, ModelUsage
from ._log import EventLog
from ._read import EventReader, afollow, follow, read_events
from ._report import report
from ._usage import Usage, normalize_usage

if TYPE_CHECKING:
    from ._handler import UsageCallbackHandler
    from ._tracking import tracking
    from ._wrapper import TrackedRunnable, track_usage


__all__ = [
    "Budget",
    "BudgetExceeded",
    "EventLog",
    "EventReader",
    "LlmUsageEvent",
    "ModelUsage",
    "TrackedRunnable",
    "Usage",
    "UsageCallbackHandler",
    "afollow",
    "follow",
    "normalize_usage",
    "read_events",
    "report",
    "track_usage",
    "tracking",
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
    elif name == "tracking":
        from ._tracking import tracking as value
    elif name == "TrackedRunnable":
        from ._wrapper import TrackedRunnable as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _public(value)
    globals()[name] = value  # once: later lookups skip this function
    return value


def _public(obj: Any) -> None:
    """Name the public module as the home of a public class (reprs, docs, pickling)."""
    if isinstance(obj, type):
        obj.__module__ = __name__


for _obj in (Budget, BudgetExceeded, EventLog, EventReader, LlmUsageEvent, ModelUsage, Usage):
    _public(_obj)
del _obj


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
