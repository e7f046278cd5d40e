"""The spend ledger behind budgets: session and day totals of one event log, kept current.

One `Ledger` per log path per process, shared by every budget guard and by the
budget middleware. At first use it reads the log once, from its oldest rotated
file to its end, keeping only totals: per session (all time) and for the current
UTC day (overall and per metadata value, for `day_key`). After that it never
re-reads the log: a follower (`_read._Follower`, the one `follow` uses) picks up
only the bytes other processes appended since, at each check. This process's own
calls are added as they finish (`record`), so concurrent invokes see each other's
completed calls at once; its own events, when the follower reads them back, are
skipped by invoke id, so nothing is counted twice. Events of nested tracked
invokes (with `parent_invoke_id`) are skipped too: the enclosing invoke's event
holds their calls.

Tokens are an event's `total_tokens`; dollars its `cost_usd`, or, when that is null
(an unpriced model), the sum of its priced models' costs. An event with a count,
cost, session id or timestamp of the wrong type is skipped whole (and counted in
`Ledger.malformed`), as every reader of the log skips it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Hashable, Iterable, Mapping
from datetime import date, datetime, timezone
from operator import itemgetter
from typing import Any

from ._logfiles import rotated_files
from ._match import _Matcher, _parse_time
from ._read import _Follower

__all__ = ["Ledger", "ledger_for"]

logger = logging.getLogger(__name__)

# Call ids remembered to count a call seen by several guards once (nested scopes).
_CALLS_KEPT = 4096
_READ_CHUNK = 1 << 20
_FIELDS = itemgetter("total_tokens", "cost_usd", "timestamp", "session_id")


class _Sums:
    """Dollars and tokens spent in one window."""

    __slots__ = ("tokens", "usd")

    def __init__(self) -> None:
        self.usd = 0.0
        self.tokens = 0

    def add(self, usd: float, tokens: int) -> None:
        self.usd += usd
        self.tokens += tokens


def _utc_day(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86400, timezone.utc).strftime("%Y-%m-%d")


def _event_day(ts: object) -> str | None:
    """The UTC day of an event's timestamp (a slice when it is written in UTC)."""
    if isinstance(ts, str) and ts.endswith(("+00:00", "Z")) and len(ts) >= 10:
        return ts[:10]
    when = _parse_time(ts)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d") if when is not None else None


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _day_value(value: object) -> Hashable | None:
    """A metadata value as a day bucket key; None when it cannot be one."""
    kind = type(value)
    if kind is str or kind is int or kind is float:
        return value
    return None


def _event_spend(event: Mapping[str, Any]) -> tuple[float, int] | None:
    """(usd, tokens) of an `llm_usage` event; None when its counts are malformed."""
    tokens = event.get("total_tokens")
    if type(tokens) is not int or tokens < 0:
        return None
    cost = event.get("cost_usd")
    if cost is None:
        # Unpriced model(s): the priced models' share still counts.
        cost = 0.0
        models = event.get("models")
        if isinstance(models, Mapping):
            for row in models.values():
                part = row.get("cost_usd") if isinstance(row, Mapping) else None
                if isinstance(part, (int, float)) and not isinstance(part, bool) and part >= 0:
                    cost += part
    elif type(cost) not in (int, float) or cost < 0:
        return None
    return float(cost), tokens


