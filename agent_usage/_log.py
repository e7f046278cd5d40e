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

from ._logfiles import not_regular, open_regular, rotated_files, split_name, stamp_us

__all__ = ["EventLog"]

logger = logging.getLogger(__name__)

_OPTS = orjson.OPT_APPEND_NEWLINE
_dumps = orjson.dumps
_write = os.write
_lseek = os.lseek
_SEEK_CUR = os.SEEK_CUR
_monotonic = time.monotonic
# A failed open is retried at most this often, so a broken path costs little per event.
_REOPEN_INTERVAL_S = 1.0
# The path is compared with the open file (deleted? replaced?) after this long or this
# many bytes of events since the last check, whichever comes first.
_CHECK_INTERVAL_S = 0.1
_CHECK_BYTES = 1 << 20
# The rotation lock is waited for at most this long; then it is left alone this long.
_LOCK_WAIT_S = 0.5
_LOCK_BACKOFF_S = 5.0


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


def _ends_torn(fd: int) -> bool:
    """Whether the file ends mid-line because a writer died (not because one is writing).

    Another process's write in flight is visible byte by byte to us, so an unfinished
    last line only counts as torn once the file has stopped changing for ~10 ms;
    otherwise the next append would leave a needless blank line.
    """
    size, quiet = os.fstat(fd).st_size, 0.0
    while size > 0 and os.pread(fd, 1, size - 1) != b"\n":
        if quiet >= 0.01:
            return True
        time.sleep(0.002)
        new_size = os.fstat(fd).st_size
        quiet = quiet + 0.002 if new_size == size else 0.0
        size = new_size
    return False


