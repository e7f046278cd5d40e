"""Reports: `llm_usage` events summed per session, model, day, hour or host.

One streaming pass over one or more logs: memory grows with the number of groups,
never with the number of events. Every event goes through the one validity rule of
`_engine_python` first (a line it refuses is counted in `malformed` and summed by no
grouping), so the totals of `report`, every `report --by` and the dashboard agree.

Per event the work is one typed decode (in C) and its fields added to its group's
running sums at once (see `_add`). Day and hour keys come from the timestamp
converted to UTC.

With `engine="duckdb"` the same sums come from SQL (`_engine_duckdb`) into the same
`Aggregate`. How rows look (table, CSV, JSON) lives with the CLI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from operator import attrgetter
from typing import Any

from ._engine_python import (
    COUNT_FIELDS,
    WITHOUT,
    ModelShare,
    UsageEvent,
    to_utc,
    validate,
)
from ._pricing import PricesArg

# Re-exported: the CLI, the dashboard and the exporters take them from here.
from ._source import ENGINES, BoundArg, EventSource, PathsArg, parse_bound

__all__ = [
    "ENGINES",
    "GROUP_KEYS",
    "Aggregate",
    "BoundArg",
    "EventSource",
    "PathsArg",
    "feed_all",
    "parse_bound",
    "report",
]

# --by value -> the row's key name
GROUP_KEYS: dict[str, str] = {
    "session": "session_id",
    "model": "model",
    "day": "day",
    "hour": "hour",
    "host": "host",
}

_SAVED = "cache_savings_usd"

# Column order of a row (after its key).
ROW_FIELDS = (
    "events",
    *COUNT_FIELDS,
    WITHOUT,
    "cost_usd",
    "unpriced_events",
    _SAVED,
    "cache_hit_rate",
)

Row = dict[str, Any]

# The running sums of a group, one list:
_COUNTS, _WITHOUT, _COST, _SAVINGS, _EVENTS, _UNPRICED, _NO_COST, _NO_SAVED = range(8)
# [counts in COUNT_FIELDS order, calls without usage, cost, savings, events,
#  unpriced events, events with no known cost, events with no known savings]
_Sums = list[Any]


def new_sums() -> _Sums:
    """Empty running sums (also what the DuckDB engine fills)."""
    return [[0] * len(COUNT_FIELDS), 0, 0.0, 0.0, 0, 0, 0, 0]


def _add(sums: _Sums, rec: UsageEvent | ModelShare) -> None:
    """Add one valid record (an event or a model's share) to `sums`.

    Summed at once, field by field, not batched: a record kept for later costs more
    (memory the cache no longer holds) than the additions it would save. Counts are
    never null in a record (the rule reads null as 0), so nothing here can fail.
    """
    c = sums[_COUNTS]
    c[0] += rec.input_tokens
    c[1] += rec.output_tokens
    c[2] += rec.total_tokens
    c[3] += rec.cache_read_input_tokens
    c[4] += rec.cache_creation_input_tokens
    c[5] += rec.cache_creation_1h_input_tokens
    c[6] += rec.reasoning_tokens
    c[7] += rec.llm_calls
    sums[_EVENTS] += 1
    cost = rec.cost_usd
    if cost is None:
        sums[_UNPRICED] += 1
        sums[_NO_COST] += 1
    else:
        sums[_COST] += cost
    saved = rec.cache_savings_usd
    if saved is None:
        sums[_NO_SAVED] += 1
    else:
        sums[_SAVINGS] += saved


def _merge(into: _Sums, sums: _Sums) -> None:
    into[_COUNTS] = [a + b for a, b in zip(into[_COUNTS], sums[_COUNTS], strict=True)]
    for i in range(_WITHOUT, len(into)):
        into[i] += sums[i]


def _key_text(by: str, key: Any) -> Any:
    if by == "day" and isinstance(key, date):
        return key.isoformat()
    if by == "hour" and isinstance(key, datetime):
        return key.strftime("%Y-%m-%dT%H")
    return key


def _finish(key_name: str, key: Any, sums: _Sums) -> Row:
    """The public shape of a row: key first, then the summed event fields."""
    counts, without, cost, saved, events, unpriced, no_cost, no_saved = sums
    row: Row = {key_name: key, "events": events, **dict(zip(COUNT_FIELDS, counts, strict=True))}
    row[WITHOUT] = without
    # A group's cost is unknown only when nothing in it was priced.
    row["cost_usd"] = round(cost, 10) if no_cost < events else None
    row["unpriced_events"] = unpriced
    row[_SAVED] = round(saved, 10) if no_saved < events else None
    row["cache_hit_rate"] = (
        row["cache_read_input_tokens"] / row["input_tokens"] if row["input_tokens"] else None
    )
    return {f: row[f] for f in (key_name, *ROW_FIELDS)}


def _cost_order(row: Row) -> tuple[float, int]:
    return (row["cost_usd"] or 0.0, row["total_tokens"])


def _known_part(ev: UsageEvent, field: str) -> float | None:
    """The sum of `field` over the event's models that have it; None if none has."""
    assert ev.models is not None
    known = [v for m in ev.models.values() if (v := getattr(m, field)) is not None]
    return sum(known) if known else None


class Aggregate:
    """Events summed per group, streaming: memory grows with groups, not events.

    Feed it an `EventSource` (the fast typed path, or SQL with the DuckDB engine) or
    any iterable of `llm_usage` event dicts; either way each event passes the one
    validity rule (`_engine_python`) before it is summed.

    Args:
        by: "session", "model", "day", "hour" or "host".

    Attributes:
        malformed: `llm_usage` events skipped because a field had the wrong type or
            an implausible value (the same events every grouping skips).
        statuses: valid events per `status` value.
    """

    def __init__(self, *, by: str = "session") -> None:
        if by not in GROUP_KEYS:
            raise ValueError(f"unknown grouping {by!r}: use one of {', '.join(GROUP_KEYS)}")
        self.by = by
        self.key_name = GROUP_KEYS[by]
        self._malformed = 0
        self._sources: list[EventSource] = []
        self._groups: dict[Any, _Sums] = {}
        # By model, groups overlap (an event splits over its models): the total is
        # kept over whole events apart.
        self._total = new_sums()
        self._statuses: Counter[str | None] = Counter()

    @property
    def malformed(self) -> int:
        """`llm_usage` events skipped because a field had the wrong type or value."""
        return self._malformed + sum(s.malformed for s in self._sources)

    @property
    def statuses(self) -> dict[str, int]:
        """Valid events per `status` value ("unknown" when missing)."""
        return {("unknown" if k is None else k): n for k, n in self._statuses.items()}

    def feed(self, events: Iterable[Mapping[str, Any]] | EventSource) -> Aggregate:
        """Add every event of `events` (an `EventSource` or event dicts); returns self."""
        if isinstance(events, EventSource):
            feed_all([self], events)
            return self
        records = []
        for ev in map(validate, events):
            if ev is None:
                self._malformed += 1
            elif ev.parent_invoke_id is None:  # a nested event's calls are in the outer one
                records.append(ev)
        return self.feed_records(records)

    def feed_records(self, records: list[UsageEvent]) -> Aggregate:
        """Add records that passed the rule (from `EventSource.records`); returns self."""
        self._statuses.update(map(_get_status, records))
        by = self.by
        if by == "model":
            for ev in records:
                self._split_models(ev)
            return self
        groups = self._groups
        for ev in records:
            if by == "session":
                key: Any = ev.session_id
            elif by == "day":
                key = to_utc(ev.timestamp).date()  # type: ignore[arg-type]
            elif by == "hour":
                key = to_utc(ev.timestamp).replace(  # type: ignore[arg-type]
                    minute=0, second=0, microsecond=0, tzinfo=None
                )
            else:
                key = ev.host
            sums = groups.get(key)
            if sums is None:
                sums = groups[key] = new_sums()
            _add(sums, ev)
            if ev.llm_calls_without_usage:
                sums[_WITHOUT] += ev.llm_calls_without_usage
            # (One model: its figure is the event's, null too.)
            if (ev.cost_usd is None or ev.cache_savings_usd is None) and len(ev.models or ()) > 1:
                _partly_priced(sums, ev)
        return self

    def _split_models(self, ev: UsageEvent) -> None:
        """Split an event by its per-model breakdown, so mixed invokes count per model."""
        models = ev.models
        shares: Iterable[tuple[str | None, UsageEvent | ModelShare]]
        # No breakdown (older writers): the label is the model.
        shares = models.items() if models else ((ev.model, ev),)
        for name, share in shares:
            _add(self._sums(name), share)
        # Calls that reported no usage name no model: they count under the label.
        if ev.llm_calls_without_usage:
            self._sums(ev.model)[_WITHOUT] += ev.llm_calls_without_usage
            self._total[_WITHOUT] += ev.llm_calls_without_usage
        _add(self._total, ev)
        if (ev.cost_usd is None or ev.cache_savings_usd is None) and len(ev.models or ()) > 1:
            _partly_priced(self._total, ev)

    def _sums(self, key: Any) -> _Sums:
        sums = self._groups.get(key)
        if sums is None:
            sums = self._groups[key] = new_sums()
        return sums

    def load(self, key: Any, sums: _Sums) -> None:
        """Add a group's sums computed elsewhere (the DuckDB engine)."""
        _merge(self._sums(key), sums)

    def load_malformed(self, events: int) -> None:
        """Count malformed events found elsewhere (the DuckDB engine)."""
        self._malformed += events

    def load_status(self, status: str | None, events: int) -> None:
        """Add events of one status counted elsewhere (the DuckDB engine)."""
        self._statuses[status] += events

    def load_total(self, sums: _Sums) -> None:
        """By model: add the whole-event total computed elsewhere."""
        _merge(self._total, sums)

    def __len__(self) -> int:
        """The number of groups: the rows `rows()` returns without `top`."""
        return len(self._groups)

    def rows(self, *, top: int | None = None) -> list[Row]:
        """The groups in their public shape.

        Days and hours come in time order, sessions, models and hosts by cost then
        tokens, most first; `top` keeps the N costliest (in that order).
        """
        rows = [_finish(self.key_name, _key_text(self.by, k), s) for k, s in self._groups.items()]
        if top is not None or self.by not in ("day", "hour"):
            rows.sort(key=_cost_order, reverse=True)
        else:
            rows.sort(key=lambda r: r[self.key_name] or "")
        return rows[:top] if top is not None else rows

    def total_row(self) -> Row:
        """The sum over all events, in the public row shape (key "total")."""
        if self.by == "model":
            total = [list(self._total[0]), *self._total[1:]]
        else:
            total = new_sums()
            for sums in self._groups.values():
                _merge(total, sums)
        return _finish(self.key_name, "total", total)


def _partly_priced(sums: _Sums, ev: UsageEvent) -> None:
    """An event unpriced as a whole still adds its priced models' share.

    `_add` counted it as having no known cost; when some model has one, that part
    is added and the event no longer counts as unknown.
    """
    for field, at, unknown in (("cost_usd", _COST, _NO_COST), (_SAVED, _SAVINGS, _NO_SAVED)):
        if getattr(ev, field) is None and (part := _known_part(ev, field)) is not None:
            sums[at] += part
            sums[unknown] -= 1


_get_status = attrgetter("status")


def feed_all(aggregates: Iterable[Aggregate], source: EventSource) -> None:
    """Feed one source to several aggregates in one pass (one read, one decode)."""
    aggs = list(aggregates)
    for agg in aggs:
        agg._sources.append(source)
    if source.engine == "duckdb" and source.reprice is None:  # re-pricing needs Python
        from ._engine_duckdb import aggregate

        aggregate(source, aggs)
        return
    for batch in source.records():
        for agg in aggs:
            agg.feed_records(batch)


def report(
    path: PathsArg,
    *,
    by: str = "session",
    since: BoundArg = None,
    until: BoundArg = None,
    prices: PricesArg = None,
    top: int | None = None,
    engine: str = "python",
) -> list[dict[str, Any]]:
    """Sum the `llm_usage` events of one or more logs per group, streaming.

    Args:
        path: the event log, a glob, or a list of them (rotated files included).
        by: "session" (key `session_id`), "model" (key `model`, split by each
            event's per-model breakdown), "day" (`day`, YYYY-MM-DD UTC), "hour"
            (`hour`, YYYY-MM-DDTHH UTC) or "host" (`host`, the events' host field).
        since: keep events at or after this ISO date/datetime (naive = UTC).
        until: keep events before this ISO datetime; a bare date includes that day.
        prices: re-price events with these prices (mapping or TOML/JSON file path).
        top: keep only the N groups that cost most (then most tokens).
        engine: "python" (default) or "duckdb" (needs the `[duckdb]` extra): the
            same rows either way.

    Returns:
        One dict per group: the key under its own name, `events`, every summed
        token field and `llm_calls`/`llm_calls_without_usage` under the event's
        names, `cost_usd` (None only when no event in the group was priced),
        `unpriced_events`, `cache_savings_usd` and `cache_hit_rate`
        (cache reads / input, None without input). Events that break the validity
        rule (see `_engine_python`) are in no row.

    Raises:
        ValueError: unknown `by` or engine, a bad date, a negative `top`.
        FileNotFoundError: a path does not exist (or a glob matches nothing).
    """
    _check_top(top)
    agg = Aggregate(by=by)
    agg.feed(EventSource(path, since=since, until=until, prices=prices, engine=engine))
    return agg.rows(top=top)


def _check_top(top: int | None) -> None:
    if top is not None and (not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive integer, got {top!r}")
