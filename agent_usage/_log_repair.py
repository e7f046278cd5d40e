"""Torn and short writes for `EventLog`: every line we write ends up whole, on its own line.

A writer killed mid-write leaves a fragment without a newline; a full disk or a
file size limit cuts a write short. A line glued onto such a fragment would be
skipped by every reader, so after each write the byte before it is checked and
the line written again after a newline when needed.
"""

from __future__ import annotations

import errno
import os

__all__: list[str] = []

_write = os.write
_lseek = os.lseek
_SEEK_CUR = os.SEEK_CUR


class _LineRepair:
    """The repairing part of `EventLog`, which provides the state declared here."""

    path: str
    _torn: bool  # the file ends mid-line: start the next write with "\n"
    _readable: bool  # the descriptor can read back the byte before a write
    _end: int  # where our last write ended; -1 when unknown
    _run_start: int
    _runs: list[tuple[int, int]]  # our lines since the last check of the path

    def _put(self, fd: int, line: bytes) -> None:
        """One write of `line` (after a newline if the file ends torn), then `_settle`."""
        data = b"\n" + line if self._torn else line
        n = _write(fd, data)
        self._settle(fd, data, line, n, _lseek(fd, 0, _SEEK_CUR))

    def _settle(self, fd: int, data: bytes, line: bytes, n: int, end: int) -> None:
        """Make sure `line`, just written as `data`, is whole on a line of its own.

        A write comes up short (full disk, file size limit), or lands after a fragment
        that a writer killed mid-write left: glued onto it, our line would be skipped
        by every reader. Writes from all processes are serialised by the kernel, so
        the byte just before ours is final: if it is not a newline, the line is written
        again after one. The check is skipped when our previous write ended where this
        one starts, the usual case with one writer.
        """
        if self._end >= 0:  # close the run of lines this one does not continue
            self._runs.append((self._run_start, self._end))
        start, self._end = end - n, -1
        if n != len(data):
            self._finish_short_write(fd, line, data, n)
            self._mark(fd, line)
            return
        self._torn = False
        start += len(data) - len(line)
        if start > 0 and self._readable and os.pread(fd, 1, start - 1) not in (b"\n", b""):
            fixed = b"\n" + line
            n = _write(fd, fixed)
            if n != len(fixed):
                self._finish_short_write(fd, line, fixed, n)
            self._mark(fd, line)
            return
        self._run_start, self._end = start, end

    def _mark(self, fd: int, line: bytes) -> None:
        """Note where `line` ended up after a repair: our last write ended it."""
        end = _lseek(fd, 0, _SEEK_CUR)
        self._runs.append((end - len(line), end))

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
