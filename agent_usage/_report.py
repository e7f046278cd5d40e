"""Reports: `llm_usage` events summed per session, model, day or hour.

One streaming pass over the log: memory grows with the number of groups, never
with the number of events. Per event the work is one C-level `itemgetter` and a
list append; each group sums a batch of such tuples column-wise (C-level `sum`)
when it holds `_FOLD_AT` of them. Day and hour keys are slices of the ISO
timestamp (events are written in UTC), so no datetime is parsed per event.

How rows look (table, CSV, JSON) and the `agent-usage report` command live in
`_report_cli`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from functools import partial
from operator import add, is_not, itemgetter
from typing import Any

from ._pricing import PricesArg
from ._read import EventReader, read_events

__all__ = [
    "GROUP_KEYS",
    "Aggregate",
    "EventSource",
    "report",
]

# --by value -> the row's key name
GROUP_KEYS: dict[str, str] = {
    "session": "session_id",
    "model": "model",
    "day": "day",
    "hour": "hour",
}

# Summed as they are, both on events and on their per-model rows.
_INT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "llm_calls",
)
_CH1H = "cache_creation_1h_input_tokens"  # optional
_SAVED = "cache_savings_usd"
_WITHOUT = "llm_calls_without_usage"  # events only, not their per-model rows
# A group's running sums start with one vector in this order, so that a whole
# event is added by one C-level itemgetter and one map(add).
# Calls without usage come last: a model's share has everything but them.
_VECTOR = (*_INT_FIELDS, "cost_usd", _SAVED, _WITHOUT)
_CREATION = _VECTOR.index("cache_creation_input_tokens")
_COST, _SAVED_AT, _WITHOUT_AT = (_VECTOR.index(f) for f in ("cost_usd", _SAVED, _WITHOUT))
_COUNTS = (*range(len(_INT_FIELDS)), _WITHOUT_AT)
_get_vector = itemgetter(*_VECTOR)
_get_model = itemgetter(*_VECTOR[:_WITHOUT_AT])
_known = partial(is_not, None)
# Events a group holds before summing them: bounds memory per group.
_FOLD_AT = 64

# Column order of a row (after its key).
ROW_FIELDS = (
    "events",
    *_INT_FIELDS[:5],
    _CH1H,
    *_INT_FIELDS[5:],
    _WITHOUT,
    "cost_usd",
    "unpriced_events",
    _SAVED,
    "cache_hit_rate",
)

Row = dict[str, Any]
BoundArg = str | date | datetime | None

# The running sums of a group:
# [vector in _VECTOR order, 1h cache writes, events, unpriced events,
#  events with no known cost, events with no known savings]
_Sums = list[Any]


def _new_sums() -> _Sums:
    return [[0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0], 0, 0, 0, 0, 0]


def _add(sums: _Sums, src: Mapping[str, Any]) -> bool:
    """Add one event (or one model's share of it) to `sums`; False if malformed.

    The general path, for what the batched fast path leaves: missing or null
    counts, partly unpriced events with several models, 1h cache writes, by-model
    shares. A malformed event (a summed field that is not a number) is refused whole.
    """
    try:
        values = list(_get_vector(src))
    except KeyError:
        values = [src.get(f) for f in _VECTOR]
    for i in _COUNTS:
        if values[i] is None:  # missing or null (older writers; model shares): 0
            values[i] = 0
    cost, saved = values[_COST], values[_SAVED_AT]
    unpriced = cost is None
    if unpriced:
        # Null when any of the event's models is unpriced; the priced models'
        # share still counts.
        cost = _known_part(src, "cost_usd")
    if saved is None:
        saved = _known_part(src, _SAVED)
    values[_COST] = cost or 0.0
    values[_SAVED_AT] = saved or 0.0
    ch1h = src.get(_CH1H) or 0
    try:
        vector = list(map(add, sums[0], values))
        ch1h += sums[1]
    except TypeError:
        return False
    sums[0] = vector
    sums[1] = ch1h
    sums[2] += 1
    sums[3] += unpriced
    sums[4] += cost is None
    sums[5] += saved is None
    return True


def _fold(sums: _Sums, batch: list[tuple[Any, ...]]) -> int:
    """Add a batch of `_VECTOR` tuples to `sums`; returns how many were malformed.

    Each item is a model's share, a one-model event or a fully priced one, so a
    null cost or savings means "nothing priced". A model's share stops before
    calls without usage. A batch holding a non-number is added again item by
    item through `_add`, which drops only the bad ones, each whole.
    """
    cols = list(zip(*batch, strict=True))
    vector = sums[0]
    try:
        new = [vector[i] + sum(cols[i]) for i in range(_COST)]
        costs, savings = cols[_COST], cols[_SAVED_AT]
        new.append(vector[_COST] + sum(filter(_known, costs)))
        new.append(vector[_SAVED_AT] + sum(filter(_known, savings)))
        without = sum(cols[_WITHOUT_AT]) if len(cols) > _WITHOUT_AT else 0
        new.append(vector[_WITHOUT_AT] + without)
    except TypeError:
        # (zip: a model's share is one field short, _add reads it as 0)
        return sum(not _add(sums, dict(zip(_VECTOR, item))) for item in batch)  # noqa: B905
    unpriced = costs.count(None)
    sums[0] = new
    sums[2] += len(batch)
    sums[3] += unpriced
    sums[4] += unpriced
    sums[5] += savings.count(None)
    return 0


def _known_part(src: Mapping[str, Any], field: str) -> Any:
    """The sum of `field` over the event's models that have it; None if none has."""
    models = src.get("models")
    # One model: its figure is the event's, already known to be null.
    if (type(models) is not dict and not isinstance(models, Mapping)) or len(models) < 2:
        return None
    known = [
        v for m in models.values() if isinstance(m, Mapping) and (v := m.get(field)) is not None
    ]
    try:
        return sum(known) if known else None
    except TypeError:  # not numbers: as good as unknown
        return None


def _merge(into: _Sums, sums: _Sums) -> None:
    into[0] = list(map(add, into[0], sums[0]))
    for i in range(1, len(into)):
        into[i] += sums[i]


def _finish(key_name: str, key: Any, sums: _Sums) -> Row:
    """The public shape of a row: key first, then the summed event fields."""
    vector, ch1h, events, unpriced, no_cost, no_saved = sums
    row: Row = {key_name: key, "events": events, **dict(zip(_VECTOR, vector, strict=True))}
    row[_CH1H] = ch1h
    # A group's cost is unknown only when nothing in it was priced.
    row["cost_usd"] = round(row["cost_usd"], 10) if no_cost < events else None
    row["unpriced_events"] = unpriced
    row[_SAVED] = round(row[_SAVED], 10) if no_saved < events else None
    row["cache_hit_rate"] = (
        row["cache_read_input_tokens"] / row["input_tokens"] if row["input_tokens"] else None
    )
    return {f: row[f] for f in (key_name, *ROW_FIELDS)}


def _cost_order(row: Row) -> tuple[float, int]:
    return (row["cost_usd"] or 0.0, row["total_tokens"])


class Aggregate:
    """Events summed per group, streaming: memory grows with groups, not events.

    Args:
        by: "session", "model", "day" or "hour".

    Attributes:
        malformed: events dropped because a summed field was not a number.
    """

    def __init__(self, *, by: str = "session") -> None:
        if by not in GROUP_KEYS:
            raise ValueError(f"unknown grouping {by!r}: use one of {', '.join(GROUP_KEYS)}")
        self.by = by
        self.key_name = GROUP_KEYS[by]
        self._malformed = 0
        self._groups: dict[Any, _Sums] = {}
        # Events waiting per group to be summed column-wise, at most _FOLD_AT each.
        self._pending: defaultdict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        # Only by model do groups overlap (an event splits over its models), so
        # only then are the total's counts kept apart: [events, unpriced events].
        self._model_events = [0, 0]

    @property
    def malformed(self) -> int:
        """Events dropped because a summed field was not a number."""
        self._fold_all()
        return self._malformed

    def feed(self, events: Iterable[Mapping[str, Any]]) -> Aggregate:
        """Add every event of `events`; returns self."""
        pending = self._pending
        by = self.by
        get = _get_vector
        if by == "model":
            for e in events:
                self._split_models(e)
            return self
        for e in events:
            if by == "session":
                key = e.get("session_id")
            else:
                ts = e.get("timestamp")
                key = (ts[:10] if by == "day" else ts[:13]) if isinstance(ts, str) else None
            # The common event is one C-level lookup and one append; its group sums
            # a batch of them column by column (C-level too) when the batch is full.
            # This loop is the report's whole cost. Left to the general path: 1h
            # cache writes, and a null cost or savings when there are several models
            # (their priced share must be looked up).
            try:
                values = get(e)
                if not (values[_CREATION] and e.get(_CH1H)) and (
                    None not in values or len(e.get("models") or ()) < 2
                ):
                    batch = pending[key]
                    batch.append(values)
                    if len(batch) >= _FOLD_AT:
                        self._fold(key, batch)
                    continue
            except (KeyError, TypeError):
                pass
            sums = self._sums(key)
            if not _add(sums, e):
                self._malformed += 1
                if not sums[2]:
                    del self._groups[key]
        return self

    def _sums(self, key: Any) -> _Sums:
        sums = self._groups.get(key)
        if sums is None:
            sums = self._groups[key] = _new_sums()
        return sums

    def _fold(self, key: Any, batch: list[tuple[Any, ...]]) -> None:
        sums = self._sums(key)
        self._malformed += _fold(sums, batch)
        batch.clear()
        if not sums[2]:
            del self._groups[key]

    def _fold_all(self) -> None:
        for key, batch in self._pending.items():
            if batch:
                self._fold(key, batch)

    def _split_models(self, e: Mapping[str, Any]) -> None:
        """Split an event by its per-model breakdown, so mixed invokes count per model.

        The total is kept apart here (an event spans several rows): its events and
        unpriced events are counted, its sums are the model rows' sums.
        """
        models = e.get("models")
        label = e.get("model")
        if not isinstance(models, Mapping) or not models:
            # An event without a breakdown (older writers): the label is the model.
            models = {label: e}
        pending = self._pending
        for name, m in models.items():
            # As for events: a lookup and an append, or the general path.
            try:
                values = _get_model(m)
                if not (values[_CREATION] and m.get(_CH1H)):
                    batch = pending[name]
                    batch.append(values)
                    if len(batch) >= _FOLD_AT:
                        self._fold(name, batch)
                    continue
            except (KeyError, TypeError):
                pass
            if isinstance(m, Mapping):
                sums = self._sums(name)
                if not _add(sums, m):
                    self._malformed += 1
                    if not sums[2]:
                        del self._groups[name]
        self._model_events[0] += 1
        if e.get("cost_usd") is None:
            self._model_events[1] += 1
        # Calls that reported no usage name no model: they count under the event's
        # label when it is one of its models, else under a row for the label itself.
        without = e.get(_WITHOUT)
        if without and type(without) is int:
            self._sums(label)[0][_WITHOUT_AT] += without

    def rows(self, *, top: int | None = None) -> list[Row]:
        """The groups in their public shape.

        Days and hours come in time order, sessions and models by cost then
        tokens, most first; `top` keeps the N costliest (in that order).
        """
        self._fold_all()
        rows = [_finish(self.key_name, k, r) for k, r in self._groups.items()]
        if top is not None or self.by in ("session", "model"):
            rows.sort(key=_cost_order, reverse=True)
        else:
            rows.sort(key=lambda r: r[self.key_name] or "")
        return rows[:top] if top is not None else rows

    def total_row(self) -> Row:
        """The sum over all events, in the public row shape (key "total")."""
        self._fold_all()
        total = _new_sums()
        for sums in self._groups.values():
            _merge(total, sums)
        if self.by == "model":
            total[2], total[3] = self._model_events
        return _finish(self.key_name, "total", total)


# --- time bounds ---------------------------------------------------------------


def parse_bound(value: BoundArg, *, end: bool = False) -> str | None:
    """An ISO date or datetime as a UTC string that compares with event timestamps.

    Naive datetimes are taken as UTC. As an end bound, a bare date means the end
    of that day (the whole day is included).

    Raises:
        ValueError: when `value` is not an ISO date or datetime.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
        if end:
            moment += timedelta(days=1)
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
                if end:
                    moment += timedelta(days=1)
            else:
                # Python 3.10's fromisoformat does not read a trailing "Z".
                moment = datetime.fromisoformat(
                    text[:-1] + "+00:00" if text.endswith("Z") else text
                )
        except ValueError:
            raise ValueError(
                f"not an ISO date or datetime: {value!r} (e.g. 2026-11-22 or 2026-11-22T13:00)"
            ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    # Event timestamps look like 2026-11-22T23:14:09.123456+00:00: this prefix
    # compares correctly with them as plain strings.
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


class EventSource:
    """The `llm_usage` events of a log, filtered by time and optionally re-priced.

    Args:
        path: the log (rotated siblings included, as the reader does).
        since: keep events at or after this ISO date/datetime (UTC).
        until: keep events before this ISO datetime; a bare date includes that day.
        prices: re-price every event with these prices (a mapping or a TOML/JSON file).

    Raises:
        ValueError: a bad bound, or bad prices (the message names the value).
        OSError: the log cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        since: BoundArg = None,
        until: BoundArg = None,
        prices: PricesArg = None,
    ) -> None:
        self.lo = parse_bound(since)
        self.hi = parse_bound(until, end=True)
        self.reprice: Any = None
        if prices is not None:
            from ._pricing import Pricer

            self.reprice = Pricer(prices).reprice
        # The reader filters `since` itself (before events reach us); `until` is ours.
        self.reader: EventReader = read_events(path, types={"llm_usage"}, since=self.lo)

    @property
    def skipped(self) -> int:
        """Lines the reader skipped (blank, non-JSON, torn)."""
        return self.reader.skipped

    def __iter__(self) -> Iterator[dict[str, Any]]:
        events: Iterator[dict[str, Any]] = iter(self.reader)
        if self.hi is not None:
            events = _before(events, self.hi)
        if self.reprice is not None:
            events = map(self.reprice, events)
        return events