class Ledger:
    """Session and day totals of one log (or of this process only, without a file).

    Args:
        path: the event log, or None for totals of this process's calls alone.

    All methods are thread-safe; `spent` is cheap after the first call (a stat
    and a read that returns nothing when no other process wrote).
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._loaded = path is None
        self._follower: _Follower | None = None
        self._sessions: dict[str, _Sums] = {}
        self._day_number = int(time.time()) // 86400
        self._day = _utc_day(self._day_number)
        self._day_total = _Sums()
        self._day_by: dict[tuple[str, Hashable], _Sums] = {}
        # Invokes of this process whose calls were recorded: their events are skipped.
        self._own: set[str] = set()
        self._calls: dict[str, None] = {}
        self.malformed = 0
        self._warned = False
        self._seen: tuple[int, int, int, int] | None = None  # the log's stat at the last poll

    # -------------------------------------------------------------- queries

    def spent(
        self,
        session_id: str | None,
        *,
        day: bool,
        day_key: str | None = None,
        day_value: object = None,
    ) -> tuple[tuple[float, int] | None, tuple[float, int] | None]:
        """((usd, tokens) of `session_id`, (usd, tokens) of today), each None when not asked.

        Reads what other processes appended to the log since the last call first
        (the whole log at the first call). Today (UTC) is all of it, or, with
        `day_key`, the calls whose metadata[day_key] == day_value.
        """
        with self._lock:
            self._refresh()
            session = None
            if session_id is not None:
                sums = self._sessions.get(session_id)
                session = (sums.usd, sums.tokens) if sums is not None else (0.0, 0)
            if not day:
                return session, None
            self._roll_day()
            if day_key is None:
                today: _Sums | None = self._day_total
            else:
                bucket = _day_value(day_value)
                today = self._day_by.get((day_key, bucket)) if bucket is not None else None
            return session, ((today.usd, today.tokens) if today is not None else (0.0, 0))

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            if not self._loaded:
                self._load()
            else:
                self._poll()
        except OSError as exc:  # an unreadable log must not break the agent
            if not self._warned:
                self._warned = True
                logger.warning(
                    "agent_usage: budget cannot read %s (%s); its totals hold this "
                    "process's calls and what was read before",
                    self.path,
                    exc,
                )

    # -------------------------------------------------------------- updates

    def record(
        self,
        *,
        call_id: str | None,
        invoke_ids: Iterable[str],
        session_id: str | None,
        metadata: Mapping[str, Any] | None,
        usd: float,
        tokens: int,
    ) -> None:
        """Add one finished call of this process (once per `call_id`).

        `invoke_ids`: the tracked invokes whose events will hold the call; those
        events are skipped when the log is followed, so the call counts once.
        """
        with self._lock:
            if not self._loaded:  # the log's events first, then this call
                self._refresh()
            if call_id is not None:
                if call_id in self._calls:
                    return
                self._calls[call_id] = None
                if len(self._calls) > _CALLS_KEPT:
                    del self._calls[next(iter(self._calls))]
            if self.path is not None:
                self._own.update(invoke_ids)
            self._roll_day()
            self._add(session_id, metadata, usd, tokens, today=True)

    # -------------------------------------------------------------- internals

    def _add(
        self,
        session_id: object,
        metadata: object,
        usd: float,
        tokens: int,
        *,
        today: bool,
    ) -> None:
        if type(session_id) is str:
            sums = self._sessions.get(session_id)
            if sums is None:
                sums = self._sessions[session_id] = _Sums()
            sums.add(usd, tokens)
        if not today:
            return
        self._day_total.add(usd, tokens)
        if metadata and (type(metadata) is dict or isinstance(metadata, Mapping)):
            for key, value in metadata.items():
                bucket = _day_value(value)
                if bucket is None or not isinstance(key, str):
                    continue
                sums = self._day_by.get((key, bucket))
                if sums is None:
                    sums = self._day_by[(key, bucket)] = _Sums()
                sums.add(usd, tokens)

    def _roll_day(self) -> None:
        # An integer division per check; the day's string only when it changes.
        number = int(time.time()) // 86400
        if number != self._day_number:  # midnight UTC: a new day starts from zero
            self._day_number = number
            self._day = _utc_day(number)
            self._day_total = _Sums()
            self._day_by = {}

    def _take(self, events: list[dict[str, Any]]) -> None:
        # Per event of the first read: this loop is its cost next to the reader's,
        # so the common event (UTC timestamp, int tokens, float cost) is one C-level
        # itemgetter and a few type checks.
        own = self._own
        day = self._day
        sessions = self._sessions
        days: dict[str, bool] = {}
        for event in events:
            if own:
                invoke_id = event.get("invoke_id")
                if type(invoke_id) is str and invoke_id in own:
                    # Ours: its calls were counted as they finished. Its event comes once.
                    own.discard(invoke_id)
                    continue
            if "parent_invoke_id" in event:
                continue  # a nested invoke: its calls are in the enclosing invoke's event
            try:
                tokens, usd, ts, session_id = _FIELDS(event)
            except KeyError:
                get = event.get
                tokens, usd, ts = get("total_tokens"), get("cost_usd"), get("timestamp")
                session_id = get("session_id")
            if not (type(tokens) is int and type(usd) is float and tokens >= 0 and usd >= 0):
                spend = _event_spend(event)
                if spend is None:
                    self.malformed += 1
                    continue
                usd, tokens = spend
            if session_id is not None and type(session_id) is not str:
                self.malformed += 1  # as every reader of the log does: skipped whole
                continue
            if type(ts) is str and ts.endswith("+00:00") and ts[10:11] == "T":
                prefix = ts[:10]
                valid = days.get(prefix)
                if valid is None:
                    valid = days[prefix] = _is_date(prefix)
                event_day: str | None = prefix if valid else None
            else:
                event_day = _event_day(ts)
            if event_day is None:  # no readable timestamp: skipped, as by every reader
                self.malformed += 1
                continue
            if event_day == day:
                self._add(session_id, event.get("metadata"), usd, tokens, today=True)
            elif session_id is not None:
                sums = sessions.get(session_id)
                if sums is None:
                    sums = sessions[session_id] = _Sums()
                sums.usd += usd
                sums.tokens += tokens

    def _load(self) -> None:
        """The one full read: rotated files, then the live file through the follower."""
        assert self.path is not None
        self._roll_day()
        # Open the follower first (at the live file's start): whatever is appended
        # from now on reaches us through it, exactly once.
        follower = _Follower(self.path, {"llm_usage"}, None, True)
        live = follower._ident if follower._file is not None else None
        matcher = _Matcher({"llm_usage"}, None)
        for name in rotated_files(self.path):
            with contextlib.suppress(FileNotFoundError), open(name, "rb", buffering=0) as f:
                st = os.fstat(f.fileno())
                if live is not None and (st.st_dev, st.st_ino) == live:
                    continue  # rotated since the follower opened it: the follower reads it
                matcher.reset()
                while chunk := f.read(_READ_CHUNK):
                    self._take(list(matcher._events(matcher.feed(chunk))))
                self._take(list(matcher._events(matcher.finish())))
        self._follower = follower
        self._loaded = True
        self._poll()
        self.malformed += matcher.skipped

    def _poll(self) -> None:
        follower = self._follower
        if follower is None or self.path is None:
            return
        # One stat when nothing was appended since the last poll (the usual case
        # between two calls of one invoke). Taken before polling, so that bytes
        # appended while the follower reads change it, and are read next time.
        try:
            st = os.stat(self.path)
            seen: tuple[int, int, int, int] | None = (
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
            )
        except OSError:
            seen = None  # mid-rotation, or gone: the follower knows what to do
        if seen is not None and seen == self._seen:
            return
        more = True
        while more:
            events, more = follower.poll()
            if events:
                self._take(events)
        self._seen = seen

    def close(self) -> None:
        """Stop following the log (the totals stay)."""
        with self._lock:
            if self._follower is not None:
                self._follower.close()
                self._follower = None  # a closed follower would reopen the log at its start


_LEDGERS: dict[str, Ledger] = {}
_MEMORY: weakref.WeakKeyDictionary[Any, Ledger] = weakref.WeakKeyDictionary()
_SHARED_MEMORY = Ledger(None)
_REGISTRY_LOCK = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Close the followers' files at exit (the ledgers live as long as the process)."""
    for ledger in list(_LEDGERS.values()):
        ledger.close()


def ledger_for(log: object) -> Ledger:
    """The process's one ledger for `log`: an `EventLog`, a path, or a non-file sink.

    A log with a file path shares one ledger per real path. A sink without a path
    (e.g. `testing.capture_events`) gets one ledger of its own, holding this
    process's calls only; None shares one such ledger for the process.
    """
    path = getattr(log, "path", log)
    if isinstance(path, (str, os.PathLike)):
        key = os.path.realpath(os.fspath(path))
        with _REGISTRY_LOCK:
            ledger = _LEDGERS.get(key)
            if ledger is None:
                ledger = _LEDGERS[key] = Ledger(key)
            return ledger
    if log is None:
        return _SHARED_MEMORY
    with _REGISTRY_LOCK:
        try:
            ledger = _MEMORY.get(log)
            if ledger is None:
                ledger = _MEMORY[log] = Ledger(None)
            return ledger
        except TypeError:  # not weak-referenceable: process-wide totals
            return _SHARED_MEMORY
