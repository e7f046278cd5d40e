"""agent_usage: exact per-invoke token and cost accounting for LangChain/LangGraph agents.

Wrap an agent with `track_usage` (or add a `UsageCallbackHandler` to a config's
callbacks) and every invoke appends one `llm_usage` event to an `EventLog`.
"""

from __future__ import annotations

from ._handler import UsageCallbackHandler
from ._log import EventLog
from ._read import afollow, follow, read_events
from ._report import report
from ._usage import Usage, normalize_usage
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
