"""The append-only JSONL event log: writer and tolerant reader."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

__all__ = ["EventLog", "EventReader", "afollow", "follow", "read_events"]

logger = logging.getLogger(__name__)


class EventLog:
    """An append-only JSONL file: one `os.write` of one line per event.

    Args:
        path: the log file; created with mode 0600.
        strict: raise write failures instead of logging and counting them.
    """

    def __init__(self, path: str | os.PathLike[str], *, strict: bool = False) -> None:
        self.path = os.fspath(path)
        self.strict = strict
        self.dropped = 0
        self._lock = threading.Lock()
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )

    def append(self, event: Mapping[str, Any]) -> None:
        """Write one event as one line."""
        try:
            line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE, default=str)
            fd = self._fd
            if fd is None:
                raise ValueError(f"EventLog {self.path!r} is closed")
            os.write(fd, line)
        except Exception:
            if self.strict:
                raise
            self.dropped += 1
            logger.exception("agent_usage: could not write an event to %s", self.path)

    def close(self) -> None:
        """Close the file; later appends are dropped (or raise when strict)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventReader:
    """An iterable over the events of a log; counts what it skipped as it goes.

    Attributes:
        skipped: lines skipped so far (blank, non-JSON, non-object, torn).
        bytes_read: bytes consumed so far, for progress display.
        bytes_total: size of the files when reading started.
    """

    def __init__(self, path: str | os.PathLike[str], *, types: Iterable[str] | None = None) -> None:
        self.path = os.fspath(path)
        self.types = frozenset(types) if types is not None else None
        self.skipped = 0
        self.bytes_read = 0
        self.bytes_total = os.stat(self.path).st_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        wanted = self.types
        with open(self.path, "rb") as f:
            for line in f:
                self.bytes_read += len(line)
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    self.skipped += 1
                    continue
                if not isinstance(event, dict):
                    self.skipped += 1
                    continue
                if wanted is not None and event.get("type") not in wanted:
                    continue
                yield event


def read_events(
    path: str | os.PathLike[str], *, types: Iterable[str] | None = None
) -> EventReader:
    """The events in `path`, oldest first; bad lines are skipped and counted.

    Raises:
        FileNotFoundError: when `path` does not exist (raised here, not on iteration).
    """
    return EventReader(path, types=types)


def follow(path: str | os.PathLike[str], *, types: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield events as they are appended to `path`, like `tail -F` (issue 3)."""
    raise NotImplementedError


async def afollow(path: str | os.PathLike[str], *, types: Iterable[str] | None = None) -> Any:
    """Async `follow` (issue 3)."""
    raise NotImplementedError
