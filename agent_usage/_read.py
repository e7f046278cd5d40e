"""Reading the event log: a fast tolerant reader, and `follow`/`afollow`, which track the
file like `tail -F`.

The reader streams the log and its rotated files in 1 MiB chunks, oldest first, skips
blank, non-JSON, non-object and torn lines (counting them in `EventReader.skipped`), and
filters by event type on the raw bytes before parsing. The followers poll the file,
survive rotation and truncation, and only yield complete lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any, Protocol

import orjson

from ._log import _rotated_files

__all__ = ["EventReader", "afollow", "follow", "read_events"]

_CHUNK = 1 << 20


# ---------------------------------------------------------------------------- reading


def _parse_time(value: object) -> datetime | None:
    """An aware datetime from an ISO string or datetime; naive means UTC."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _type_needles(types: frozenset[str]) -> tuple[list[bytes], bytes]:
    """What a line must contain to hold one of `types`: their JSON forms, or an escape.

    A line whose "type" is one of `types` holds that string in its JSON form, unless
    another writer escaped some of its characters: `\\u` can escape any character and
    `\\/` a slash, so lines with such escapes are candidates too.
    """
    forms = [orjson.dumps(t) for t in sorted(types)]
    escape = b"\\" if any("/" in t for t in types) else b"\\u"
    return forms, escape


class _Matcher:
    """Turns raw bytes into the wanted events; counts the bad lines in `skipped`."""

    def __init__(self, types: Iterable[str] | None, since: str | datetime | None) -> None:
        if isinstance(types, str):  # a lone type name, not its characters
            types = (types,)
        self.types = frozenset(types) if types is not None else None
        self.since = None
        if since is not None:
            self.since = _parse_time(since)
            if self.since is None:
                raise ValueError(f"since must be an ISO 8601 time or a datetime, got {since!r}")
        self.skipped = 0
        self._patterns: list[bytes] | None = None
        self._escape = b"\\u"
        if self.types is not None:
            self._patterns, self._escape = _type_needles(self.types)

    def _lines(self, buf: bytes) -> tuple[list[bytes], bytes]:
        """The complete lines of `buf` worth parsing, and the unterminated rest.

        Without a type filter, every line. With one, only lines that contain a
        wanted type's JSON form (or an escape): `bytes.find` over the whole buffer
        skips the others without a Python-level step per line, which is most of the
        reader's speed.
        """
        if self._patterns is None:
            lines = buf.split(b"\n")
            return lines, lines.pop()
        end = buf.rfind(b"\n") + 1
        patterns = self._patterns
        if b"\\" in buf and self._escape in buf:  # memchr first: backslashes are rare
            patterns = [*patterns, self._escape]
        find, rfind = buf.find, buf.rfind
        if len(patterns) == 1:
            (pattern,) = patterns
            lines = []
            pos = 0
            while (i := find(pattern, pos, end)) >= 0:
                start = rfind(b"\n", 0, i) + 1
                pos = find(b"\n", i, end)
                lines.append(buf[start:pos])
                pos += 1
            return lines, buf[end:]
        starts = set()
        for pattern in patterns:
            pos = 0
            while (i := find(pattern, pos, end)) >= 0:
                starts.add(rfind(b"\n", 0, i) + 1)
                pos = find(b"\n", i, end) + 1
        return [buf[s : find(b"\n", s)] for s in sorted(starts)], buf[end:]

    def _events(self, lines: list[bytes]) -> Iterator[dict[str, Any]]:
        # One call per chunk, not per line: this loop is the reader's whole cost.
        wanted, since = self.types, self.since
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        for line in lines:
            if line[-1:] != b"}" or line[:1] != b"{":
                line = line.strip()  # CRLF or padding from other writers
                if line[-1:] != b"}" or line[:1] != b"{":
                    self.skipped += 1  # blank, torn, or not an object
                    continue
            try:
                event = loads(line)
            except decode_error:
                self.skipped += 1
                continue
            if type(event) is not dict:
                self.skipped += 1
                continue
            if wanted is not None and event.get("type") not in wanted:
                continue
            if since is not None:
                when = _parse_time(event.get("timestamp"))
                if when is None or when < since:
                    continue
            yield event

    def _tail_event(self, rest: bytes) -> Iterator[dict[str, Any]]:
        """The unterminated end of a file: an event missing its newline, or torn."""
        if rest.strip():
            yield from self._events([rest])


