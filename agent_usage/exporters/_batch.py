"""The background batch every exporter shares: a bounded queue and one daemon worker.

`export(event)` only puts the event on a bounded queue (never blocks: when the
queue is full the event is dropped and counted in `dropped`); a daemon thread
drains the queue in batches and hands each batch to the exporter's `_send`.
A failing send is logged once per cause and counted in `failed`; nothing ever
raises into the agent. `flush` waits until everything queued so far has been
handed on (and asks the backend to flush); `shutdown` does the same, stops the
worker and is also run at interpreter exit.

This mirrors the OpenTelemetry SDK's BatchSpanProcessor: drop and count rather
than block, because the agent's latency matters more than one telemetry point.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BatchExporter", "missing_extra"]

logger = logging.getLogger(__name__)

_STOP = object()


def missing_extra(extra: str, exc: ImportError) -> ImportError:
    """The error raised when an optional SDK is not installed."""
    return ImportError(
        f"this exporter needs the '{extra}' extra: pip install 'langchain-agent-usage[{extra}]' "
        f"(missing module: {exc.name or exc})"
    )


def _shutdown_at_exit(ref: weakref.ReferenceType[BatchExporter]) -> None:
    exporter = ref()
    if exporter is not None:
        exporter.shutdown(timeout=exporter.exit_timeout)


class BatchExporter:
    """Base class of the exporters: bounded queue, daemon worker, flush and shutdown.

    Subclasses implement `_send(batch)` (called on the worker thread) and may
    override `_flush_backend(timeout)` and `_shutdown_backend(timeout)`.

    Counters (read them any time; they only grow):
        sent: events handed to the backend without an error.
        dropped: events refused because the queue was full or the exporter shut down.
        failed: events (or backend messages) the backend reported as not delivered.

    Args:
        max_queue_size: events held before new ones are dropped.
        max_batch_size: events handed to `_send` at most at once.
        exit_timeout: seconds `shutdown` may take when run at interpreter exit.
    """

    def __init__(
        self,
        *,
        max_queue_size: int = 4096,
        max_batch_size: int = 256,
        exit_timeout: float = 5.0,
    ) -> None:
        for name, value in (("max_queue_size", max_queue_size), ("max_batch_size", max_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if (
            not isinstance(exit_timeout, (int, float))
            or isinstance(exit_timeout, bool)
            or (exit_timeout < 0)
        ):
            raise ValueError(f"exit_timeout must be a number of seconds >= 0; got {exit_timeout!r}")
        self.max_queue_size = max_queue_size
        self.max_batch_size = max_batch_size
        self.exit_timeout = float(exit_timeout)
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self.failures: dict[str, int] = {}
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue_size)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0  # queued or being sent; flush waits for 0
        self._closed = False
        self._worker: threading.Thread | None = None

    # -- called by the agent (any thread): never blocks, never raises --------

    def export(self, event: Mapping[str, Any]) -> None:
        """Queue one `llm_usage` event for the background worker; drop it if the queue is full."""
        try:
            with self._lock:
                if self._closed:
                    self.dropped += 1
                    return
                if self._worker is None:
                    self._start_locked()
                self._pending += 1
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                with self._lock:
                    self._pending -= 1
                    self.dropped += 1
                    self._idle.notify_all()
                self._failed("queueing (queue full, event dropped)", None, 0)
        except Exception as exc:  # exporters never break the agent
            self._failed("queueing", exc, 0)

    # -- called by the application: flush / shutdown -------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Hand every queued event to the backend and flush it; False if `timeout` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._wait_idle(deadline):
            return False
        try:
            return self._flush_backend(_remaining(deadline))
        except Exception as exc:  # telemetry boundary
            self._failed("flushing", exc, 0)
            return False

    def shutdown(self, timeout: float | None = 10.0) -> bool:
        """Flush, stop the worker and release the backend; later events are dropped."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            worker = self._worker
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = self._wait_idle(deadline)
        if worker is not None:
            try:
                self._queue.put(_STOP, timeout=_remaining(deadline))
                worker.join(_remaining(deadline))
            except queue.Full:
                ok = False
        try:
            ok = self._shutdown_backend(_remaining(deadline)) and ok
        except Exception as exc:  # telemetry boundary
            self._failed("shutting down", exc, 0)
            ok = False
        return ok

    @property
    def stats(self) -> dict[str, int]:
        """The counters as a dict: sent, dropped, failed, queued."""
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self._queue.qsize(),
        }

    # -- for subclasses --------------------------------------------------------

    def _send(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Deliver a batch to the backend (worker thread). Raise to count it failed."""
        raise NotImplementedError

    def _flush_backend(self, timeout: float | None) -> bool:
        """Ask the backend to deliver what it buffered."""
        return True

    def _shutdown_backend(self, timeout: float | None) -> bool:
        """Release the backend."""
        return self._flush_backend(timeout)

    def _failed(self, cause: str, exc: BaseException | None, count: int) -> None:
        """Count `count` undelivered items under `cause`; log the first of each cause."""
        with self._lock:
            n = self.failures.get(cause, 0)
            self.failures[cause] = n + 1
            self.failed += count
        if n == 0:
            logger.warning(
                "agent_usage: %s %s failed%s; counting further failures",
                type(self).__name__,
                cause,
                f" ({exc!r})" if exc is not None else "",
            )

    # -- internals -------------------------------------------------------------

    def _start_locked(self) -> None:
        # Registered at the first export, not in __init__: atexit runs handlers last
        # in, first out, so ours runs before the backend's own exit hooks (the posthog
        # client's, the SDK providers'), which were registered when they were built.
        # A weak reference: an exporter the user dropped is not kept alive until exit.
        atexit.register(_shutdown_at_exit, weakref.ref(self))
        self._worker = threading.Thread(
            target=self._run, name=f"agent-usage-{type(self).__name__}", daemon=True
        )
        self._worker.start()

    def _wait_idle(self, deadline: float | None) -> bool:
        with self._idle:
            while self._pending:
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def _run(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch_size:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                self._send(batch)
            except Exception as exc:  # one bad batch never kills the worker
                self._failed(f"sending ({type(exc).__name__})", exc, len(batch))
            else:
                with self._lock:
                    self.sent += len(batch)
            with self._lock:
                self._pending -= len(batch)
                self._idle.notify_all()
            if stop:
                return


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())
