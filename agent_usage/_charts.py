"""Chart geometry for the dashboard: where each bar, dot and gridline goes, in SVG units.

Only numbers and the strings to show come out of here; the dashboard's template
draws the SVG (escaping every string), so no markup is built in Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._format import format_rate

__all__ = ["H", "W", "bar_chart", "line_chart"]

Row = dict[str, Any]

W, H = 560, 200
PAD_L, PAD_R, PAD_T, PAD_B = 56, 8, 12, 28
_PLOT_H = H - PAD_T - PAD_B


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1 for nothing or a non-finite value)."""
    if not 0 < value < math.inf:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):  # halves are round too: the middle gridline
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover


def _axes(y_max: float, fmt: Any, buckets: Sequence[str], hourly: bool, slot: float) -> Row:
    """Gridlines (y, label) at 0, half and max; at most ~7 x labels, always first and last."""
    grid = [(PAD_T + _PLOT_H * (1 - frac), fmt(y_max * frac)) for frac in (0.0, 0.5, 1.0)]
    n = len(buckets)
    step = max(1, -(-n // 7))
    picks = sorted({*range(0, n, step), n - 1}) if n else []
    x_labels = [
        (PAD_L + slot * (i + 0.5), buckets[i][5:].replace("T", " ") + ("h" if hourly else ""))
        for i in picks
    ]
    # x0..x1: the plot's horizontal extent, for gridlines and a limit line.
    return {"grid": grid, "x_labels": x_labels, "x0": PAD_L, "x1": W - PAD_R}


def bar_chart(
    chart_id: str,
    buckets: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    fmt: Any,
    hourly: bool,
    label: str,
    limit: float | None = None,
) -> Row:
    """Stacked bars per bucket; buckets whose total is over `limit` are marked."""
    n = max(len(buckets), 1)
    slot = (W - PAD_L - PAD_R) / n
    bar_w = max(min(slot * 0.75, 48), 1.0)
    totals = [sum(s[2][i] for s in series) for i in range(len(buckets))]
    y_max = _nice_max(max([*totals, limit or 0.0]))
    bars = []
    for i, bucket in enumerate(buckets):
        x = PAD_L + slot * i + (slot - bar_w) / 2
        y = float(PAD_T + _PLOT_H)
        over = limit is not None and totals[i] > limit
        for name, css, values in series:
            v = values[i]
            h = _PLOT_H * v / y_max
            y -= h
            bars.append(
                {"css": css, "x": x, "y": y, "w": bar_w, "h": h, "over": over,
                 "bucket": bucket, "series": name, "value": v, "text": fmt(v)}
            )  # fmt: skip
    limit_y = None if limit is None else PAD_T + _PLOT_H * (1 - limit / y_max)
    return {
        "id": chart_id,
        "label": label,
        "bars": bars,
        "legend": [(name, css) for name, css, _ in series] if len(series) > 1 else [],
        "limit": None if limit is None else {"y": limit_y, "text": fmt(limit)},
        **_axes(y_max, fmt, buckets, hourly, slot),
    }


def line_chart(
    chart_id: str, buckets: Sequence[str], values: Sequence[float | None], *, hourly: bool
) -> Row:
    """A 0-100% line; buckets without input leave a gap."""
    n = max(len(buckets), 1)
    slot = (W - PAD_L - PAD_R) / n
    segments: list[list[str]] = [[]]
    dots = []
    for i, (bucket, v) in enumerate(zip(buckets, values, strict=True)):
        if v is None:
            segments.append([])
            continue
        x = PAD_L + slot * (i + 0.5)
        y = PAD_T + _PLOT_H * (1 - min(max(v, 0.0), 1.0))
        segments[-1].append(f"{x:.1f},{y:.1f}")
        dots.append({"x": x, "y": y, "bucket": bucket, "value": v, "text": format_rate(v)})
    return {
        "id": chart_id,
        "label": "cache hit rate",
        "lines": [" ".join(s) for s in segments if s],
        "dots": dots,
        **_axes(1.0, format_rate, buckets, hourly, slot),
    }
