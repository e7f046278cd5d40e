"""Reading test logs back: the helper every accounting test file shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_usage import read_events


def usage_events(path: Path) -> list[dict[str, Any]]:
    """The `llm_usage` events in the log (none when nothing was ever written)."""
    return list(read_events(path, types={"llm_usage"})) if path.exists() else []
