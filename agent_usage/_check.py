"""Breaches of spend limits and usage-reporting rules in event logs: `agent-usage check`.

For cron jobs and CI alerts: one streaming pass over the logs' `llm_usage` events
(the report's `EventSource` and `Aggregate`, so the same lines are read and
skipped the same way) yields one `Breach` per session or day over a USD limit,
per model whose share of calls without usage is above a limit, and per unpriced
model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ._format import printable
from ._pricing import PricesArg
from ._report import Aggregate, BoundArg, EventSource, Row

__all__ = ["Breach", "CheckResult", "check"]

BreachKind = Literal["session_usd", "day_usd", "without_usage", "unpriced"]


@dataclass(frozen=True, slots=True)
class Breach:
    """One limit or rule broken.

    Attributes:
        kind: "session_usd", "day_usd", "without_usage" or "unpriced".
        key: the session id, day (YYYY-MM-DD, UTC) or model concerned.
        value: what was measured: USD spent, percent of calls without usage, or
            the number of events with the model unpriced.
        limit: the limit given (None for "unpriced").
        message: one line for people.
    """

    kind: BreachKind
    key: str
    value: float
    limit: float | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The breach as a JSON-ready dict."""
        return asdict(self)


@dataclass(slots=True)
class CheckResult:
    """What `check` found.

    Attributes:
        breaches: in order: sessions, days, calls without usage, unpriced models.
        events: `llm_usage` events read.
        skipped: unreadable lines skipped by the reader (blank, non-JSON, torn).
        malformed: events dropped because a summed field was not a number.
    """

    breaches: list[Breach] = field(default_factory=list)
    events: int = 0
    skipped: int = 0
    malformed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (`agent-usage check --format json`)."""
        return {
            "breaches": [b.as_dict() for b in self.breaches],
            "events": self.events,
            "skipped_lines": self.skipped,
            "malformed_events": self.malformed,
        }


def _limit(name: str, value: float | None, *, percent: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (percent and value > 100):
        bounds = "between 0 and 100" if percent else "a finite number >= 0"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")


def check(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    since: BoundArg = None,
    until: BoundArg = None,
    session_usd: float | None = None,
    day_usd: float | None = None,
    max_without_usage: float | None = None,
    fail_on_unpriced: bool = False,
    prices: PricesArg = None,
) -> CheckResult:
    """Check event logs against spend limits and usage-reporting rules.

    Args:
        paths: one log or several (each with its rotated files).
        since, until: the time window, as for `report`.
        session_usd: a session whose cost is over this (USD) is a breach.
        day_usd: a UTC day whose cost is over this (USD) is a breach.
        max_without_usage: a model for which more than this percent of calls
            reported no usage is a breach (calls without usage count under the
            event's model label).
        fail_on_unpriced: a model without a known price in some event is a breach.
        prices: re-price the events with these prices first, as for `report`.

    Returns:
        A `CheckResult`; `breaches` is empty when all is well.

    Raises:
        ValueError / TypeError: a bad limit or time bound (the message names it).
        FileNotFoundError: a log does not exist.
    """
    _limit("session_usd", session_usd)
    _limit("day_usd", day_usd)
    _limit("max_without_usage", max_without_usage, percent=True)
    # One source over every path, as `report` reads them: a file named twice (or
    # matched by two globs) is read once.
    source = EventSource(paths, since=since, until=until, prices=prices)
    wanted: dict[str, Aggregate] = {}
    if session_usd is not None:
        wanted["session"] = Aggregate(by="session")
    if day_usd is not None:
        wanted["day"] = Aggregate(by="day")
    if max_without_usage is not None or fail_on_unpriced:
        wanted["model"] = Aggregate(by="model")
    result = CheckResult()
    # The typed records: one decode per line, checked once for every aggregate.
    for batch in source.records():
        result.events += len(batch)
        for agg in wanted.values():
            agg.feed_records(batch)
    result.skipped = source.skipped
    result.malformed = source.malformed
    if session_usd is not None:
        result.breaches += _over(wanted["session"].rows(), "session", session_usd)
    if day_usd is not None:
        result.breaches += _over(wanted["day"].rows(), "day", day_usd)
    if "model" in wanted:
        rows = wanted["model"].rows()
        if max_without_usage is not None:
            result.breaches += _without_usage(rows, max_without_usage)
        if fail_on_unpriced:
            result.breaches += _unpriced(rows)
    return result


def _over(rows: list[Row], by: Literal["session", "day"], limit: float) -> list[Breach]:
    key_name = "session_id" if by == "session" else "day"
    out = []
    for row in rows:
        key, cost = row[key_name], row["cost_usd"] or 0.0
        if key is None or cost <= limit:
            continue
        note = f", {row['unpriced_events']} event(s) unpriced" if row["unpriced_events"] else ""
        out.append(
            Breach(
                kind="session_usd" if by == "session" else "day_usd",
                key=str(key),
                value=cost,
                limit=float(limit),
                message=(
                    f"{by} {printable(key)}: ${cost:.6g} spent, over the ${limit:.6g} limit "
                    f"({row['events']} event(s){note})"
                ),
            )
        )
    return sorted(out, key=lambda b: b.key) if by == "day" else out


def _without_usage(rows: list[Row], limit_pct: float) -> list[Breach]:
    out = []
    for row in rows:
        without, calls = row["llm_calls_without_usage"], row["llm_calls"]
        if not without:
            continue
        share = 100.0 * without / (calls + without)
        if share <= limit_pct:
            continue
        out.append(
            Breach(
                kind="without_usage",
                key=str(row["model"]),
                value=round(share, 4),
                limit=float(limit_pct),
                message=(
                    f"model {printable(row['model'])}: {share:.4g}% of calls reported no usage "
                    f"({without} of {calls + without}), over {limit_pct:.4g}%"
                ),
            )
        )
    return out


def _unpriced(rows: list[Row]) -> list[Breach]:
    return [
        Breach(
            kind="unpriced",
            key=str(row["model"]),
            value=row["unpriced_events"],
            limit=None,
            message=(
                f"model {printable(row['model'])}: no known price in "
                f"{row['unpriced_events']} event(s); add it with --prices / prices="
            ),
        )
        for row in sorted(rows, key=lambda r: str(r["model"]))
        if row["unpriced_events"]
    ]
