"""Waiting in tests for something another thread, task or process does: bounded, never a nap.

A test that needs another thread to have reached a point waits for a condition it can
see (an event, a count, a file's size), polled until a deadline; on timeout it fails
with the message instead of hanging the run. No test sleeps a fixed time and hopes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

TIMEOUT_S = 10.0
_POLL_S = 0.002


def wait_until(
    check: Callable[[], object], timeout: float = TIMEOUT_S, message: str = "timed out"
) -> None:
    """Poll until `check()` is true; fail with `message` if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, message
        time.sleep(_POLL_S)


async def await_until(
    check: Callable[[], object], timeout: float = TIMEOUT_S, message: str = "timed out"
) -> None:
    """`wait_until` for a coroutine: yields to the loop between checks, so tasks run."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(_POLL_S)


class PollCounter(threading.Event):
    """A `stop` event for `follow`/`afollow` that counts the follower's polls.

    Both check `stop.is_set()` before every poll, so the count tells a test when the
    follower has looked at the file again: `wait_for_polls` returns once a poll that
    began after the call has finished.
    """

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def is_set(self) -> bool:
        self.polls += 1
        return super().is_set()

    def wait_for_polls(self, n: int = 1, timeout: float = TIMEOUT_S) -> None:
        """Return once `n` whole polls have begun and ended after this call."""
        # The poll under way now (if any) began before the call: one more check to pass.
        target = self.polls + n + 1
        wait_until(lambda: self.polls >= target, timeout, f"the follower made no {n} polls")

    async def await_polls(self, n: int = 1, timeout: float = TIMEOUT_S) -> None:
        """`wait_for_polls` for a follower on this event loop."""
        target = self.polls + n + 1
        await await_until(lambda: self.polls >= target, timeout, f"the follower made no {n} polls")
