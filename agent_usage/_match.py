"""Bytes to events: the line splitter and filter shared by every reader of the log.

`_Matcher.feed` takes the file in chunks and returns the complete lines worth parsing,
`_events` parses them and applies the type and time filters, counting bad lines in
`skipped`. Linear in the input whatever the line lengths, with bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import orjson

# The longest line (newline included) a reader of ours accepts: read_events, the
# followers, the budget ledger and the Python report engine skip and count longer ones,
# so they agree on what a log holds. An event is a few KB; here a longer line is dropped
# as it is read, never held whole.
MAX_LINE = 16 << 20


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
        self._parts: list[bytes] = []  # the unterminated line so far, in pieces
        self._pending = 0  # bytes in _parts
        self._skipping = False  # inside a line too long to keep: drop up to its newline
        self._patterns: list[bytes] | None = None
        self._escape = b"\\u"
        if self.types is not None:
            self._patterns, self._escape = _type_needles(self.types)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines worth parsing that `chunk` completes; its unterminated end is kept.

        A line spread over many chunks is kept as a list of pieces and joined once,
        so reading is linear in the input; one longer than `MAX_LINE` is dropped as
        it grows and counted in `skipped`, so memory stays bounded too.
        """
        cut = chunk.rfind(b"\n")
        if cut < 0:
            if not self._skipping:
                self._parts.append(chunk)
                self._pending += len(chunk)
                if self._pending > MAX_LINE:
                    self._drop_long_line()
            return []
        lines = []
        start = 0
        if self._skipping or self._parts:
            start = chunk.find(b"\n") + 1  # the end of the line begun in earlier chunks
            if self._parts and self._pending + start <= MAX_LINE:
                self._parts.append(chunk[: start - 1])
                line = b"".join(self._parts)
                if self._may_match(line):
                    lines.append(line)
            elif self._parts:
                self.skipped += 1
            self._skipping = False
        self._parts = [chunk[cut + 1 :]] if cut + 1 < len(chunk) else []
        self._pending = len(chunk) - cut - 1
        lines.extend(self._split(chunk, start, cut + 1))
        return lines

    def finish(self) -> list[bytes]:
        """The unterminated end of a file: an event missing its newline, or torn."""
        line = b"".join(self._parts)
        self.reset()
        return [line] if line.strip() and self._may_match(line) else []

    def reset(self) -> None:
        """Forget the unterminated end (the file was truncated or left)."""
        self._parts, self._pending, self._skipping = [], 0, False

    def _drop_long_line(self) -> None:
        self._parts, self._pending, self._skipping = [], 0, True
        self.skipped += 1

    def _may_match(self, line: bytes) -> bool:
        if self._patterns is None:
            return True
        return self._escape in line or any(p in line for p in self._patterns)

    def _split(self, buf: bytes, start: int, end: int) -> list[bytes]:
        """The lines of `buf[start:end]` (whole lines) worth parsing.

        Without a type filter, every line. With one, only lines that contain a
        wanted type's JSON form (or an escape): `bytes.find` over the whole buffer
        skips the others without a Python-level step per line, which is most of the
        reader's speed.
        """
        if self._patterns is None:
            if start == 0 and end == len(buf):
                lines = buf.split(b"\n")
            else:
                lines = buf[start:end].split(b"\n")
            lines.pop()
            return lines
        patterns = self._patterns
        if b"\\" in buf and self._escape in buf:  # memchr first: backslashes are rare
            patterns = [*patterns, self._escape]
        find, rfind = buf.find, buf.rfind
        # buf[start - 1] is a newline (or start is 0), so rfind never looks before start.
        if len(patterns) == 1:
            (pattern,) = patterns
            lines = []
            pos = start
            while (i := find(pattern, pos, end)) >= 0:
                begin = rfind(b"\n", 0, i) + 1
                pos = find(b"\n", i, end)
                lines.append(buf[begin:pos])
                pos += 1
            return lines
        starts = set()
        for pattern in patterns:
            pos = start
            while (i := find(pattern, pos, end)) >= 0:
                starts.add(rfind(b"\n", 0, i) + 1)
                pos = find(b"\n", i, end) + 1
        return [buf[s : find(b"\n", s)] for s in sorted(starts)]

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
