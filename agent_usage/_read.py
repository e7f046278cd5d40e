"""Reading the event log: a fast tolerant reader, and `follow`/`afollow`, which track the
file like `tail -F`.

The reader streams the log and its rotated files in 1 MiB chunks, oldest first and one
file open at a time, skips blank, non-JSON, non-object, torn and over-long lines
(counting them in `EventReader.skipped`), and filters by event type on the raw bytes
before parsing. The followers poll the file, track files by inode through any number of
rotations, survive truncation, and only yield complete lines. Nothing here opens a FIFO
or device (`_logfiles.open_regular`), so no reader can hang on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

from ._logfiles import not_regular, open_regular, rotated_files
from ._match import _Matcher

__all__ = ["EventReader", "afollow", "follow", "read_events"]

_CHUNK = 1 << 20


# ---------------------------------------------------------------------------- reading


def _log_files(path: str) -> list[str]:
    files = rotated_files(path)
    if os.path.exists(path):
        files.append(path)
    elif not files:
        # Rotated between the listing and the check (renamed, new file not made yet).
        files = rotated_files(path)
    return files


def _open(path: str) -> Any:
    """A raw binary file for `path`, refusing a FIFO or device (see `open_regular`)."""
    return open(open_regular(path, os.O_RDONLY), "rb", buffering=0)


def _ident(f: Any) -> tuple[int, int]:
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino


class EventReader(_Matcher):
    """An iterable over the events of a log, oldest first across rotated files.

    Iterating streams the files in 1 MiB chunks, one file open at a time, so memory
    stays flat however large the log and any number of rotated files can be read.
    Each iteration reads the files again: the rotated files and the live file as they
    are when it starts, including the live file's events written while it is read.

    Attributes:
        skipped: bad lines skipped so far: blank, non-JSON, not an object, torn, or
            longer than 16 MiB. With `types`, lines that certainly hold another type
            are not looked at, so this counts the bad lines among those that could
            have matched.
        bytes_read: bytes consumed so far, for progress display.
        bytes_total: size of the files when the reader was made.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        types: Iterable[str] | None = None,
        since: str | datetime | None = None,
    ) -> None:
        super().__init__(types, since)
        self.path = os.fspath(path)
        try:
            files = _log_files(self.path)
        except FileNotFoundError:
            files = []
        if not files:
            raise FileNotFoundError(errno.ENOENT, "no such event log", self.path)
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(self.path).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "event log path is a directory", self.path)
            if not stat.S_ISREG(mode):
                raise not_regular(self.path, mode)
        self.bytes_read = 0
        self.bytes_total = sum(_size(f) for f in files)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # The live file first: a rotation during the read then only renames it, and it
        # is read last through this descriptor. Rotated files are read one at a time,
        # up to the live one if it has been rotated since (newer ones came after it).
        try:
            live = _open(self.path)
        except FileNotFoundError:
            live = None
        try:
            ident = _ident(live) if live is not None else None
            for name in rotated_files(self.path):
                try:
                    f = _open(name)
                except FileNotFoundError:
                    continue  # pruned since the listing
                with f:
                    if ident is not None and _ident(f) == ident:
                        break
                    yield from self._read(f)
            if live is not None:
                yield from self._read(live)
        finally:
            if live is not None:
                live.close()

    def _read(self, f: Any) -> Iterator[dict[str, Any]]:
        self.reset()
        while chunk := f.read(_CHUNK):
            self.bytes_read += len(chunk)
            yield from self._events(self.feed(chunk))
        yield from self._events(self.finish())


def _size(name: str) -> int:
    try:
        return os.stat(name).st_size
    except FileNotFoundError:
        return 0


def read_events(
    path: str | os.PathLike[str],
    *,
    types: Iterable[str] | None = None,
    since: str | datetime | None = None,
) -> EventReader:
    """The events in `path` and its rotated files, oldest first; bad lines are skipped.

    Args:
        types: only events whose "type" is one of these.
        since: only events whose "timestamp" is at or after this time (ISO 8601 string
            or datetime; naive means UTC). Events without a readable timestamp are left out.

    Returns:
        An `EventReader`: iterate it for dicts; `.skipped` counts the bad lines.

    Raises:
        FileNotFoundError: when the log does not exist (raised here, not on iteration).
    """
    return EventReader(path, types=types, since=since)


# ---------------------------------------------------------------------------- following


class _Stop(Protocol):
    def is_set(self) -> bool: ...


def _rotated(path: str, after: str | None = None) -> list[str]:
    try:
        return rotated_files(path, after)
    except FileNotFoundError:
        return []  # the directory is gone: nothing to read until it is back


