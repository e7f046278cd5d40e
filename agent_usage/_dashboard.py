"""The ops dashboard: one self-contained HTML file rendered from the event log.

One streaming pass sums the `llm_usage` events per session, model, day and hour
(the report's `Aggregate`) and counts statuses; the charts are inline SVG drawn
here, the page is the template `_dashboard_template.html` next to this module.
The page works offline forever: no script runs, nothing is fetched (its
Content-Security-Policy forbids both), and every string from the log is
HTML-escaped. The data behind the page is embedded as JSON for other tools.

The `agent-usage dashboard` subcommand lives here too (`add_arguments` / `run`).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from string import Template
from typing import Any

from ._format import format_money, format_rate, format_tokens
from ._report import Aggregate

__all__ = ["Dashboard", "render_dashboard"]

TEMPLATE = Path(__file__).with_name("_dashboard_template.html")
TOP_SESSIONS = 10
# A range of at most this many days is charted per hour, a longer one per day.
HOURLY_UP_TO_DAYS = 2

Row = dict[str, Any]


class Dashboard:
    """What the page shows, gathered in one pass over the events.

    Attributes:
        total: the report row summed over every event.
        by_model / by_session / by_day / by_hour: report rows per group.
        status: events per `status` value.
        malformed: events dropped because a summed field was not a number.
    """

    def __init__(self, events: Iterable[Mapping[str, Any]]) -> None:
        aggs = {by: Aggregate(by=by) for by in ("model", "session", "day", "hour")}
        status: Counter[str] = Counter()
        for e in events:
            one = (e,)
            for agg in aggs.values():
                agg.feed(one)
            status[str(e.get("status") or "unknown")] += 1
        self.total = aggs["day"].total_row()
        self.by_model = aggs["model"].rows()
        self.by_session = aggs["session"].rows()
        self.by_day = aggs["day"].rows()
        self.by_hour = aggs["hour"].rows()
        self.status = dict(status)
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

    def data(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data."""
        return {
            "total": self.total,
            "status": self.status,
            "by_model": self.by_model,
            "top_sessions": self.by_session[:TOP_SESSIONS],
            "over_time": {"bucket": "hour" if self.hourly else "day", "rows": self.over_time},
            "unpriced_models": [r["model"] for r in self.unpriced_models],
        }


# --- small HTML helpers --------------------------------------------------------


def _e(value: Any) -> str:
    """Escaped text (quotes too: safe in attributes)."""
    return html.escape("(none)" if value is None else str(value), quote=True)


