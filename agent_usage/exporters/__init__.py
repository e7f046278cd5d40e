"""Exporters that send `llm_usage` events beyond the local log (optional extras).

- `OTelExporter` (extra ``otel``): GenAI semantic-convention metrics and spans.
- `PostHogExporter` (extra ``posthog``): PostHog LLM-analytics ``$ai_generation`` events.

Each hands events to its SDK on the calling thread, in the caller's context, and
never raises into the agent nor waits on the network: the SDK's own queue
batches, retries and drops. `flush(timeout)` and `shutdown(timeout)` never take
longer than `timeout`. Each is imported on first use, so importing this package
needs neither extra; a missing one fails with the ``pip install`` line to run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .otel import OTelExporter
    from .posthog import PostHogExporter

__all__ = ["OTelExporter", "PostHogExporter"]

_MODULES = {"OTelExporter": ".otel", "PostHogExporter": ".posthog"}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
