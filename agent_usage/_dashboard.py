"""The ops dashboard: one self-contained HTML page rendered from the event log.

`Dashboard` reads the events once, feeding them in chunks to the report's
`Aggregate` per session, model, day and hour, and counts statuses. This module
turns those rows into figures (card values, chart geometry, table rows: plain
numbers and strings); the page itself is the Jinja2 template
`_dashboard_template.html` next to it, rendered with autoescape on, so every
string from the log is escaped by default. The page works offline forever: no
script runs, nothing is fetched (its Content-Security-Policy forbids both), and
the charts are inline SVG. The data behind the page is embedded as JSON for
other tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import Any

from ._charts import H, W, bar_chart, line_chart
from ._format import format_money, format_rate, format_tokens
from ._report import Aggregate, EventSource, feed_all

__all__ = ["Dashboard", "render_dashboard"]

TEMPLATE = Path(__file__).with_name("_dashboard_template.html")
TOP_SESSIONS = 10
# At most this many sessions and days are listed as over a budget (the JSON has all).
OVER_LISTED = 50
# A range of at most this many days is charted per hour, a longer one per day.
HOURLY_UP_TO_DAYS = 2
# Events handed to each aggregation at a time: one pass over the log, batched feeds.
_CHUNK = 4096

Row = dict[str, Any]


class Dashboard:
    """What the page shows, gathered in one pass over the events.

    Attributes:
        total: the report row summed over every event.
        by_model / by_session / by_day / by_hour: report rows per group.
        status: events per `status` value.
        malformed: events dropped because a summed field was not a number.
    """

    def __init__(self, events: Iterable[Mapping[str, Any]] | EventSource) -> None:
        aggs = {by: Aggregate(by=by) for by in ("model", "session", "day", "hour")}
        if isinstance(events, EventSource):
            # One read and one typed decode for all four (or one DuckDB scan).
            feed_all(aggs.values(), events)
        else:
            it = iter(events)
            while chunk := list(islice(it, _CHUNK)):
                for agg in aggs.values():
                    agg.feed(chunk)
        self.total = aggs["day"].total_row()
        self.by_model = aggs["model"].rows()
        self.by_session = aggs["session"].rows()
        self.by_day = aggs["day"].rows()
        self.by_hour = aggs["hour"].rows()
        self.status = aggs["day"].statuses
        self.malformed = aggs["day"].malformed

    @property
    def hourly(self) -> bool:
        """True when the range is short enough to chart per hour."""
        return 0 < len(self.by_day) <= HOURLY_UP_TO_DAYS

    @property
    def over_time(self) -> list[Row]:
        """Rows per hour for a short range, else per day (oldest first)."""
        return self.by_hour if self.hourly else self.by_day

    @property
    def unpriced_models(self) -> list[Row]:
        """Model rows with at least one unpriced share, most events first."""
        rows = [r for r in self.by_model if r["unpriced_events"] and r["input_tokens"]]
        return sorted(rows, key=lambda r: -r["unpriced_events"])

    def over(self, rows: list[Row], limit: float | None) -> list[Row]:
        """The rows (sessions or days) whose cost is more than `limit` dollars."""
        if limit is None:
            return []
        return [r for r in rows if (r["cost_usd"] or 0.0) > limit]

    def data(self, *, session_usd: float | None = None, day_usd: float | None = None) -> Row:
        """Everything the page shows, as JSON-ready data."""
        return {
            "total": self.total,
            "status": self.status,
            "by_model": self.by_model,
            "top_sessions": self.by_session[:TOP_SESSIONS],
            "over_time": {"bucket": "hour" if self.hourly else "day", "rows": self.over_time},
            "unpriced_models": [r["model"] for r in self.unpriced_models],
            "budget": {
                "session_usd": session_usd,
                "day_usd": day_usd,
                "sessions_over": [r["session_id"] for r in self.over(self.by_session, session_usd)],
                "days_over": [r["day"] for r in self.over(self.by_day, day_usd)],
            },
        }


def _continuous(rows: list[Row], key: str, hourly: bool) -> list[Row]:
    """Rows for every day/hour from the first to the last: quiet periods show as gaps."""
    known = {r[key]: r for r in rows if r[key]}
    if not known:
        return []
    fmt, step = ("%Y-%m-%dT%H", timedelta(hours=1)) if hourly else ("%Y-%m-%d", timedelta(days=1))
    try:
        first, last = (datetime.strptime(k, fmt) for k in (min(known), max(known)))
    except ValueError:  # a timestamp of another shape: chart what there is
        return sorted(known.values(), key=lambda r: r[key])
    out: list[Row] = []
    while first <= last and len(out) < 5000:
        k = first.strftime(fmt)
        out.append(known.get(k) or _empty_row(key, k))
        first += step
    return out


def _empty_row(key: str, value: str) -> Row:
    row: Row = {key: value, "cost_usd": None, "cache_hit_rate": None}
    for f in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        row[f] = 0
    return row


def _charts(d: Dashboard, day_usd: float | None) -> list[Row]:
    """The three over-time charts, each with its panel id and title."""
    key = unit = "hour" if d.hourly else "day"
    rows = _continuous(d.over_time, key, d.hourly)
    buckets = [r[key] for r in rows]
    cost = bar_chart(
        "cost-chart",
        buckets,
        [("cost", "c-cost", [r["cost_usd"] or 0.0 for r in rows])],
        fmt=format_money,
        hourly=d.hourly,
        label=f"cost per {unit}",
        limit=None if d.hourly else day_usd,  # a day's budget is not an hour's
    )
    tokens = bar_chart(
        "tokens-chart",
        buckets,
        [
            ("input (uncached)", "c-input",
             [r["input_tokens"] - r["cache_read_input_tokens"] for r in rows]),
            ("input (cache read)", "c-cache", [r["cache_read_input_tokens"] for r in rows]),
            ("output", "c-output", [r["output_tokens"] for r in rows]),
        ],
        fmt=format_tokens,
        hourly=d.hourly,
        label=f"tokens per {unit}",
    )  # fmt: skip
    cache = line_chart("cache-chart", buckets, [r["cache_hit_rate"] for r in rows], hourly=d.hourly)
    return [
        {"panel": "cost-over-time", "title": f"Cost per {unit} (UTC)", "bar": cost},
        {"panel": "tokens-over-time", "title": f"Tokens per {unit} (UTC)", "bar": tokens},
        {"panel": "cache-over-time", "title": f"Cache hit rate per {unit}", "line": cache},
    ]


# --- panels ----------------------------------------------------------------------


def _share(part: float, whole: float | None) -> float | None:
    return part / whole if whole else None


def _cards(t: Row) -> list[Row]:
    reasoning = _share(t["reasoning_tokens"], t["output_tokens"])
    unpriced = t["unpriced_events"]
    return [
        {"metric": "cost_usd", "label": "Cost", "value": t["cost_usd"],
         "text": format_money(t["cost_usd"]),
         "note": f"{unpriced} invoke(s) used an unpriced model: its share is left out"
         if unpriced else ""},
        {"metric": "total_tokens", "label": "Tokens", "value": t["total_tokens"],
         "text": format_tokens(t["total_tokens"]),
         "note": f"{format_tokens(t['input_tokens'])} in · "
                 f"{format_tokens(t['output_tokens'])} out"},
        {"metric": "llm_calls", "label": "LLM calls", "value": t["llm_calls"],
         "text": format_tokens(t["llm_calls"]),
         "note": f"in {format_tokens(t['events'])} agent invokes"},
        {"metric": "cache_hit_rate", "label": "Cache hit rate", "value": t["cache_hit_rate"],
         "text": format_rate(t["cache_hit_rate"]),
         "note": f"{format_tokens(t['cache_read_input_tokens'])} tokens read from cache"},
        {"metric": "cache_savings_usd", "label": "Cache savings",
         "value": t["cache_savings_usd"], "text": format_money(t["cache_savings_usd"]),
         "note": "vs. no prompt cache"},
        {"metric": "reasoning_share", "label": "Reasoning share", "value": reasoning,
         "text": format_rate(reasoning),
         "note": f"{format_tokens(t['reasoning_tokens'])} of output tokens"},
    ]  # fmt: skip


def _cells(row: Row, fields: Sequence[tuple[str, Any]]) -> list[Row]:
    """Numeric table cells: raw value for data-value, formatted text; * on a partial cost."""
    cells = []
    for field, fmt in fields:
        value = row[field]
        text = fmt(value)
        if field == "cost_usd" and row["unpriced_events"] and value is not None:
            text += "*"
        cells.append({"field": field, "value": value, "text": text})
    return cells


def _pct(value: float | None, whole: float | None) -> float:
    """A bar's width in percent of `whole`."""
    return 100 * value / whole if value and whole else 0.0


