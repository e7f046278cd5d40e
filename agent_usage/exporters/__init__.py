"""Exporters that send `llm_usage` events beyond the local log (optional extras).

- `OTelExporter` (extra ``otel``): GenAI semantic-convention metrics and spans.
- `PostHogExporter` (extra ``posthog``): PostHog LLM-analytics ``$ai_generation`` events.

Both queue events on a bounded background batch (`BatchExporter`): `export`
never blocks the agent, a full queue drops and counts, `flush`/`shutdown` drain
it (shutdown also runs at exit). The SDKs are imported when an exporter is
built, so importing this package needs neither extra.
"""

from __future__ import annotations

from ._batch import BatchExporter
from .otel import OTelExporter
from .posthog import PostHogExporter

__all__ = ["BatchExporter", "OTelExporter", "PostHogExporter"]