def _json_for_html(data: Any) -> str:
    """JSON that cannot end its <script> element or open a comment in HTML."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escaped)
    return text


def _num(value: Any) -> str:
    """A raw number for a data-value attribute ("" when unknown)."""
    return "" if value is None else repr(value)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _card(metric: str, label: str, value: Any, text: str, note: str = "") -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    return (
        f'<div class="card" data-metric="{metric}" data-value="{_num(value)}">'
        f'<div class="label">{label}</div><div class="value">{_e(text)}</div>{note_html}</div>'
    )


# --- charts (inline SVG) -------------------------------------------------------

_W, _H = 560, 200
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 8, 12, 28


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 4, 6, 8, 10):  # halves are round too: the middle gridline
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def _x_labels(buckets: Sequence[str], hourly: bool) -> list[tuple[int, str]]:
    """At most ~7 evenly spaced labels, always the first and last."""
    n = len(buckets)
    step = max(1, -(-n // 7))
    picks = sorted({*range(0, n, step), n - 1}) if n else []
    return [(i, buckets[i][5:].replace("T", " ") + ("h" if hourly else "")) for i in picks]


def _axes(y_max: float, fmt: Any, buckets: Sequence[str], hourly: bool, slot: float) -> str:
    parts = []
    for frac in (0.0, 0.5, 1.0):
        y = _PAD_T + (_H - _PAD_T - _PAD_B) * (1 - frac)
        parts.append(
            f'<line class="grid" x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_e(fmt(y_max * frac))}</text>"
        )
    for i, label in _x_labels(buckets, hourly):
        x = _PAD_L + slot * (i + 0.5)
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{_H - 8}" text-anchor="middle">{_e(label)}</text>'
        )
    return "".join(parts)


def _bar_chart(
    chart_id: str,
    buckets: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    fmt: Any,
    hourly: bool,
    label: str,
) -> str:
    """Stacked bars per bucket; each bar carries its value and a hover title."""
    n = max(len(buckets), 1)
    slot = (_W - _PAD_L - _PAD_R) / n
    bar_w = max(min(slot * 0.75, 48), 1.0)
    totals = [sum(s[2][i] for s in series) for i in range(len(buckets))]
    y_max = _nice_max(max(totals, default=0))
    plot_h = _H - _PAD_T - _PAD_B
    bars = []
    for i, bucket in enumerate(buckets):
        x = _PAD_L + slot * i + (slot - bar_w) / 2
        y = float(_PAD_T + plot_h)
        for name, css, values in series:
            v = values[i]
            h = plot_h * v / y_max
            y -= h
            bars.append(
                f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" data-bucket="{_e(bucket)}" data-series="{_e(name)}" '
                f'data-value="{_num(v)}"><title>{_e(bucket)} · {_e(name)}: {_e(fmt(v))}'
                "</title></rect>"
            )
    legend = "".join(
        f'<span class="key"><i class="{css}"></i>{_e(name)}</span>' for name, css, _ in series
    )
    return (
        f'<svg id="{chart_id}" viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(label)}">'
        f"{_axes(y_max, fmt, buckets, hourly, slot)}{''.join(bars)}</svg>"
        + (f'<div class="legend">{legend}</div>' if len(series) > 1 else "")
    )


def _line_chart(
    chart_id: str, buckets: Sequence[str], values: Sequence[float | None], *, hourly: bool
) -> str:
    """A 0-100% line; buckets without input leave a gap."""
    n = max(len(buckets), 1)
    slot = (_W - _PAD_L - _PAD_R) / n
    plot_h = _H - _PAD_T - _PAD_B
    segments: list[list[str]] = [[]]
    dots = []
    for i, (bucket, v) in enumerate(zip(buckets, values, strict=True)):
        if v is None:
            segments.append([])
            continue
        x = _PAD_L + slot * (i + 0.5)
        y = _PAD_T + plot_h * (1 - min(max(v, 0.0), 1.0))
        segments[-1].append(f"{x:.1f},{y:.1f}")
        dots.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3" data-bucket="{_e(bucket)}" '
            f'data-value="{_num(v)}"><title>{_e(bucket)}: {format_rate(v)}</title></circle>'
        )
    lines = "".join(f'<polyline class="line" points="{" ".join(s)}"/>' for s in segments if s)
    return (
        f'<svg id="{chart_id}" viewBox="0 0 {_W} {_H}" role="img" aria-label="cache hit rate">'
        f"{_axes(1.0, format_rate, buckets, hourly, slot)}{lines}{''.join(dots)}</svg>"
    )


# --- panels --------------------------------------------------------------------


def _headline(d: Dashboard) -> str:
    t = d.total
    cost_note = ""
    if t["unpriced_events"]:
        cost_note = (
            f"{t['unpriced_events']} invoke(s) used an unpriced model: its share is left out"
        )
    reasoning = _share(t["reasoning_tokens"], t["output_tokens"])
    cards = [
        _card("cost_usd", "Cost", t["cost_usd"], format_money(t["cost_usd"]), _e(cost_note)),
        _card(
            "total_tokens",
            "Tokens",
            t["total_tokens"],
            format_tokens(t["total_tokens"]),
            f"{_e(format_tokens(t['input_tokens']))} in · "
            f"{_e(format_tokens(t['output_tokens']))} out",
        ),
        _card(
            "llm_calls",
            "LLM calls",
            t["llm_calls"],
            format_tokens(t["llm_calls"]),
            f"in {_e(format_tokens(t['events']))} agent invokes",
        ),
        _card(
            "cache_hit_rate",
            "Cache hit rate",
            t["cache_hit_rate"],
            format_rate(t["cache_hit_rate"]),
            f"{_e(format_tokens(t['cache_read_input_tokens']))} tokens read from cache",
        ),
        _card(
            "cache_savings_usd",
            "Cache savings",
            t["cache_savings_usd"],
            format_money(t["cache_savings_usd"]),
            "vs. no prompt cache",
        ),
        _card(
            "reasoning_share",
            "Reasoning share",
            reasoning,
            format_rate(reasoning),
            f"{_e(format_tokens(t['reasoning_tokens']))} of output tokens",
        ),
    ]
    return f'<section id="headline" class="cards">{"".join(cards)}</section>'


def _panel(panel_id: str, title: str, body: str, *, wide: bool = False) -> str:
    cls = "panel wide" if wide else "panel"
    return f'<section id="{panel_id}" class="{cls}"><h2>{_e(title)}</h2>{body}</section>'


def _table(columns: Sequence[tuple[str, str]], rows_html: list[str], empty: str) -> str:
    if not rows_html:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f'<th class="{"key" if i == 0 else "num"}">{_e(t)}</th>'
                   for i, (_, t) in enumerate(columns))  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows_html)}</tbody></table>"


def _cells(row: Row, fields: Sequence[tuple[str, Any]]) -> str:
    out = []
    for field, fmt in fields:
        value = row[field]
        text = fmt(value)
        if field == "cost_usd" and row["unpriced_events"] and value is not None:
            text += "*"
        out.append(
            f'<td class="num" data-field="{field}" data-value="{_num(value)}">{_e(text)}</td>'
        )
    return "".join(out)


def _share_bar(value: float | None, whole: float | None) -> str:
    pct = 100 * value / whole if value and whole else 0.0
    return f'<div class="share"><i style="width:{pct:.1f}%"></i></div>'


def _by_model(d: Dashboard) -> str:
    fields = (
        ("events", format_tokens),
        ("llm_calls", format_tokens),
        ("input_tokens", format_tokens),
        ("output_tokens", format_tokens),
        ("cache_hit_rate", format_rate),
        ("reasoning_tokens", format_tokens),
        ("cost_usd", format_money),
    )
    whole = d.total["cost_usd"]
    rows = [
        f'<tr data-model="{_e(r["model"])}"><td class="key">{_e(r["model"])}'
        f"{_share_bar(r['cost_usd'], whole)}</td>{_cells(r, fields)}</tr>"
        for r in d.by_model
        if r["input_tokens"] or r["output_tokens"]
    ]
    columns = [("model", "model"), *((f, f) for f, _ in fields)]
    labels = ["model", "invokes", "calls", "input", "output", "cache", "reasoning", "cost"]
    columns = list(zip([c for c, _ in columns], labels, strict=True))
    return _table(columns, rows, "No model usage in this range.")


def _top_sessions(d: Dashboard) -> str:
    fields = (
        ("events", format_tokens),
        ("llm_calls", format_tokens),
        ("total_tokens", format_tokens),
        ("cache_hit_rate", format_rate),
        ("cost_usd", format_money),
    )
    top = d.by_session[:TOP_SESSIONS]
    whole = top[0]["cost_usd"] if top else None
    rows = [
        f'<tr data-session="{_e(r["session_id"])}"><td class="key">{_e(r["session_id"])}'
        f"{_share_bar(r['cost_usd'], whole)}</td>{_cells(r, fields)}</tr>"
        for r in top
    ]
    labels = ["session", "invokes", "calls", "tokens", "cache", "cost"]
    columns = list(zip(["session_id", *(f for f, _ in fields)], labels, strict=True))
    more = len(d.by_session) - len(top)
    note = f'<p class="note">and {more} more session(s)</p>' if more > 0 else ""
    return _table(columns, rows, "No sessions in this range.") + note


def _calls_without_usage(d: Dashboard) -> str:
    total = d.total["llm_calls_without_usage"]
    rows = [
        f'<tr data-model="{_e(r["model"])}"><td class="key">{_e(r["model"])}</td>'
        f'<td class="num" data-field="llm_calls_without_usage" '
        f'data-value="{r["llm_calls_without_usage"]}">'
        f"{_e(format_tokens(r['llm_calls_without_usage']))}</td></tr>"
        for r in sorted(d.by_model, key=lambda r: -r["llm_calls_without_usage"])
        if r["llm_calls_without_usage"]
    ]
    share = _share(total, total + d.total["llm_calls"])
    head = (
        f'<p class="big" data-value="{total}">{_e(format_tokens(total))}'
        f'<span class="unit"> call(s) reported no usage'
        + (f" ({_e(format_rate(share))} of calls)" if total else "")
        + "</span></p>"
    )
    explain = (
        '<p class="note">Chat-model calls whose provider sent no token usage: their tokens '
        "and cost are missing from every figure here. Listed by the invoke's model label.</p>"
    )
    table = _table([("model", "model label"), ("n", "calls")], rows, "") if rows else ""
    return head + (explain + table if total else "")


def _unpriced(d: Dashboard) -> str:
    rows = d.unpriced_models
    if not rows:
        return '<p class="big ok" data-value="0">0<span class="unit"> unpriced models</span></p>'
    items = "".join(
        f'<li data-model="{_e(r["model"])}" data-value="{r["unpriced_events"]}">'
        f'<span class="name">{_e(r["model"])}</span> <span class="muted">'
        f"{_e(format_tokens(r['total_tokens']))} tokens in {r['unpriced_events']} invoke(s)"
        "</span></li>"
        for r in rows
    )
    return (
        f'<p class="big warn" data-value="{len(rows)}">{len(rows)}'
        '<span class="unit"> model(s) with no known price</span></p>'
        '<p class="note">Their cost is not in the totals. Add them with '
        "<code>--prices FILE</code>.</p>"
        f'<ul class="models">{items}</ul>'
    )


def _status(d: Dashboard) -> str:
    order = ["ok", "error", "cancelled", *sorted(set(d.status) - {"ok", "error", "cancelled"})]
    total = sum(d.status.values())
    parts = []
    for name in order:
        n = d.status.get(name, 0)
        pct = 100 * n / total if total else 0.0
        parts.append(
            f'<div class="status s-{_e(name) if name in ("ok", "error", "cancelled") else "other"}"'
            f' data-status="{_e(name)}" data-value="{n}"><span class="name">{_e(name)}</span>'
            f'<span class="n">{_e(format_tokens(n))}</span><span class="muted">{pct:.1f}%</span>'
            f'<div class="share"><i style="width:{pct:.1f}%"></i></div></div>'
        )
    return "".join(parts)


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


def _charts(d: Dashboard) -> str:
    key = "hour" if d.hourly else "day"
    rows = _continuous(d.over_time, key, d.hourly)
    buckets = [r[key] for r in rows]
    unit = "hour" if d.hourly else "day"
    cost = _bar_chart(
        "cost-chart",
        buckets,
        [("cost", "c-cost", [r["cost_usd"] or 0.0 for r in rows])],
        fmt=format_money,
        hourly=d.hourly,
        label=f"cost per {unit}",
    )
    uncached = [r["input_tokens"] - r["cache_read_input_tokens"] for r in rows]
    tokens = _bar_chart(
        "tokens-chart",
        buckets,
        [
            ("input (uncached)", "c-input", uncached),
            ("input (cache read)", "c-cache", [r["cache_read_input_tokens"] for r in rows]),
            ("output", "c-output", [r["output_tokens"] for r in rows]),
        ],
        fmt=format_tokens,
        hourly=d.hourly,
        label=f"tokens per {unit}",
    )
    cache = _line_chart(
        "cache-chart", buckets, [r["cache_hit_rate"] for r in rows], hourly=d.hourly
    )
    return (
        _panel("cost-over-time", f"Cost per {unit} (UTC)", cost)
        + _panel("tokens-over-time", f"Tokens per {unit} (UTC)", tokens)
        + _panel("cache-over-time", f"Cache hit rate per {unit}", cache)
    )


def render_dashboard(
    d: Dashboard,
    *,
    title: str,
    source: str,
    skipped: int = 0,
    session_usd: float | None = None,
    day_usd: float | None = None,
) -> str:
    """The dashboard page as one HTML string."""
    days = [r["day"] for r in d.by_day if r["day"]]
    span = "no events"
    if days:
        span = f"{days[0]} (UTC)" if days[0] == days[-1] else f"{days[0]} → {days[-1]} (UTC)"
    notes = []
    if skipped:
        notes.append(f"{skipped} bad line(s) skipped")
    if d.malformed:
        notes.append(f"{d.malformed} malformed event(s) skipped")
    body = (
        _headline(d)
        + '<div class="grid">'
        + _charts(d)
        + _panel("status", "Invoke status", _status(d))
        + _panel("by-model", "By model", _by_model(d), wide=True)
        + _panel(
            "top-sessions", f"Top {TOP_SESSIONS} sessions by cost", _top_sessions(d), wide=True
        )
        + _panel("calls-without-usage", "Calls without usage", _calls_without_usage(d))
        + _panel("unpriced-models", "Unpriced models", _unpriced(d))
        + "</div>"
    )
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=_e(title),
        source=_e(source),
        span=_e(span),
        generated=_e(generated),
        notes=_e(" · ".join(notes)),
        body=body,
        data=_json_for_html(d.data()),
    )
