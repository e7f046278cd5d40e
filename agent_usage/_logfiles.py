"""The files of one event log, shared by its writer and its readers.

A log is its path plus the rotated files `<stem>.<UTC timestamp><suffix>` next to it,
whose names sort by age. Every open goes through `open_regular`, which refuses
anything but a regular file before it can block: opening a FIFO waits for its other
end, and reading a device can go on forever.
"""

from __future__ import annotations

import errno
import os
import re
import stat
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
    when = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    return int(when.timestamp()) * 1_000_000 + when.microsecond


def rotated_files(path: str, after: str | None = None) -> list[str]:
    """The rotated siblings of `path`, oldest first; with `after`, only those newer than it.

    `after` is a rotated file's path: names sort by age, so "newer" is "sorts after",
    which survives the file itself having been pruned since.
    """
    directory, stem, suffix = split_name(path)
    pattern = re.compile(re.escape(stem) + _STAMP_RE + re.escape(suffix))
    names = sorted(n for n in os.listdir(directory) if pattern.fullmatch(n))
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