def _log_files(path: str) -> list[str]:
    files = _rotated_files(path)
    if os.path.exists(path):
        files.append(path)
    return files


class EventReader(_Matcher):
    """An iterable over the events of a log, oldest first across rotated files.

    Iterating streams the files in 1 MiB chunks, so memory stays flat however large
    the log. Each iteration reads the files again.

    Attributes:
        skipped: bad lines skipped so far: blank, non-JSON, not an object, torn. With
            `types`, lines that certainly hold another type are not looked at, so
            this counts the bad lines among those that could have matched.
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
        if os.path.isdir(self.path):
            raise IsADirectoryError(errno.EISDIR, "event log path is a directory", self.path)
        self.bytes_read = 0
        self.bytes_total = sum(_size(f) for f in files)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # Open every file up front: a writer rotating meanwhile renames or prunes them.
        files = []
        for name in _log_files(self.path):
            try:
                files.append(open(name, "rb", buffering=0))  # noqa: SIM115
            except FileNotFoundError:
                continue
        try:
            for f in files:
                rest = b""
                while chunk := f.read(_CHUNK):
                    self.bytes_read += len(chunk)
                    lines, rest = self._lines(rest + chunk if rest else chunk)
                    yield from self._events(lines)
                yield from self._tail_event(rest)
        finally:
            for f in files:
                f.close()


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


def _rotated_after(path: str, old: os.stat_result) -> list[str]:
    """The rotated files newer than the one `old` describes (none if it is not found)."""
    try:
        rotated = _rotated_files(path)
    except OSError:
        return []
    for i, name in enumerate(rotated):
        with contextlib.suppress(OSError):
            if os.path.samestat(os.stat(name), old):
                return rotated[i + 1 :]
    return []


class _Follower(_Matcher):
    """The shared core of `follow` and `afollow`: one non-blocking `poll` at a time."""

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
        self._stat: os.stat_result | None = None
        self._rest = b""
        self._pending: list[str] = []
        self._in_rotated = False
        # Open now, so "new" means appended after this call, not after the first poll.
        # Only a file already there now starts at its end; one created later, at 0.
        self._at_end = not from_start
        self._open_next()
        self._at_end = False

    def poll(self, budget: int = 4 * _CHUNK) -> tuple[list[dict[str, Any]], bool]:
        """New events, and whether more data is waiting (the read budget ran out)."""
        out: list[dict[str, Any]] = []
        while self._file is not None or self._open_next():
            if self._drain(out, budget):
                return out, True
            if self._in_rotated:  # a rotated file is complete: on to the next one
                out.extend(self._tail_event(self._rest))
                self.close()
                continue
            try:
                cur: os.stat_result | None = os.stat(self.path)
            except OSError:
                cur = None  # mid-rotation: the new file is not there yet
            assert self._stat is not None
            if cur is not None and not os.path.samestat(cur, self._stat):
                # Rotated: ours is drained, its unterminated end is torn. Read the files
                # rotated after it too (several rotations between two polls), then the new one.
                out.extend(self._tail_event(self._rest))
                old = self._stat
                self.close()
                self._pending = _rotated_after(self.path, old)
                continue
            if os.fstat(self._file.fileno()).st_size < self._file.tell():
                # Truncated in place (copytruncate): start again from its beginning.
                self._file.seek(0)
                self._rest = b""
            break
        return out, False

    def _open_next(self) -> bool:
        while self._pending:
            name = self._pending.pop(0)
            with contextlib.suppress(OSError):
                self._set_file(open(name, "rb", buffering=0), rotated=True)  # noqa: SIM115
                return True
        try:
            f = open(self.path, "rb", buffering=0)  # noqa: SIM115
        except OSError:
            return False  # not there yet (or mid-rotation): try again next poll
        if self._at_end:
            f.seek(0, os.SEEK_END)
        self._set_file(f, rotated=False)
        return True

    def _set_file(self, f: Any, *, rotated: bool) -> None:
        self._file = f
        self._stat = os.fstat(f.fileno())
        self._in_rotated = rotated
        self._rest = b""

    def _drain(self, out: list[dict[str, Any]], budget: int) -> bool:
        while budget > 0:
            chunk = self._file.read(_CHUNK)
            if not chunk:
                return False
            budget -= len(chunk)
            lines, self._rest = self._lines(self._rest + chunk)
            out.extend(self._events(lines))
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