_MODEL_FIELDS = (
    ("events", format_tokens),
    ("llm_calls", format_tokens),
    ("input_tokens", format_tokens),
    ("output_tokens", format_tokens),
    ("cache_hit_rate", format_rate),
    ("reasoning_tokens", format_tokens),
    ("cost_usd", format_money),
)
_SESSION_FIELDS = (
    ("events", format_tokens),
    ("llm_calls", format_tokens),
    ("total_tokens", format_tokens),
    ("cache_hit_rate", format_rate),
    ("cost_usd", format_money),
)


def _tables(d: Dashboard, session_usd: float | None) -> Row:
    whole = d.total["cost_usd"]
    models = [
        {"key": r["model"], "share": _pct(r["cost_usd"], whole), "cells": _cells(r, _MODEL_FIELDS)}
        for r in d.by_model
        if r["input_tokens"] or r["output_tokens"]
    ]
    top = d.by_session[:TOP_SESSIONS]
    first = top[0]["cost_usd"] if top else None
    sessions = [
        {"key": r["session_id"], "share": _pct(r["cost_usd"], first),
         "cells": _cells(r, _SESSION_FIELDS), "over": bool(d.over([r], session_usd))}
        for r in top
    ]  # fmt: skip
    without = d.total["llm_calls_without_usage"]
    return {
        "models": models,
        "model_headers": ["model", "invokes", "calls", "input", "output", "cache", "reasoning",
                          "cost"],
        "sessions": sessions,
        "session_headers": ["session", "invokes", "calls", "tokens", "cache", "cost"],
        "more_sessions": len(d.by_session) - len(top),
        "without": without,
        "without_text": format_tokens(without),
        "without_share": format_rate(_share(without, without + d.total["llm_calls"])),
        "without_rows": [
            {"model": r["model"], "value": r["llm_calls_without_usage"],
             "text": format_tokens(r["llm_calls_without_usage"])}
            for r in sorted(d.by_model, key=lambda r: -r["llm_calls_without_usage"])
            if r["llm_calls_without_usage"]
        ],
        "unpriced": [
            {"model": r["model"], "value": r["unpriced_events"],
             "tokens": format_tokens(r["total_tokens"])}
            for r in d.unpriced_models
        ],
    }  # fmt: skip


