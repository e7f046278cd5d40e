"""The files of one event log, shared by its writer and its readers.

A log is its path plus the rotated files `<stem>.<UTC timestamp><suffix>` next to it,
whose names sort by age. Every open goes through `open_regular`, which refuses
anything but a regular file before it can block: opening a FIFO waits for its other
end, and reading a device can go on forever.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import time
from collections.abc import Callable
from datetime import datetime, timezone

_STAMP_RE = r"\.(\d{8}T\d{12}Z)"

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def split_name(path: str) -> tuple[str, str, str]:
    """The directory, stem and suffix of `path` (absolute)."""
    directory, base = os.path.split(os.path.abspath(path))
    stem, suffix = os.path.splitext(base)
    return directory, stem, suffix


def stamp_us(name: str) -> int:
    """Microseconds since the epoch from a rotated file's name."""
    match = re.search(_STAMP_RE, os.path.basename(name))
    assert match is not None
    s = match.group(1)  # YYYYmmddTHHMMSSffffffZ, parsed by hand: strptime's first call
    # imports a module and takes ~50 ms, with the rotation lock held.
    when = datetime(
        int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[9:11]), int(s[11:13]), int(s[13:15]),
        tzinfo=timezone.utc,
    )  # fmt: skip
    return int(when.timestamp()) * 1_000_000 + int(s[15:21])


def rotated_files(path: str, after: str | None = None) -> list[str]:
    """The rotated siblings of `path`, oldest first; with `after`, only those newer than it.

    `after` is a rotated file's path: names sort by age, so "newer" is "sorts after",
    which survives the file itself having been pruned since.
    """
    directory, stem, suffix = split_name(path)
    pattern = re.compile(re.escape(stem) + _STAMP_RE + re.escape(suffix))
    prefix = stem + "."
    names = sorted(
        n
        for n in os.listdir(directory)
        if n.startswith(prefix) and n.endswith(suffix) and pattern.fullmatch(n)
    )
    if after is not None:
        last = os.path.basename(after)
        names = [n for n in names if n > last]
    return [os.path.join(directory, n) for n in names]


def not_regular(path: str, mode: int) -> OSError:
    """The error for a log path that names something other than a regular file."""
    kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
    return OSError(errno.EINVAL, f"not a regular file ({kind}), cannot be an event log", path)


def open_regular(path: str, flags: int, mode: int = 0o600) -> int:
    """`os.open` that never blocks on a FIFO or device and only returns a regular file.

    Raises:
        OSError: as `os.open`, or EINVAL (see `not_regular`) for a FIFO, device,
            socket or directory.
    """
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # a FIFO without a reader or a socket, for writing
            raise
        try:
            kind = os.stat(path).st_mode
        except OSError:
            raise exc from None
        raise not_regular(path, kind) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, st.st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def next_rotated_name(path: str, newest_us: int | None = None) -> str:
    """The name for `path` rotated now, sorting after every existing one.

    Args:
        newest_us: the stamp of the newest rotated file, if known; else the directory
            is listed to find it. Names must keep sorting by age if the clock steps back.
    """
    directory, stem, suffix = split_name(path)
    if newest_us is None:
        existing = rotated_files(path)
        newest_us = stamp_us(existing[-1]) if existing else 0
    now_us = max(time.time_ns() // 1000, newest_us + 1)
    when = datetime.fromtimestamp(now_us // 1_000_000, timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%S") + f"{now_us % 1_000_000:06d}Z"
    return os.path.join(directory, f"{stem}.{stamp}{suffix}")


def prune(path: str, keep: int | None) -> None:
    """Delete all but the newest `keep` rotated files of `path` (None keeps all)."""
    if keep is None:
        return
    for old in rotated_files(path)[:-keep]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(old)


def ends_torn(fd: int) -> bool:
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


# The rotation lock is waited for at most this long.
LOCK_WAIT_S = 0.5


class RotationLock:
    """`flock` on `<path>.lock`: held shared by writers, exclusive to rotate; never waited on long.

    A writer holds it shared while it checks the path and writes, and renames the
    file only holding it exclusive: so once a file is rotated, no writer that takes
    the lock writes to it again, and a follower that read it to its end has it all.
    """

    def __init__(self, path: str) -> None:
        self.path = path + ".lock"
        self.fd: int | None = None

    def share(self) -> bool:
        """Take it shared, waiting `LOCK_WAIT_S` and 60 tries; False if it stayed held exclusive.

        Raises:
            OSError: the lock file cannot be opened.
        """
        return self._take(fcntl.LOCK_SH, LOCK_WAIT_S, tries=60)

    def exclusive_soon(self, still_needed: Callable[[], bool]) -> bool:
        """Trade the shared hold for an exclusive one, within 20 ms, while `still_needed()`.

        Writers holding it shared are mid-write (`flock` lets new shared holders in
        ahead of a waiting exclusive one, so waiting longer rarely helps); if it is
        not had, or another writer rotated meanwhile, this writer does not rotate.
        """
        self.release()
        deadline = time.monotonic() + 0.02
        while still_needed():
            if self._take(fcntl.LOCK_EX, 0.0):
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(0.0005)
        return False

    def rotated_name(self, log_path: str) -> str:
        """The name to rotate `log_path` to; call holding the lock exclusive.

        The newest stamp is kept in the lock file, so naming costs no directory scan
        (which, with thousands of rotated files, held the lock for long); the scan is
        only the fallback for a lock file without one.
        """
        assert self.fd is not None
        newest: int | None
        try:
            newest = int(os.pread(self.fd, 32, 0).split(b"\n")[0])
        except ValueError:
            newest = None
        name = next_rotated_name(log_path, newest)
        os.pwrite(self.fd, b"%020d\n" % stamp_us(name), 0)
        return name

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (which releases the lock); reopened on the next `share`."""
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _take(self, op: int, wait: float, tries: int = 1) -> bool:
        """Try until it is had, for at least `wait` seconds and `tries` attempts.

        Counting attempts too keeps a process starved of CPU (the lock is held only
        for moments, but its attempts may all land in them) from giving up early.
        """
        if self.fd is None:
            self.fd = open_regular(self.path, os.O_RDWR | os.O_CREAT)
        deadline, delay = time.monotonic() + wait, 0.0002
        while True:
            try:
                fcntl.flock(self.fd, op | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                tries -= 1
                if tries <= 0 and time.monotonic() >= deadline:
                    return False
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
