"""What makes an `llm_usage` line valid to sum, and the pure-Python reader that applies it.

The rule lives in one place, the typed records below; every command (`report`, every
`report --by`, the dashboard, `check`, the exporters' back-fill) reads through it, and
the DuckDB engine writes the same rule in SQL (`_engine_duckdb`). A line of type
`llm_usage` is summed only when every field a report reads has its type:

- `timestamp`: an RFC 3339 / ISO 8601 date-time (an offset, `Z`, or none = UTC);
- `session_id`, `model`, `host`, `status`: a string or null;
- every token count and call count: an integer in [0, 10**15], or null / missing
  (not reported: read as 0); never a bool, a float or a string;
- `cost_usd`: a number in [0, 1e15] or null (unpriced); `cache_savings_usd`: a number
  in [-1e15, 1e15] (caching can cost more than it saves) or null;
- `models`: an object of such per-model rows, or null / missing.

Any other value makes the whole line malformed: skipped and counted, never summed, so
the totals of every grouping agree. Other fields (ids, metadata, flags) are not read
and not checked.

msgspec checks all of this in C while it decodes only the fields a report reads, which
is why this reader is faster than a plain `orjson.loads` loop over the same lines.
"""

from __future__ import annotations

import errno
import glob
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec
import orjson

from ._logfiles import rotated_files
from ._match import MAX_LINE

__all__ = [
    "MAX_COUNT",
    "MAX_USD",
    "LogFiles",
    "ModelShare",
    "UsageEvent",
    "expand_paths",
    "to_utc",
    "validate",
]

MAX_COUNT = 10**15  # tokens or calls in one event: far past any real invoke
MAX_USD = 1e15  # and its cost: finite, and a sum of millions of them stays finite

Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
Usd = Annotated[float, msgspec.Meta(ge=0, le=MAX_USD)]
Savings = Annotated[float, msgspec.Meta(ge=-MAX_USD, le=MAX_USD)]

# Summed fields, in the order of an aggregate's vector.
COUNT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_1h_input_tokens",
    "reasoning_tokens",
    "llm_calls",
)
WITHOUT = "llm_calls_without_usage"  # events only: calls name no model
_NULLABLE = frozenset((*COUNT_FIELDS, WITHOUT))


# gc=False (inherited by both records): these records hold no references back to
# anything, and millions of them pass through a report; leaving them out of the
# cycle collector saves its passes.
class _Summed(msgspec.Struct, gc=False):
    """The fields a report sums, shared by an event and each model's share of it."""

    input_tokens: Count = 0  # COUNT_FIELDS, in order
    output_tokens: Count = 0
    total_tokens: Count = 0
    cache_read_input_tokens: Count = 0
    cache_creation_input_tokens: Count = 0
    cache_creation_1h_input_tokens: Count = 0
    reasoning_tokens: Count = 0
    llm_calls: Count = 0
    cost_usd: Usd | None = None
    cache_savings_usd: Savings | None = None


class ModelShare(_Summed):
    """One model's share of an event (`event["models"][name]`), as the rule reads it."""


class UsageEvent(_Summed):
    """The fields of an event that reports read, typed: decoding one checks the rule.

    Besides the summed fields: `type` is checked by the caller (other event types
    are not malformed, only not ours). A timestamp without an offset is UTC (see
    `to_utc`).
    """

    type: Any = None
    timestamp: datetime | None = None
    session_id: str | None = None
    model: str | None = None
    host: str | None = None
    status: str | None = None
    # Set on a nested tracked invoke's event, whose calls the outer event already holds.
    parent_invoke_id: str | None = None
    llm_calls_without_usage: Count = 0
    models: dict[str, ModelShare] | None = None


_decoder = msgspec.json.Decoder(UsageEvent)
_ValidationError = msgspec.ValidationError
_DecodeError = msgspec.DecodeError
LLM_USAGE = "llm_usage"