class EventLog:
    """An append-only JSONL file: one `os.write` of one orjson line per event.

    Safe to share between threads and asyncio tasks, and to append to from several
    processes at once (each with its own `EventLog`). A child made by `fork()` reopens
    the file on its next append. A file deleted or replaced under the log (an operator,
    logrotate) is noticed within 0.1 s or 1 MiB of events and the path reopened; events
    written meanwhile to a deleted file are written again to the new one.

    Args:
        path: the log file; created with mode 0600 (an existing file keeps its mode).
        strict: raise write failures instead of logging them once and counting them
            in `dropped`.
        max_bytes: rotate once the file holds at least this many bytes: it is renamed
            to `<stem>.<UTC timestamp><suffix>` (e.g. `events.20261122T231409123456Z.jsonl`,
            names that sort by age) and a new file is started, which keeps `tail -F`
            working. None (the default) never rotates. Every writer of a rotating log
            should rotate it (use the same `max_bytes`).
        backup_count: rotated files to keep (the oldest are deleted); None keeps all.
        fsync: `fsync` after every event, so it survives a power loss, at the cost
            of a disk flush (milliseconds, not microseconds) per event.

    Raises:
        IsADirectoryError: `path` is a directory.
        FileNotFoundError: the directory of `path` does not exist.
        OSError: EINVAL when `path` is a FIFO, device or socket (it could block
            forever); with `strict=True`, any failure to open the file.
        ValueError: a bad `max_bytes` or `backup_count`.
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
        try:
            mode = os.stat(self.path).st_mode
        except OSError:
            mode = stat.S_IFREG  # not there yet (or not visible): open decides
        if not stat.S_ISREG(mode):
            raise not_regular(self.path, mode)
        self.strict = strict
        self._max_bytes = max_bytes
        self._backup_count = backup_count
        self._fsync = fsync
        self.dropped = 0
        # Every write happens under this lock: close() then never races a write, and
        # the offset read back after a write is this write's own.
        self._lock = threading.RLock()
        self._fd: int | None = None
        self._fast_fd: int | None = None  # _fd when a plain write is all an append needs
        self._ident = (0, 0)  # (st_dev, st_ino) of the open file
        self._readable = False
        self._end = -1  # where our last write ended: a write starting there glued onto nothing
        self._recent: list[bytes] = []  # written since the path was last checked
        self._recent_bytes = 0
        self._check_at = 0.0
        self._lock_fd: int | None = None
        self._unlocked_until = 0.0  # rotation lock unavailable: write without it until then
        self._closed = False
        self._torn = False  # the file ends mid-line: start the next write with "\n"
        self._retry_at = 0.0
        self._open_error: OSError | None = None
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
        with self._lock:
            fd = self._fast_fd
            if fd is None:  # closed, failed, torn tail, rotation or fsync on
                self._write_slow(line)
                return
            # The common case inline: one write, and the offset it ended at.
            try:
                n = _write(fd, line)
                end = _lseek(fd, 0, _SEEK_CUR)
                if n != len(line) or end - n != self._end:
                    self._settle(fd, line, line, n, end)
                else:
                    self._end = end
                self._recent.append(line)
                self._recent_bytes += n
                if self._recent_bytes >= _CHECK_BYTES or _monotonic() >= self._check_at:
                    self._verify()
            except OSError as exc:
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
                self._write_rotating(line)
                return
            assert self._fd is not None
            self._put(self._fd, line)
            if self._fsync:
                os.fsync(self._fd)
            if self._recent_bytes >= _CHECK_BYTES or _monotonic() >= self._check_at:
                self._verify()
        except OSError as exc:
            self._drop(exc, "write to")
        finally:
            self._refresh()

    def _put(self, fd: int, line: bytes) -> None:
        """One write of `line` (after a newline if the file ends torn), then `_settle`."""
        data = b"\n" + line if self._torn else line
        n = _write(fd, data)
        end = _lseek(fd, 0, _SEEK_CUR)
        self._settle(fd, data, line, n, end)
        self._recent.append(line)
        self._recent_bytes += len(line)

    def _settle(self, fd: int, data: bytes, line: bytes, n: int, end: int) -> None:
        """Make sure `line`, just written as `data`, is whole on a line of its own.

        A write comes up short (full disk, file size limit), or lands after a fragment
        that a writer killed mid-write left: glued onto it, our line would be skipped
        by every reader. Writes from all processes are serialised by the kernel, so
        the byte just before ours is final: if it is not a newline, the line is written
        again after one. The check is skipped when our previous write ended where this
        one starts, the usual case with one writer.
        """
        start = end - n
        self._end = end
        if n != len(data):
            self._end = -1
            if self._finish_short_write(fd, line, data, n):
                return
        self._torn = False
        if data[:1] == b"\n" or start <= 0 or not self._readable:
            return
        if os.pread(fd, 1, start - 1) in (b"\n", b""):
            return
        self._end = -1
        fixed = b"\n" + line
        n = _write(fd, fixed)
        if n != len(fixed):
            self._finish_short_write(fd, line, fixed, n)

    def _finish_short_write(self, fd: int, line: bytes, data: bytes, n: int) -> bool:
        """Complete a write the kernel cut short, without leaving a glued or doubled line.

        A strict prefix of an orjson object is never valid JSON, unless only the
        newline is missing. So: if only the newline is missing, write it; otherwise
        end the fragment with a newline (readers skip it) and write the event again
        whole, in one write, so other writers still cannot interleave with it.

        Returns:
            Whether `line` was written again, whole, after a newline.
        """
        again = False
        for _ in range(8):
            if n == len(data):
                self._torn = False
                return again
            if n > 0:
                self._torn = True  # until this loop completes the line
                if n == len(data) - 1:
                    data = b"\n"
                else:
                    data, again = b"\n" + line, True
            n = _write(fd, data)
        raise OSError(errno.EIO, "repeated short writes", self.path)

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

    # -- opening, replacement, rotation, fork

    def _open(self) -> None:
        """Open (or reopen) the file; called with the lock held."""
        flags = os.O_APPEND | os.O_CREAT
        try:
            try:
                # Read access to check the last byte before a write for a torn line.
                fd, readable = open_regular(self.path, os.O_RDWR | flags), True
            except PermissionError:
                fd, readable = open_regular(self.path, os.O_WRONLY | flags), False
            st = os.fstat(fd)
        except OSError as exc:
            self._open_error = exc
            self._retry_at = time.monotonic() + _REOPEN_INTERVAL_S
            if self.strict:
                raise
            self._warn_once(exc, "open")
            return
        self._torn = False
        if readable:
            with contextlib.suppress(OSError):
                self._torn = _ends_torn(fd)
        self._fd, self._readable, self._ident = fd, readable, (st.st_dev, st.st_ino)
        self._end = -1
        self._open_error = None
        self._check_at = _monotonic() + _CHECK_INTERVAL_S

    def _reopen(self) -> bool:
        """Get a descriptor back after close, fork or a failed open; False drops the event."""
        if self._closed:
            self._drop(ValueError(f"EventLog {self.path!r} is closed"), "append to")
            return False
        if time.monotonic() >= self._retry_at:
            self._open()
        if self._fd is None:
            # The real cause (permission, missing directory, ...), not "not open".
            self._drop(self._open_failure(), "open")
            return False
        return True

    def _open_failure(self) -> OSError:
        return self._open_error or OSError(errno.EBADF, "cannot open", self.path)

    def _verify(self) -> None:
        """Reopen the path if the file was deleted or replaced, like WatchedFileHandler.

        Lines written since the last check to a file that is now deleted would be
        lost: they are written again to the new file (or counted as dropped if it
        cannot be opened). A renamed file keeps them, so they are not repeated.
        """
        self._check_at = _monotonic() + _CHECK_INTERVAL_S
        recent, self._recent, self._recent_bytes = self._recent, [], 0
        fd = self._fd
        if fd is None:
            return
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._ident:
                return
        except FileNotFoundError:
            pass  # deleted, renamed, or its directory is gone
        except OSError:
            return  # cannot tell: keep the file we have
        try:
            deleted = os.fstat(fd).st_nlink == 0
        except OSError:
            deleted = True
        self._fd = self._fast_fd = None
        os.close(fd)
        self._open()
        self._refresh()
        if not deleted or not recent:
            return
        if self._fd is None:
            for _ in recent:
                self._drop(self._open_failure(), "open")
            return
        for line in recent:
            self._put(self._fd, line)

    def _write_rotating(self, line: bytes) -> None:
        """`append` with rotation on; called with the lock held.

        Writers hold the rotation lock (`flock` on `<path>.lock`) shared while they
        check the path and write, and rotate under it held exclusive: so once a file
        is renamed, no writer that rotates ever writes to it again, and followers
        that reached its end have all of it. The lock is never waited for long: past
        0.5 s (another process holding it, stopped or stuck), events are written
        without it or rotation for 5 s, and that is logged once.
        """
        now = _monotonic()
        locked = now >= self._unlocked_until and self._flock(fcntl.LOCK_SH)
        if not locked and now >= self._unlocked_until:
            self._unlocked_until = now + _LOCK_BACKOFF_S
            self._warn_once(
                TimeoutError(
                    f"{self.path}.lock held by another process for over {_LOCK_WAIT_S} s; "
                    f"writing without rotating for {_LOCK_BACKOFF_S} s"
                ),
                "lock",
            )
        try:
            self._verify()
            fd, limit = self._fd, self._max_bytes
            assert limit is not None
            if locked and fd is not None and _lseek(fd, 0, os.SEEK_END) >= limit:
                locked = self._rotate()
            if self._fd is None:
                self._drop(self._open_failure(), "open")
                return
            self._put(self._fd, line)
            if self._fsync:
                os.fsync(self._fd)
        finally:
            if locked and self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _flock(self, op: int) -> bool:
        """Take the rotation lock (LOCK_SH or LOCK_EX), waiting at most `_LOCK_WAIT_S`."""
        try:
            if self._lock_fd is None:
                self._lock_fd = open_regular(self.path + ".lock", os.O_RDWR | os.O_CREAT)
            deadline, delay = _monotonic() + _LOCK_WAIT_S, 0.0002
            while True:
                try:
                    fcntl.flock(self._lock_fd, op | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if _monotonic() >= deadline:
                        return False
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
        except OSError as exc:
            self._warn_once(exc, "lock")
            return False

    def _rotate(self) -> bool:
        """Rotate the full file. Called and returns holding the lock shared (False: not held).

        The exclusive lock is only tried, never waited for: writers holding it shared
        are mid-write, and one of the next appends will find it free.
        """
        lock_fd = self._lock_fd
        assert lock_fd is not None
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) == self._ident:
                    os.rename(self.path, self._rotated_name())
                    self._prune()
            except OSError as exc:
                self._warn_once(exc, "rotate")  # keep writing to the full file
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        locked = self._flock(fcntl.LOCK_SH)
        self._verify()  # renamed by us or another writer: reopen the path
        return locked

    def _rotated_name(self) -> str:
        directory, stem, suffix = split_name(self.path)
        now_us = time.time_ns() // 1000
        existing = rotated_files(self.path)
        if existing:
            # Names must keep sorting by age even if the clock steps back.
            now_us = max(now_us, stamp_us(existing[-1]) + 1)
        when = datetime.fromtimestamp(now_us // 1_000_000, timezone.utc)
        stamp = when.strftime("%Y%m%dT%H%M%S") + f"{now_us % 1_000_000:06d}Z"
        return os.path.join(directory, f"{stem}.{stamp}{suffix}")

    def _prune(self) -> None:
        if self._backup_count is None:
            return
        for old in rotated_files(self.path)[: -self._backup_count]:
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
        self._recent, self._recent_bytes, self._end = [], 0, -1
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
        """Close the file; later appends are dropped (or raise when strict).

        A file deleted since the last check gets its recent events written again to
        the path first, as on any append.
        """
        with self._lock:
            try:
                if not self._closed:
                    self._verify()
            except OSError as exc:
                self._drop(exc, "write to")
            finally:
                self._closed = True
                fd, lock_fd = self._fd, self._lock_fd
                self._fd = self._fast_fd = self._lock_fd = None
                for f in (lock_fd, fd):
                    if f is not None:
                        os.close(f)
        _live_logs.discard(self)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventLog({self.path!r}, dropped={self.dropped})"