class _Follower(_Matcher):
    """The shared core of `follow` and `afollow`: one non-blocking `poll` at a time.

    Files are told apart by device and inode, not by name (rotation renames them).
    The follower reads the live file; when it is at its end and the path names
    another file, the live file was rotated: it is read to its end once more (writers
    that rotate never write to a renamed file, see `EventLog`), and then every file
    rotated after it, found again by name each time, then the new live file. So
    however far it lags and however many rotations happen meanwhile, nothing is
    missed or read twice, as long as `backup_count` has not pruned the files yet.
    """

    def __init__(
        self,
        path: str,
        types: Iterable[str] | None,
        since: str | datetime | None,
        from_start: bool,
    ) -> None:
        super().__init__(types, since)
        self.path = path
        self._file: Any = None
        self._ident = (0, 0)
        self._name: str | None = None  # the rotated file being read; None: the live one
        self._cursor: str | None = None  # the newest rotated file already read or skipped
        # Open now, so "new" means appended after this call, not after the first poll.
        # Only a file already there now starts at its end; one created later, at 0.
        try:
            f = _open(path)
        except FileNotFoundError:
            f = None
        names = _rotated(path)
        self._cursor = names[-1] if names else None
        if f is not None:
            self._set(f, None)
            if not from_start:
                f.seek(0, os.SEEK_END)
            # Rotated between the open and the listing: newer files follow it.
            self._cursor = self._rotated_name(names) or self._cursor

    def poll(self, budget: int = 4 * _CHUNK) -> tuple[list[dict[str, Any]], bool]:
        """New events, and whether more data is waiting (the read budget ran out)."""
        out: list[dict[str, Any]] = []
        while self._file is not None or self._advance():
            if self._drain(out, budget):
                return out, True
            if self._name is not None:  # a rotated file is complete: on to the next one
                self._leave(out)
                continue
            try:
                cur: os.stat_result | None = os.stat(self.path)
            except FileNotFoundError:
                cur = None  # renamed (mid-rotation) or deleted
            if cur is not None and (cur.st_dev, cur.st_ino) == self._ident:
                # `cur` is our open file's own stat: no fstat needed for its size.
                if cur.st_size < self._file.tell():
                    # Truncated in place (copytruncate): start again from its beginning.
                    self._file.seek(0)
                    self.reset()
                break
            # Rotated or deleted. Writes may have landed between our last read and the
            # rename, none after it: read to the end once more, then move on.
            if self._drain(out, budget):
                return out, True
            rotated_as = self._rotated_name(_rotated(self.path, self._cursor))
            self._leave(out)
            self._cursor = rotated_as or self._cursor
        return out, False

    def _rotated_name(self, names: list[str]) -> str | None:
        """The name the open live file has been rotated to, if it is among `names`."""
        for name in reversed(names):
            with contextlib.suppress(OSError):
                st = os.stat(name)
                if (st.st_dev, st.st_ino) == self._ident:
                    return name
        return None

    def _advance(self) -> bool:
        """Open the next file to read: the oldest rotated one not read yet, else the live one."""
        while True:
            for name in _rotated(self.path, self._cursor):
                try:
                    f = _open(name)
                except FileNotFoundError:
                    self._cursor = name  # pruned before it could be read
                    continue
                self._set(f, name)
                return True
            try:
                f = _open(self.path)
            except FileNotFoundError:
                return False  # not there yet (or mid-rotation): try again next poll
            if _rotated(self.path, self._cursor):
                f.close()  # rotated between the listing and the open: those come first
                continue
            self._set(f, None)
            return True

    def _set(self, f: Any, name: str | None) -> None:
        self._file, self._name, self._ident = f, name, _ident(f)
        self.reset()

    def _leave(self, out: list[dict[str, Any]]) -> None:
        out.extend(self._events(self.finish()))
        if self._name is not None:
            self._cursor = self._name
        self.close()

    def _drain(self, out: list[dict[str, Any]], budget: int) -> bool:
        while budget > 0:
            chunk = self._file.read(_CHUNK)
            if not chunk:
                return False
            budget -= len(chunk)
            out.extend(self._events(self.feed(chunk)))
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def follow(
    path: str | os.PathLike[str],
    *,
    types: Iterable[str] | None = None,
    since: str | datetime | None = None,
    from_start: bool = False,
    poll_interval: float = 0.25,
    stop: threading.Event | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield events as they are appended to `path`, like `tail -F`.

    Events appended after this call are yielded (with `from_start`, those already in
    the file first). If the file does not exist yet, it is waited for and read from
    its start. Rotation (the renamed file is read to its end, and so are files rotated
    after it) and truncation are followed. Stops when `stop` is set or the generator
    is closed.

    Args:
        types, since: as for `read_events`.
        poll_interval: seconds between checks when there is nothing new.
        stop: set it (from any thread) to end the iteration within `poll_interval`.
    """
    return _follow(_Follower(os.fspath(path), types, since, from_start), poll_interval, stop)


def _follow(
    follower: _Follower, poll_interval: float, stop: threading.Event | None
) -> Iterator[dict[str, Any]]:
    try:
        while stop is None or not stop.is_set():
            events, more = follower.poll()
            yield from events
            if not more:
                if stop is not None:
                    stop.wait(poll_interval)
                else:
                    time.sleep(poll_interval)
    finally:
        follower.close()


def afollow(
    path: str | os.PathLike[str],
    *,
    types: Iterable[str] | None = None,
    since: str | datetime | None = None,
    from_start: bool = False,
    poll_interval: float = 0.25,
    stop: _Stop | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Async `follow` (use with `async for`): the same events, waiting with `asyncio.sleep`.

    Each poll reads at most a few MiB, so a long backlog never blocks the event loop
    for long. Stops when `stop` (an `asyncio.Event` or `threading.Event`) is set, the
    generator is closed, or the task is cancelled.
    """
    return _afollow(_Follower(os.fspath(path), types, since, from_start), poll_interval, stop)


async def _afollow(
    follower: _Follower, poll_interval: float, stop: _Stop | None
) -> AsyncIterator[dict[str, Any]]:
    try:
        while stop is None or not stop.is_set():
            events, more = follower.poll()
            for event in events:
                yield event
            await asyncio.sleep(0 if more else poll_interval)
    finally:
        follower.close()
