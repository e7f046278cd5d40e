"""The append-only JSONL event log: a crash-safe multi-writer, a fast tolerant reader, and
`follow`/`afollow`, which track the file like `tail -F`.

What the writer guarantees, on a local POSIX filesystem:

- Each event is one `os.write` of one complete line on a descriptor opened with
  O_APPEND, so lines from threads, asyncio tasks and processes never interleave.
- A torn last line (a writer killed mid-write, a full disk) is found when the log is
  opened or when a write comes up short; the next append starts on a new line, so
  only the torn event is lost and readers skip it.
- Without `fsync`, a line is in the kernel's page cache when `append` returns: it
  survives the process dying, not the machine losing power.

Not guaranteed: atomic appends on network filesystems (NFS does not implement O_APPEND
atomically), and rotation coordination with writers that do not rotate themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timezone
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Protocol

import orjson

__all__ = ["EventLog", "EventReader", "afollow", "follow", "read_events"]

logger = logging.getLogger(__name__)

_OPTS = orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps
_write = os.write
_CHUNK = 1 << 20
# A failed open is retried at most this often, so a broken path costs little per event.
_REOPEN_INTERVAL_S = 1.0
_STAMP_RE = r"\.(\d{8}T\d{12}Z)"


# ---------------------------------------------------------------------------- encoding


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:
        return f"<unprintable {type(obj).__name__}>"


def _default(obj: Any) -> Any:
    """orjson's fallback for types it does not know: a sensible JSON value, else str."""
    if isinstance(obj, Decimal):
        # Money arrives as Decimal from price tables; readers sum numbers, not strings.
        return float(obj) if obj.is_finite() else str(obj)
    if isinstance(obj, (set, frozenset)):
        items = list(obj)
        with contextlib.suppress(TypeError):  # mixed types keep their order
            items.sort()
        return items
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (datetime, date, dtime)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {_safe_str(obj)}"
    if isinstance(obj, (Sequence, range)) and not isinstance(obj, str):
        return list(obj)
    dump = getattr(obj, "model_dump", None)  # pydantic models
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    return _safe_str(obj)


