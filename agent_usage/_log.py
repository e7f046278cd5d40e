"""The append-only JSONL event log's writer: crash-safe appends from many threads and
processes, optional rotation and fsync. Reading it back lives in `_read`.

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
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["EventLog"]

logger = logging.getLogger(__name__)

_OPTS = orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps
_write = os.write
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
