"""Where report events come from: one or more logs, a time range, an engine.

`EventSource` names the logs (paths, globs, rotated files), the `since`/`until` bounds
(compared as UTC instants) and the engine that aggregates them; iterating it yields the
valid `llm_usage` event dicts, `records()` the typed records `Aggregate` sums.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from ._engine_python import LogFiles, UsageEvent, to_utc, validate
from ._pricing import PricesArg

__all__ = ["ENGINES", "BoundArg", "EventSource", "PathsArg", "parse_bound"]

ENGINES = ("python", "duckdb")
BoundArg = str | date | datetime | None
PathsArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def parse_bound(value: BoundArg, *, end: bool = False) -> str | None:
    """An ISO date or datetime as a UTC string that compares with event timestamps.

    Naive datetimes are taken as UTC. As an end bound, a bare date means the end
    of that day (the whole day is included).

    Raises:
        ValueError: when `value` is not an ISO date or datetime.
    """
    moment = _bound(value, end=end)
    if moment is None:
        return None
    moment = moment.replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def _bound(value: BoundArg, *, end: bool = False) -> datetime | None:
    """`parse_bound` as an aware UTC datetime."""
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
    return to_utc(moment)


class EventSource:
    """The valid `llm_usage` events of one or more logs, filtered by time, optionally re-priced.

    Iterating yields event dicts (for exporters and custom consumers); `Aggregate.feed`
    reads the typed records instead, which is much faster. Both apply the one rule.

    Args:
        path: a log (rotated siblings included), a glob, or a list of them.
        since: keep events at or after this ISO date/datetime (UTC).
        until: keep events before this ISO datetime; a bare date includes that day.
        prices: re-price every event with these prices (a mapping or a TOML/JSON file).
        engine: "python" (default) or "duckdb" (the `[duckdb]` extra) for aggregates.

    Raises:
        ValueError: a bad bound, bad prices, an unknown engine (the message names it).
        OSError: a log cannot be found or opened.
    """

    def __init__(
        self,
        path: PathsArg,
        *,
        since: BoundArg = None,
        until: BoundArg = None,
        prices: PricesArg = None,
        engine: str = "python",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}: use python or duckdb")
        self.since = _bound(since)
        self.until = _bound(until, end=True)
        self.reprice: Any = None
        if prices is not None:
            from ._repricing import repricer

            self.reprice = repricer(prices)
        if engine == "duckdb":
            from ._engine_duckdb import require

            require()
        self.engine = engine
        self.reader = LogFiles(path)

    @property
    def skipped(self) -> int:
        """Lines that are not a JSON object (blank, torn, garbage)."""
        return self.reader.skipped

    @property
    def malformed(self) -> int:
        """`llm_usage` lines the rule refused."""
        return self.reader.malformed

    def _in_range(self, ev: UsageEvent) -> bool:
        ts = to_utc(ev.timestamp)  # type: ignore[arg-type]
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)

    def records(self) -> Iterator[list[UsageEvent]]:
        """The valid events as typed records, a chunk at a time (re-priced if asked)."""
        bounded = self.since is not None or self.until is not None
        if self.reprice is None:
            for batch in self.reader.events():
                yield [ev for ev in batch if self._in_range(ev)] if bounded else batch
            return
        out: list[UsageEvent] = []
        for e in self:
            ev = validate(e)
            assert ev is not None  # a valid event re-priced is still valid
            out.append(ev)
            if len(out) >= 4096:
                yield out
                out = []
        yield out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for _, e in self.pairs():
            yield e

    def pairs(self) -> Iterator[tuple[UsageEvent, dict[str, Any]]]:
        """The valid events as (typed record, event dict) pairs; only the dict is re-priced."""
        bounded = self.since is not None or self.until is not None
        reprice = self.reprice
        for ev, e in self.reader.dicts():
            if bounded and not self._in_range(ev):
                continue
            yield ev, (reprice(e) if reprice is not None else e)