def _sanitize(obj: Any, depth: int, seen: set[int]) -> Any:
    """A plain, acyclic, JSON-safe copy for the rare event orjson refuses outright."""
    if isinstance(obj, str):
        try:
            obj.encode()
        except UnicodeEncodeError:  # lone surrogates, which JSON text cannot carry
            return obj.encode("utf-8", "replace").decode()
        return obj
    if obj is None or isinstance(obj, (bool, float)):
        return obj
    if isinstance(obj, int):
        return obj if -(2**63) <= obj < 2**64 else str(obj)
    if depth > 64 or id(obj) in seen:
        return f"<{type(obj).__name__} cycle or too deep>"
    seen.add(id(obj))
    try:
        if isinstance(obj, Mapping):
            return {
                _sanitize(_safe_str(k), depth, seen): _sanitize(v, depth + 1, seen)
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return [_sanitize(v, depth + 1, seen) for v in obj]
        converted = _default(obj)
        if isinstance(converted, str):
            return converted
        return _sanitize(converted, depth + 1, seen)
    finally:
        seen.discard(id(obj))


def _encode(event: Mapping[str, Any]) -> bytes:
    """One JSON line; never fails on odd values (they are converted or stringified)."""
    try:
        return orjson.dumps(event, default=_default, option=_OPTS)
    except TypeError:
        # Non-str keys, ints past 64 bits, cycles: rare, so the slow careful path.
        return orjson.dumps(_sanitize(event, 0, set()), option=_OPTS)


# ---------------------------------------------------------------------------- writer

_live_logs: weakref.WeakSet[EventLog] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for log in list(_live_logs):
        log._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _split_name(path: str) -> tuple[str, str, str]:
    directory, base = os.path.split(os.path.abspath(path))
    stem, suffix = os.path.splitext(base)
    return directory, stem, suffix


def _stamp_us(name: str) -> int:
    """Microseconds since the epoch from a rotated file's name."""
    match = re.search(_STAMP_RE, os.path.basename(name))
    assert match is not None
    when = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    return int(when.timestamp()) * 1_000_000 + when.microsecond


def _rotated_files(path: str) -> list[str]:
    """The rotated siblings of `path`, oldest first (their names sort by age)."""
    directory, stem, suffix = _split_name(path)
    pattern = re.compile(re.escape(stem) + _STAMP_RE + re.escape(suffix))
    names = sorted(n for n in os.listdir(directory) if pattern.fullmatch(n))
    return [os.path.join(directory, n) for n in names]


def _ends_torn(fd: int) -> bool:
    """Whether the file ends mid-line because a writer died (not because one is writing).

    Another process's write in flight is visible byte by byte to us, so an unfinished
    last line only counts as torn once the file has stopped changing for ~10 ms;
    otherwise the next append would leave a needless blank line.
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return False
    size, quiet = st.st_size, 0.0
    while size > 0 and os.pread(fd, 1, size - 1) != b"\n":
        if quiet >= 0.01:
            return True
        time.sleep(0.002)
        new_size = os.fstat(fd).st_size
        quiet = quiet + 0.002 if new_size == size else 0.0
        size = new_size
    return False


def _retire(owner: object, fd: int) -> None:
    """Close the file behind `fd` now, but free the number only with `owner`.

    A thread in `append`'s lock-free path may still hold the number; if it were freed,
    the next `open` anywhere in the process could reuse it and that thread's write
    would land in someone else's file. Pointing the number at /dev/null closes the
    file at once; the number itself is released when the log is garbage collected.
    """
    devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.dup2(devnull, fd, inheritable=False)
    finally:
        os.close(devnull)
    weakref.finalize(owner, os.close, fd)


class EventLog:
    """An append-only JSONL file: one `os.write` of one orjson line per event.

    Safe to share between threads and asyncio tasks, and to append to from several
    processes at once (each with its own `EventLog`). A child made by `fork()` reopens
    the file on its next append.

    Args:
        path: the log file; created with mode 0600 (an existing file keeps its mode).
        strict: raise write failures instead of logging them once and counting them
            in `dropped`.
        max_bytes: rotate once the file holds at least this many bytes: it is renamed
            to `<stem>.<UTC timestamp><suffix>` (e.g. `events.20261122T231409123456Z.jsonl`,
            names that sort by age) and a new file is started, which keeps `tail -F`
            working. None (the default) never rotates.
        backup_count: rotated files to keep (the oldest are deleted); None keeps all.
        fsync: `fsync` after every event, so it survives a power loss, at the cost
            of a disk flush (milliseconds, not microseconds) per event.

    Raises:
        IsADirectoryError: `path` is a directory.
        FileNotFoundError: the directory of `path` does not exist.
        ValueError: a bad `max_bytes` or `backup_count`.
        OSError: with `strict=True`, when the file cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        strict: bool = False,
        max_bytes: int | None = None,
        backup_count: int | None = 5,
        fsync: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes <= 0):
            raise ValueError(f"max_bytes must be a positive int or None, got {max_bytes!r}")
        if backup_count is not None and (isinstance(backup_count, bool) or backup_count < 1):
            raise ValueError(f"backup_count must be >= 1 or None, got {backup_count!r}")
        if os.path.isdir(self.path):
            raise IsADirectoryError(errno.EISDIR, "EventLog path is a directory", self.path)
        if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
            raise FileNotFoundError(errno.ENOENT, "EventLog directory does not exist", self.path)
        self.strict = strict
        self._max_bytes = max_bytes
        self._backup_count = backup_count
        self._fsync = fsync
        self.dropped = 0
        self._lock = threading.RLock()  # slow paths only; _drop re-enters it
        self._fd: int | None = None
        self._fast_fd: int | None = None  # _fd when a plain write is all an append needs
        self._lock_fd: int | None = None
        self._closed = False
        self._torn = False  # the file ends mid-line: start the next write with "\n"
        self._retry_at = 0.0
        self._warned: set[tuple[str, str]] = set()
        with self._lock:
            self._open()
            self._refresh()
        _live_logs.add(self)

    # -- the hot path

    def append(self, event: Mapping[str, Any]) -> None:
        """Write one event as one line.

        Never raises unless `strict`: a failure is logged once per cause and counted
        in `dropped`. Values JSON cannot hold are converted (Decimal to float, sets to
        lists) or written as their `str`.
        """
        # The hot path is one dumps and one write, no lock: O_APPEND makes the write
        # atomic, and close() never frees a descriptor number this path may hold.
        line: bytes | None
        if type(event) is dict:
            try:
                line = _dumps(event, default=_default, option=_OPTS)
            except TypeError:
                line = self._encode_slow(event)
        else:
            line = self._encode_slow(event)
        if line is None:
            return
        fd = self._fast_fd
        if fd is None:  # closed, failed, torn tail, rotation or fsync on
            with self._lock:
                self._write_slow(line)
            return
        try:
            n = _write(fd, line)
            if n != len(line):
                with self._lock:
                    self._finish_short_write(fd, line, line, n)
        except OSError as exc:
            with self._lock:
                self._refresh()
                self._drop(exc, "write to")

    def _encode_slow(self, event: object) -> bytes | None:
        if not isinstance(event, Mapping):
            self._drop(TypeError(f"an event must be a dict, got {type(event).__name__}"), "encode")
            return None
        try:
            return _encode(event)
        except Exception as exc:
            self._drop(exc, "encode")
            return None

    def _write_slow(self, line: bytes) -> None:
        """`append` when the plain write will not do; called with the lock held."""
        try:
            if self._fd is None and not self._reopen():
                return
            if self._max_bytes is not None:
                self._maybe_rotate()
                if self._fd is None and not self._reopen():
                    return
            fd = self._fd
            assert fd is not None
            data = b"\n" + line if self._torn else line
            try:
                n = _write(fd, data)
                if n != len(data):
                    self._finish_short_write(fd, line, data, n)
                self._torn = False
                if self._fsync:
                    os.fsync(fd)
            except OSError as exc:
                self._drop(exc, "write to")
        finally:
            self._refresh()

    def _refresh(self) -> None:
        """Whether the next append can take the plain one-write path."""
        plain = not self._torn and self._max_bytes is None and not self._fsync
        self._fast_fd = self._fd if plain else None

    @property
    def max_bytes(self) -> int | None:
        """The rotation size, or None when the log does not rotate."""
        return self._max_bytes

    @property
    def backup_count(self) -> int | None:
        """How many rotated files are kept; None keeps all."""
        return self._backup_count

    @property
    def fsync(self) -> bool:
        """Whether each event is flushed to disk before `append` returns."""
        return self._fsync

    def _finish_short_write(self, fd: int, line: bytes, data: bytes, n: int) -> None:
        """Complete a write the kernel cut short, without leaving a glued or doubled line.

        A strict prefix of an orjson object is never valid JSON, unless only the
        newline is missing. So: if only the newline is missing, write it; otherwise
        end the fragment with a newline (readers skip it) and write the event again
        whole, in one write, so other writers still cannot interleave with it.
        """
        for _ in range(8):
            if n == len(data):
                self._torn = False
                return
            if n > 0:
                self._torn = True
                data = b"\n" if n == len(data) - 1 else b"\n" + line
            n = _write(fd, data)
        raise OSError(errno.EIO, "repeated short writes", self.path)

    # -- opening, rotation, fork

    def _open(self) -> None:
        """Open (or reopen) the file; called with the lock held."""
        try:
            try:
                # Read access only to check the last byte for a torn line.
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                readable = True
            except PermissionError:
                fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
                readable = False
        except OSError as exc:
            self._retry_at = time.monotonic() + _REOPEN_INTERVAL_S
            if self.strict:
                raise
            self._warn_once(exc, "open")
            return
        self._torn = False
        if readable:
            with contextlib.suppress(OSError):
                self._torn = _ends_torn(fd)
        self._fd = fd

    def _reopen(self) -> bool:
        """Get a descriptor back after close, fork or a failed open; False drops the event."""
        if self._closed:
            self._drop(ValueError(f"EventLog {self.path!r} is closed"), "append to")
            return False
        if time.monotonic() >= self._retry_at:
            self._open()
        if self._fd is None:
            self._drop(OSError(errno.EBADF, "log file is not open", self.path), "open")
            return False
        return True

    def _maybe_rotate(self) -> None:
        """Rotate when the file is full; called with the lock held, before a write.

        Writers in several processes coordinate through `flock` on `<path>.lock`: the
        first to see a full file renames it; the others see the path now names a
        different file and just reopen. A process whose size check passed just before
        another rotated writes that one event into the rotated file, where readers
        still find it in order.
        """
        fd = self._fd
        assert fd is not None and self._max_bytes is not None
        st = os.fstat(fd)
        if st.st_size < self._max_bytes:
            return
        try:
            if self._lock_fd is None:
                self._lock_fd = os.open(
                    self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                try:
                    cur: os.stat_result | None = os.stat(self.path)
                except FileNotFoundError:
                    cur = None
                if cur is not None and os.path.samestat(cur, st):
                    os.rename(self.path, self._rotated_name())
                    self._prune()
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        except OSError as exc:
            self._warn_once(exc, "rotate")
            return  # keep writing to the full file rather than lose events
        os.close(fd)
        self._fd = None
        self._open()

    def _rotated_name(self) -> str:
        directory, stem, suffix = _split_name(self.path)
        now_us = time.time_ns() // 1000
        existing = _rotated_files(self.path)
        if existing:
            # Names must keep sorting by age even if the clock steps back.
            now_us = max(now_us, _stamp_us(existing[-1]) + 1)
        when = datetime.fromtimestamp(now_us // 1_000_000, timezone.utc)
        stamp = when.strftime("%Y%m%dT%H%M%S") + f"{now_us % 1_000_000:06d}Z"
        return os.path.join(directory, f"{stem}.{stamp}{suffix}")

    def _prune(self) -> None:
        if self._backup_count is None:
            return
        for old in _rotated_files(self.path)[: -self._backup_count]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)

    def _after_fork(self) -> None:
        """In a forked child: fresh lock, and our own descriptors on the next append.

        The parent's lock may have been held by a thread that does not exist here, and
        an inherited `flock` descriptor would not exclude the parent.
        """
        self._lock = threading.RLock()
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._fast_fd = self._lock_fd = None
        self._retry_at = 0.0

    # -- failures

    def _warn_once(self, exc: BaseException, op: str) -> None:
        cause = (op, errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__))
        if cause in self._warned:
            return
        self._warned.add(cause)
        logger.warning(
            "agent_usage: cannot %s event log %s: %s (further %s failures are only "
            "counted in EventLog.dropped)",
            op,
            self.path,
            exc,
            cause[1],
        )

    def _drop(self, exc: Exception, op: str) -> None:
        if self.strict:
            raise exc
        with self._lock:
            self.dropped += 1
            self._warn_once(exc, op)

    # -- lifecycle

    def close(self) -> None:
        """Close the file; later appends are dropped (or raise when strict)."""
        with self._lock:
            self._closed = True
            fd, lock_fd = self._fd, self._lock_fd
            self._fd = self._fast_fd = self._lock_fd = None
            if lock_fd is not None:
                os.close(lock_fd)
            if fd is not None:
                _retire(self, fd)
        _live_logs.discard(self)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventLog({self.path!r}, dropped={self.dropped})"


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
