"""Rotation for `EventLog`, under the rotation lock (see `_logfiles.RotationLock`).

Writers of a rotating log hold the lock shared while they check the path and write,
and rename the full file only holding it exclusive: once a file is rotated, no writer
that rotates writes to it again, so a follower that read it to its end has all of it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from ._logfiles import LOCK_WAIT_S, RotationLock, prune

logger = logging.getLogger(__name__)

# A rotation lock not had in LOCK_WAIT_S is left alone this long (see _share_lock).
_LOCK_BACKOFF_S = 5.0


class _Rotating:
    """The rotating part of `EventLog`, which provides the state and methods declared here."""

    path: str
    _fd: int | None
    _ident: tuple[int, int]
    _max_bytes: int | None
    _backup_count: int | None
    _fsync: bool
    _rotation: RotationLock
    _unlocked_until: float
    _warned: set[tuple[str, str]]

    if TYPE_CHECKING:

        def _verify(self) -> None: ...
        def _put(self, fd: int, line: bytes) -> None: ...
        def _drop(self, exc: Exception, op: str) -> None: ...
        def _open_failure(self) -> OSError: ...
        def _warn_once(self, exc: BaseException, op: str) -> None: ...

    def _write_rotating(self, line: bytes) -> None:
        """`append` with rotation on, under the rotation lock (see `RotationLock`)."""
        locked = self._share_lock()
        try:
            self._verify()
            fd, limit = self._fd, self._max_bytes
            assert limit is not None
            if locked and fd is not None and os.lseek(fd, 0, os.SEEK_END) >= limit:
                locked = self._rotate()
            if self._fd is None:
                self._drop(self._open_failure(), "open")
                return
            self._put(self._fd, line)
            if self._fsync:
                os.fsync(self._fd)
        finally:
            if locked:
                self._rotation.release()

    def _share_lock(self) -> bool:
        """Hold the rotation lock shared; if it cannot be had, go on without it for a while.

        A process holding it for over `LOCK_WAIT_S` is stopped or stuck: rather than
        make every append wait, events are written without the lock, and without
        rotating, for `_LOCK_BACKOFF_S`, and that is logged once.
        """
        now = time.monotonic()
        if now < self._unlocked_until:
            return False
        try:
            if self._rotation.share():
                return True
            cause: OSError = TimeoutError(
                f"{self._rotation.path} held by another process for over {LOCK_WAIT_S} s"
            )
        except OSError as exc:
            cause = exc
        self._unlocked_until = now + _LOCK_BACKOFF_S
        if ("lock", type(cause).__name__) not in self._warned:
            self._warned.add(("lock", type(cause).__name__))
            logger.warning(
                "agent_usage: cannot lock event log %s for rotation: %s; writing without "
                "rotating for %g s at a time",
                self.path,
                cause,
                _LOCK_BACKOFF_S,
            )
        return False

    def _rotate(self) -> bool:
        """Rotate the full file. Called and returns holding the lock shared (False: not held).

        The new file is created before the exclusive lock is released, so the path is
        never missing for other writers or for followers.
        """
        if self._rotation.exclusive_soon(self._is_current):
            rotated = False
            try:
                if self._is_current():  # not rotated by another writer meanwhile
                    os.rename(self.path, self._rotation.rotated_name(self.path))
                    rotated = True
                    self._verify()
            except OSError as exc:
                self._warn_once(exc, "rotate")  # keep writing to the full file
            finally:
                self._rotation.release()
            if rotated:
                prune(self.path, self._backup_count)
        locked = self._share_lock()
        self._verify()  # renamed by another writer: reopen the path
        return locked

    def _is_current(self) -> bool:
        """Whether the path still names the file we have open."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False  # gone, or cannot tell: do not rotate it
        return (st.st_dev, st.st_ino) == self._ident
