"""`UsageCallbackHandler`: the same accounting as `track_usage`, passed in a config.

It is a root tracker (see `_tracking`): one event per root run it sees, with the
calls of that run counted in the same scope core as the wrapper's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._pricing import PricesArg
from ._tracker import EventSink, Exporter, SessionArg, Tracker
from ._tracking import RootTracker

__all__ = ["UsageCallbackHandler"]


class UsageCallbackHandler(RootTracker):
    """Writes one `llm_usage` event per root run it sees, with the wrapper's accounting.

    Pass it in a config's callbacks: ``graph.ainvoke(x, {"callbacks": [handler]})``.
    One instance may serve many concurrent invokes; their calls never mix. While a
    root run is in progress, model calls made in its context are counted even
    when the code making them passes its own callbacks.

    Args:
        log: an `EventLog` (or anything with `append(event)`).
        session_id: a fixed id, or a callable given the root run's config view
            (``{"metadata": ..., "tags": ..., "configurable": {"thread_id": ...}}``);
            ``metadata["session_id"]`` of the run wins, and the thread id is the fallback.
        model: a label written as the event's `model`.
        metadata: copied into every event.
        prices: price overrides (a mapping or a TOML/JSON file path).
        exporters: non-blocking exporters each event is also sent to.

    Raises:
        TypeError: when an argument has the wrong type.
    """

    def __init__(
        self,
        log: EventSink | None,
        *,
        session_id: SessionArg = None,
        model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prices: PricesArg = None,
        exporters: Sequence[Exporter] = (),
    ) -> None:
        super().__init__(
            Tracker(
                log,
                session_id=session_id,
                model=model,
                metadata=metadata,
                prices=prices,
                exporters=exporters,
            )
        )