def _status(d: Dashboard) -> list[Row]:
    known = ("ok", "error", "cancelled")
    order = [*known, *sorted(set(d.status) - set(known))]
    total = sum(d.status.values())
    return [
        {"name": name, "css": name if name in known else "other", "value": d.status.get(name, 0),
         "text": format_tokens(d.status.get(name, 0)),
         "pct": 100 * d.status.get(name, 0) / total if total else 0.0}
        for name in order
    ]  # fmt: skip


def _budget(d: Dashboard, session_usd: float | None, day_usd: float | None) -> list[Row]:
    """One block per limit given: what is over it, costliest first, at most OVER_LISTED."""
    blocks = []
    for kind, key, rows, limit in (
        ("session", "session_id", d.by_session, session_usd),
        ("day", "day", d.by_day, day_usd),
    ):
        if limit is None:
            continue
        over = sorted(d.over(rows, limit), key=lambda r: -r["cost_usd"])
        blocks.append(
            {"kind": kind, "limit": format_money(limit), "count": len(over),
             "rows": [{"key": r[key], "text": format_money(r["cost_usd"])}
                      for r in over[:OVER_LISTED]],
             "more": max(0, len(over) - OVER_LISTED)}
        )  # fmt: skip
    return blocks


def _template() -> Any:
    # Imported here: only the dashboard needs Jinja2, and `agent-usage --help` stays light.
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": True}
    # A raw number for a data-value attribute ("" when unknown); 1-decimal SVG coordinates.
    env.filters["num"] = lambda v: "" if v is None else repr(v)
    env.filters["px"] = lambda v: f"{v:.1f}"
    return env.get_template(TEMPLATE.name)


def render_dashboard(
    d: Dashboard,
    *,
    title: str,
    source: str,
    skipped: int = 0,
    session_usd: float | None = None,
    day_usd: float | None = None,
) -> str:
    """The dashboard page as one HTML string.

    Args:
        d: the figures.
        title: the page title.
        source: the log's path, as shown on the page.
        skipped: lines the reader skipped (noted on the page).
        session_usd / day_usd: mark sessions / UTC days that cost more than this.
    """
    days = [r["day"] for r in d.by_day if r["day"]]
    span = "no events"
    if days:
        span = f"{days[0]} (UTC)" if days[0] == days[-1] else f"{days[0]} → {days[-1]} (UTC)"
    notes = []
    if skipped:
        notes.append(f"{skipped} bad line(s) skipped")
    if d.malformed:
        notes.append(f"{d.malformed} malformed event(s) skipped")
    return str(
        _template().render(
            title=title,
            source=source,
            span=span,
            generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            notes=" · ".join(notes),
            cards=_cards(d.total),
            charts=_charts(d, day_usd),
            status=_status(d),
            top_n=TOP_SESSIONS,
            budget=_budget(d, session_usd, day_usd),
            W=W,
            H=H,
            data=d.data(session_usd=session_usd, day_usd=day_usd),
            **_tables(d, session_usd),
        )
    )
