"""The append-only JSONL event log's writer: crash-safe appends from many threads and
processes, optional rotation (`_rotating`) and fsync. Reading it back lives in `_read`.

What the writer guarantees, on a local POSIX filesystem:

- Each event is one `os.write` of one complete line on a descriptor opened with
  O_APPEND, so lines from threads, asyncio tasks and processes never interleave.
- A line never glues onto a fragment a killed writer left: the byte before each
  write is checked after it, and the line written again after a newline if needed.
- A file deleted or replaced under the log is noticed within 0.1 s and the path
  reopened; our lines written meanwhile to a deleted file are written again.
- Waits are bounded (the rotation lock: 0.5 s), and FIFOs and devices are refused.
- Without `fsync`, a line is in the kernel's page cache when `append` returns: it
  survives the process dying, not the machine losing power.

Not guaranteed: atomic appends on network filesystems (NFS does not implement O_APPEND
atomically), and rotation coordination with writers that do not rotate themselves.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import orjson

from ._encode import _OPTS, _default, _encode
from ._log_repair import _LineRepair
from ._logfiles import (
    RotationLock,
    ends_torn,
    not_regular,
    open_regular,
)
from ._rotating import _Rotating

__all__ = ["EventLog"]

logger = logging.getLogger(__name__)

_dumps = orjson.dumps
_write = os.write
_lseek = os.lseek
_SEEK_CUR = os.SEEK_CUR
_monotonic = time.monotonic
# A failed open is retried at most this often, so a broken path costs little per event.
_REOPEN_INTERVAL_S = 1.0
# The path is compared with the open file (deleted? replaced?) at most this often.
_CHECK_INTERVAL_S = 0.1


# ---------------------------------------------------------------------------- writer

_live_logs: weakref.WeakSet[EventLog] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for log in list(_live_logs):
        log._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class EventLog(_LineRepair, _Rotating):
    """An append-only JSONL file: one `os.write` of one orjson line per event.

    Safe to share between threads and asyncio tasks, and to append to from several
    processes at once (each with its own `EventLog`). A child made by `fork()` reopens
    the file on its next append. A file deleted or replaced under the log (an operator,
    logrotate) is noticed by the first append 0.1 s after the last check, and the path
    reopened; our events written meanwhile to a deleted file are written again.

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
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._fd: int | None = None
        self._fast_fd: int | None = None  # _fd when a plain write is all an append needs
        self._ident = (0, 0)  # (st_dev, st_ino) of the open file
        self._readable = False
        self._end = -1  # where our last write ended: a write starting there glued onto nothing
        # Where our lines since the last check of the path are: runs of them written
        # back to back, as (start, end) offsets, the last one ending at _end. Offsets,
        # not the lines: holding on to lines makes every orjson.dumps several times
        # slower (its buffers stop being recycled).
        self._runs: list[tuple[int, int]] = []
        self._run_start = -1
        self._check_at = 0.0
        self._rotation = RotationLock(self.path)
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
        # acquire/release, not `with`: a third of the cost of a `with` block on 3.13.
        self._acquire()
        try:
            fd = self._fast_fd
            if fd is None:  # closed, failed, torn tail, rotation or fsync on
                self._write_slow(line)
                return
            # The common case inline: one write, and the offset it ended at.
            n = _write(fd, line)
            end = _lseek(fd, 0, _SEEK_CUR)
            if n != len(line) or end - n != self._end:
                self._settle(fd, line, line, n, end)
            else:
                self._end = end
            if _monotonic() >= self._check_at:
                self._verify()
        except OSError as exc:
            self._refresh()
            self._drop(exc, "write to")
        finally:
            self._release()

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
            if _monotonic() >= self._check_at:
                self._verify()
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
                self._torn = ends_torn(fd)
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

        Our lines since the last check, in a file that is now deleted, would be lost:
        they are read back from it (still open) and written to the new file, or
        counted as dropped if that cannot be done. A renamed file keeps them.
        """
        self._check_at = _monotonic() + _CHECK_INTERVAL_S
        runs, self._runs = self._runs, []
        if self._end >= 0:
            runs.append((self._run_start, self._end))
            self._run_start = self._end  # a new, empty run
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
        lost: list[bytes] = []
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_nlink == 0:
                for start, end in runs:
                    data = os.pread(fd, end - start, start) if self._readable else b""
                    *whole, rest = data.split(b"\n")
                    lost.extend(line + b"\n" for line in whole)
                    if rest or not whole:
                        lost.append(b"")  # cannot be read back: counted as dropped
        self._fd = self._fast_fd = None
        os.close(fd)
        self._open()
        self._refresh()
        unreadable = OSError(errno.EIO, "events written to the deleted file", self.path)
        for line in lost:
            if self._fd is None or not line.endswith(b"\n"):
                self._drop(self._open_failure() if self._fd is None else unreadable, "write to")
            else:
                self._put(self._fd, line)

    def _after_fork(self) -> None:
        """In a forked child: fresh lock, and our own descriptors on the next append.

        The parent's lock may have been held by a thread that does not exist here, and
        an inherited `flock` descriptor would not exclude the parent.
        """
        self._lock = threading.RLock()
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._rotation.close()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = self._fast_fd = None
        self._runs, self._end = [], -1
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
                self._rotation.close()
                fd, self._fd, self._fast_fd = self._fd, None, None
                if fd is not None:
                    os.close(fd)
        _live_logs.discard(self)

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventLog({self.path!r}, dropped={self.dropped})"