def _before(events: Iterator[dict[str, Any]], hi: str) -> Iterator[dict[str, Any]]:
    for e in events:
        ts = e.get("timestamp")
        # A string compare: `hi` is a UTC prefix in the events' own ISO form.
        if isinstance(ts, str) and ts < hi:
            yield e


def report(
    path: str | os.PathLike[str],
    *,
    by: str = "session",
    since: BoundArg = None,
    until: BoundArg = None,
    prices: PricesArg = None,
    top: int | None = None,
) -> list[dict[str, Any]]:
    """Sum the `llm_usage` events of a log per group, streaming.

    Args:
        path: the event log.
        by: "session" (key `session_id`), "model" (key `model`, split by each
            event's per-model breakdown), "day" (`day`, YYYY-MM-DD UTC) or
            "hour" (`hour`, YYYY-MM-DDTHH UTC).
        since: keep events at or after this ISO date/datetime (naive = UTC).
        until: keep events before this ISO datetime; a bare date includes that day.
        prices: re-price events with these prices (mapping or TOML/JSON file path).
        top: keep only the N groups that cost most (then most tokens).

    Returns:
        One dict per group: the key under its own name, `events`, every summed
        token field and `llm_calls`/`llm_calls_without_usage` under the event's
        names, `cost_usd` (None only when no event in the group was priced),
        `unpriced_events`, `cache_savings_usd` and `cache_hit_rate`
        (cache reads / input, None without input).

    Raises:
        ValueError: unknown `by`, a bad date, a negative `top`.
        FileNotFoundError: `path` does not exist.
    """
    _check_top(top)
    agg = Aggregate(by=by)
    agg.feed(EventSource(path, since=since, until=until, prices=prices))
    return agg.rows(top=top)


def _check_top(top: int | None) -> None:
    if top is not None and (not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive integer, got {top!r}")