def to_utc(ts: datetime) -> datetime:
    """`ts` in UTC; a naive time is taken as UTC (events are written in UTC)."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=timezone.utc)
    if ts.tzinfo is timezone.utc:
        return ts
    return ts.astimezone(timezone.utc)


def validate(event: Mapping[str, Any]) -> UsageEvent | None:
    """The typed record of an `llm_usage` event dict, or None when the rule refuses it."""
    try:
        ev = msgspec.convert(_nulls_dropped(event), UsageEvent)
    except (_ValidationError, TypeError):
        return None
    return ev if ev.timestamp is not None else None


def _nulls_dropped(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """`event` without its null counts: null means "not reported", read as 0.

    The records keep counts non-null so that summing them needs no check; the rare
    line with a null count takes this slower path.
    """
    if not any(event.get(f, 0) is None for f in _NULLABLE):
        models = event.get("models")
        if not isinstance(models, Mapping) or all(
            not isinstance(m, Mapping) or not any(m.get(f, 0) is None for f in COUNT_FIELDS)
            for m in models.values()
        ):
            return event
    out = {k: v for k, v in event.items() if not (k in _NULLABLE and v is None)}
    models = out.get("models")
    if isinstance(models, Mapping):
        out["models"] = {
            name: {k: v for k, v in m.items() if not (k in COUNT_FIELDS and v is None)}
            if isinstance(m, Mapping)
            else m
            for name, m in models.items()
        }
    return out


# ---------------------------------------------------------------------------- files


def expand_paths(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[tuple[str, int]]:
    """The files of one or more logs with their sizes, oldest first per log, each file once.

    A path stands for the log and its rotated siblings (as `read_events` reads it); a
    glob (`*`, `?`, `[`) for every log it matches, each with its siblings. A file that
    two arguments name (a glob over a rotated set, a log named twice) is read once.

    Raises:
        FileNotFoundError: a path that does not exist, or a glob that matches nothing.
        IsADirectoryError: a path that is a directory.
        OSError: a path that is not a regular file (a FIFO, a device).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[tuple[str, int]] = []
    seen: set[tuple[int, int]] = set()
    for arg in paths:
        name = os.fspath(arg)
        matches = sorted(glob.glob(name)) if glob.has_magic(name) else [name]
        if not matches:
            raise FileNotFoundError(errno.ENOENT, "no log matches", name)
        for match in matches:
            if os.path.isdir(match):
                raise IsADirectoryError(errno.EISDIR, "event log path is a directory", match)
            group = rotated_files(match) if os.path.isdir(os.path.dirname(match) or ".") else []
            if os.path.exists(match):
                group.append(match)
            if not group:
                raise FileNotFoundError(errno.ENOENT, "no such event log", match)
            for f in group:
                try:
                    st = os.stat(f)
                except FileNotFoundError:  # pruned by a writer meanwhile
                    continue
                if not stat.S_ISREG(st.st_mode):  # a FIFO would block the reader forever
                    raise OSError(errno.EINVAL, "not a regular file, cannot be an event log", f)
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    files.append((f, st.st_size))
    return files


_CHUNK = 1 << 20


class LogFiles:
    """The lines of one or more logs, decoded under the rule, streaming in 1 MiB chunks.

    Attributes:
        path: the paths as given, for messages.
        files: the files read, in order.
        skipped: lines that are not a JSON object (blank, torn, garbage).
        malformed: `llm_usage` lines the rule refused.
        bytes_read / bytes_total: progress.
    """

    def __init__(self, paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> None:
        if isinstance(paths, (str, os.PathLike)):
            self.path = os.fspath(paths)
        else:
            self.path = " ".join(os.fspath(p) for p in paths)
        found = expand_paths(paths)
        self.files = [f for f, _ in found]
        self.skipped = 0
        self.malformed = 0
        self.bytes_read = 0
        self.bytes_total = sum(size for _, size in found)
        # Called after each chunk is read (the CLI's progress bar).
        self.on_chunk: Callable[[], None] | None = None

    def chunks(self) -> Iterator[list[bytes]]:
        """Lines, about 1 MiB of them at a time, across every file (oldest first).

        `readlines(hint)` splits in C and is several times faster than `bytes.split`
        here. A file's last line may lack its newline: a whole event or a torn one,
        the decoder tells which. A line longer than `MAX_LINE` is skipped and counted,
        as every reader does; this reader holds it whole meanwhile (memory peaks at the
        longest line), where `read_events` and the followers never do.
        """
        for name in self.files:
            try:
                f = open(name, "rb", buffering=_CHUNK)  # noqa: SIM115
            except FileNotFoundError:  # pruned by a writer since we listed it
                continue
            with f:
                while lines := f.readlines(_CHUNK):
                    size = sum(map(len, lines))
                    self.bytes_read += size
                    if size > MAX_LINE:  # only then can a line be over the limit
                        kept = [line for line in lines if len(line) <= MAX_LINE]
                        self.skipped += len(lines) - len(kept)
                        lines = kept
                    if self.on_chunk is not None:
                        self.on_chunk()
                    yield lines

    def events(self) -> Iterator[list[UsageEvent]]:
        """The valid `llm_usage` records, a chunk's worth at a time."""
        for records, _ in self._decoded(keep_lines=False):
            yield records

    def dicts(self) -> Iterator[tuple[UsageEvent, dict[str, Any]]]:
        """The valid `llm_usage` events as (record, the whole event dict) pairs."""
        for records, lines in self._decoded(keep_lines=True):
            for ev, line in zip(records, lines, strict=True):
                yield ev, orjson.loads(line)

    def _decoded(self, *, keep_lines: bool) -> Iterator[tuple[list[UsageEvent], list[bytes]]]:
        decode = _decoder.decode
        for lines in self.chunks():
            records: list[UsageEvent] = []
            kept: list[bytes] = []
            for line in lines:
                # One C call per line; a line it refuses is looked at again (rare).
                try:
                    ev = decode(line)
                except (_ValidationError, _DecodeError):
                    second = self._second_look(line)
                    if second is None:
                        continue
                    ev = second
                if ev.type != LLM_USAGE or ev.parent_invoke_id is not None:
                    continue  # not ours; or nested, its calls summed in the outer event
                if ev.timestamp is None:
                    self.malformed += 1
                    continue
                records.append(ev)
                if keep_lines:
                    kept.append(line)
            yield records, kept

    def _second_look(self, line: bytes) -> UsageEvent | None:
        """A line the typed decoder refused: not JSON, not ours, null counts, or malformed."""
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.skipped += 1  # blank, torn, not JSON
            return None
        if type(obj) is not dict:
            self.skipped += 1
            return None
        if obj.get("type") != LLM_USAGE:
            return None  # another event type with fields of its own shape: not ours to judge
        ev = validate(obj)
        if ev is None:
            self.malformed += 1
        return ev
