"""What both exporters share: event readers, counters, deadlines, fork safety.

The exporters hold no queue or thread of their own: the OpenTelemetry SDK's
processors and the posthog client already queue, batch, retry and drop. What is
left to share is small:

- `models_of`, `positive_int`: an event's per-model rows and its counts, read
  leniently (an exporter never raises on a malformed event).
- `Counters`: what an exporter handed on, what the endpoint took, what it did
  not and why; thread-safe, each failure cause logged once. Counters are reset
  in a child made by `fork()` (its parent's counts are the parent's), and their
  lock is replaced, as a parent thread may have held it at fork time.
- `within(timeout, fn)`: run a blocking SDK call on a daemon thread and wait at
  most `timeout`; a dead endpoint must never hold `flush`, `shutdown` or the
  process exit for longer than the caller allowed.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["Counters", "models_of", "positive_int", "reset_after_fork", "within"]

logger = logging.getLogger("agent_usage.exporters")


def models_of(event: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The event's per-model rows (the whole event as one row when it has none)."""
    models = event.get("models")
    if isinstance(models, Mapping) and models:
        return {str(k): v for k, v in models.items() if isinstance(v, Mapping)}
    # An event without a breakdown: the whole event is one model's share.
    return {str(event.get("model") or "unknown"): event}


def positive_int(row: Mapping[str, Any], key: str) -> int:
    """row[key] when it is a positive int (never a bool), else 0."""
    value = row.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


class Counters:
    """Delivery counters of one exporter; every method is safe from any thread.

    Attributes:
        handed: items given to the SDK or client (it queues and sends them).
        sent: items the endpoint took.
        failed: items the endpoint refused or never answered for, after the
            backend's own retries.
        dropped: items refused before any attempt (a full or closed queue, an
            error while recording, the exporter shut down).
        failures: how many times each cause happened.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self.reset()
        reset_after_fork(self)

    def reset(self) -> None:
        """Zero every counter (also: in a forked child, with a fresh lock)."""
        self._lock = threading.Lock()
        self.handed = 0
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.failures: dict[str, int] = {}
        self._failed_at_mark = 0

    def add(self, *, handed: int = 0, sent: int = 0) -> None:
        """Count items handed on or delivered."""
        with self._lock:
            self.handed += handed
            self.sent += sent

    def cover(self, sent: int) -> None:
        """Raise `sent` to at least `sent` (a delivery that covers everything before it)."""
        with self._lock:
            self.sent = max(self.sent, sent)

    def nothing_failed_since_last_call(self) -> bool:
        """True when `failed` has not grown since the previous call (or since the start)."""
        with self._lock:
            ok = self.failed == self._failed_at_mark
            self._failed_at_mark = self.failed
        return ok

    def lost(
        self, cause: str, exc: BaseException | None = None, *, failed: int = 0, dropped: int = 0
    ) -> None:
        """Count items not delivered under `cause`; log the first time each cause happens."""
        with self._lock:
            n = self.failures.get(cause, 0)
            self.failures[cause] = n + 1
            self.failed += failed
            self.dropped += dropped
        if n == 0:
            logger.warning(
                "agent_usage: %s: %s%s; counting further failures",
                self.owner,
                cause,
                f" ({exc!r})" if exc is not None else "",
            )


class _Resettable(Protocol):
    def reset(self) -> None: ...


# Everything holding per-process state, so a forked child can reset it: a weak
# set, so that an exporter the user dropped is not kept alive by it.
_live: weakref.WeakSet[Any] = weakref.WeakSet()


def reset_after_fork(obj: _Resettable) -> None:
    """Call `obj.reset()` in every child this process forks from now on."""
    _live.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_live):
        obj.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def within(timeout: float | None, fn: Callable[[], bool], *, name: str) -> bool:
    """Run `fn` on a daemon thread; True when it returned a true value within `timeout`.

    An SDK call stuck on a dead endpoint is left running on its daemon thread (it
    cannot be cancelled) and never holds the caller, nor the interpreter's exit,
    past `timeout`. An exception from `fn` is logged and gives False.
    """
    result: list[bool] = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception as exc:  # an SDK failure is a False, never a raise into the host
            logger.warning("agent_usage: %s failed (%r)", name, exc)
            result.append(False)

    worker = threading.Thread(target=run, name=f"agent-usage-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result) and bool(result[0])
