"""The HTML dashboard: self-contained, escaped, right numbers; checked in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from chromium import DevTools, open_offline, problems, requested
from logs import one_model_event

from agent_usage import EventLog, report
from agent_usage._cli import main

XSS = "<script>alert(1)</script>"
HOSTILE = [
    XSS,
    '"><img src=x onerror=alert(2)>',
    "</script><script>alert(3)</script>",
    "<!-- \u2028 & &amp; ]]>",
]

SONNET = "claude-sonnet-4-5"
MINI = "gpt-5-mini"
UNPRICED = "acme-internal-7b"


def usage_event(
    ts: str,
    session: str,
    model: str,
    inp: int,
    out: int,
    *,
    read: int = 0,
    reasoning: int = 0,
    cost: float | None = None,
    saved: float | None = None,
    status: str = "ok",
    without: int = 0,
) -> dict[str, Any]:
    """A one-model `llm_usage` event of two calls."""
    return one_model_event(
        ts=ts,
        session=session,
        model=model,
        inp=inp,
        out=out,
        read=read,
        reasoning=reasoning,
        calls=2,
        without=without,
        cost=cost,
        saved=saved,
        status=status,
        provider="x",
    )


def sample_events() -> list[dict[str, Any]]:
    """Four days, five sessions (one hostile), three models (one unpriced), all statuses."""
    events = []
    statuses = ["ok", "ok", "ok", "error", "ok", "cancelled", "ok"]
    for i in range(28):
        day = 18 + i % 4
        model = (SONNET, MINI, UNPRICED)[i % 3]
        priced = model != UNPRICED
        inp = 2000 + 137 * i
        events.append(
            usage_event(
                f"2026-11-{day}T{(i * 5) % 24:02d}:{i % 60:02d}:00.000123+00:00",
                XSS if i % 5 == 0 else f"session-{i % 5}",
                model,
                inp,
                100 + 11 * i,
                read=inp // 3,
                reasoning=7 * i,
                cost=round(0.0031 * (i + 1), 6) if priced else None,
                saved=round(0.0004 * (i + 1), 6) if priced else None,
                status=statuses[i % len(statuses)],
                without=1 if i % 9 == 0 else 0,
            )
        )
    return events


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The sample events, mixed with another event type."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as w:
        for e in sample_events():
            w.append(e)
            w.append({"type": "tool_call", "timestamp": e["timestamp"]})
    return path


def render(log: Path, tmp_path: Path, *args: str) -> str:
    out = tmp_path / "dashboard.html"
    assert main(["dashboard", str(log), "-o", str(out), *args]) == 0
    return out.read_text(encoding="utf-8")


class _Strings(HTMLParser):
    """The text nodes and attribute values of a page, unescaped, as a browser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.values: list[str] = []

        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.values.extend(v for _, v in attrs if v is not None)
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    """(tag, attributes) of every element of the page body, in order."""
    parser = _Strings()
    parser.feed(page.split("<body>", 1)[1])
    return parser.elements


def page_strings(page: str) -> tuple[list[str], list[str]]:
    """(text nodes, attribute values) of the page body."""
    parser = _Strings()
    parser.feed(page.split("<body>", 1)[1])
    return parser.texts, parser.values


def embedded_data(page: str) -> Any:
    m = re.search(
        r'<script type="application/json" id="agent-usage-data">(.*?)</script>', page, re.S
    )
    assert m is not None
    return json.loads(m.group(1))


# --- the page, without a browser ------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE, ids=["script", "attribute", "close-script", "misc"])
def test_strings_from_the_log_are_escaped(tmp_path: Path, hostile: str) -> None:
    """Session ids, model names, statuses, the title and the path never become markup."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as w:
        w.append(
            usage_event(
                "2026-11-20T10:00:00+00:00", hostile, hostile, 10, 5, without=1, status=hostile
            )
        )
        w.append(usage_event("2026-11-20T11:00:00+00:00", hostile, SONNET, 10, 5, cost=9.0))
    page = render(path, tmp_path, "--title", hostile, "--session-usd", "1", "--day-usd", "1")
    body = page.split("<body>", 1)[1]
    assert hostile not in body
    assert "<img" not in body
    assert body.count("<script") == 1  # the JSON data block only
    texts, values = page_strings(page)
    # shown as text: title, session (table and budget list), model (three panels), status
    assert texts.count(hostile) >= 7
    assert hostile in values  # and kept whole in data-* attributes
    data = embedded_data(page)
    assert data["top_sessions"][0]["session_id"] == hostile
    assert data["unpriced_models"] == [hostile]
    assert data["status"] == {hostile: 1, "ok": 1}
    assert data["budget"]["sessions_over"] == [hostile]


def test_page_is_self_contained(log: Path, tmp_path: Path) -> None:
    """No URL to fetch, no executable script: a CSP forbids both."""
    page = render(log, tmp_path)
    assert not re.search(r"https?://|//[a-z]|@import|url\(|<link|src=", page)
    assert "default-src 'none'" in page
    assert page.count("<script") == 1
    assert '<script type="application/json"' in page


def test_embedded_data_matches_the_report(log: Path, tmp_path: Path) -> None:
    """The page's data is the report's rows (by model, by day, top sessions)."""
    data = embedded_data(render(log, tmp_path))
    assert data["by_model"] == report(log, by="model")
    assert data["over_time"] == {"bucket": "day", "rows": report(log, by="day")}
    assert data["top_sessions"] == report(log, top=10)
    assert data["unpriced_models"] == [UNPRICED]
    statuses = [e["status"] for e in sample_events()]
    assert data["status"] == {s: statuses.count(s) for s in set(statuses)}


def test_short_ranges_are_charted_per_hour(log: Path, tmp_path: Path) -> None:
    """Two days or less: per hour; longer: per day."""
    data = embedded_data(render(log, tmp_path, "--since", "2026-11-21"))
    assert data["over_time"]["bucket"] == "hour"
    assert data["over_time"]["rows"] == report(log, by="hour", since="2026-11-21")


def test_empty_log_renders(tmp_path: Path) -> None:
    """A log without llm_usage events still renders every panel, with zeros."""
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "tool_call"}\n')
    page = render(path, tmp_path)
    for panel in PANELS:
        assert f'id="{panel}"' in page
    assert embedded_data(page)["total"]["events"] == 0


def test_huge_numbers_do_not_break_the_page(tmp_path: Path) -> None:
    """Costs that sum to infinity: a page (or skipped events), never a traceback."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as w:
        for hour in (10, 11):
            w.append(usage_event(f"2026-11-20T{hour}:00:00+00:00", "s", SONNET, 10, 5, cost=1e308))
        w.append(usage_event("2026-11-20T12:00:00+00:00", "s", SONNET, 10, 5, cost=0.5))
    page = render(path, tmp_path, "--day-usd", "1")
    assert page.count("<script") == 1


SESSION_USD, DAY_USD = 0.16, 0.2


def over_budget(events: list[dict[str, Any]], key: str, limit: float) -> set[str]:
    """Sessions or days whose priced cost adds up to more than `limit`, from the events."""
    costs: dict[str, float] = {}
    for e in events:
        k = e["session_id"] if key == "session" else e["timestamp"][:10]
        costs[k] = costs.get(k, 0.0) + (e["cost_usd"] or 0.0)
    return {k for k, c in costs.items() if c > limit}


def test_budget_marks_sessions_and_days_over_the_limits(log: Path, tmp_path: Path) -> None:
    """--session-usd / --day-usd: what is over is marked in the tables, chart and data."""
    events = sample_events()
    sessions = over_budget(events, "session", SESSION_USD)
    days = over_budget(events, "day", DAY_USD)
    assert sessions and days and len(sessions) < 5 and len(days) < 4  # a real split
    page = render(log, tmp_path, "--session-usd", str(SESSION_USD), "--day-usd", str(DAY_USD))
    budget = embedded_data(page)["budget"]
    assert (budget["session_usd"], budget["day_usd"]) == (SESSION_USD, DAY_USD)
    assert set(budget["sessions_over"]) == sessions
    assert set(budget["days_over"]) == days
    els = elements(page)
    marked_rows = {a["data-session"] for t, a in els if t == "tr" and "data-over" in a}
    assert marked_rows == sessions
    marked_bars = {a["data-bucket"] for t, a in els if t == "rect" and "data-over" in a}
    assert marked_bars == days
    listed = {a.get("data-session") or a.get("data-day") for t, a in els if t == "li"}
    assert sessions | days <= listed
    assert XSS in sessions  # the hostile id is listed, escaped like everywhere else
    assert page.count("<script") == 1


def test_no_budget_no_marks(log: Path, tmp_path: Path) -> None:
    """Without limits nothing is marked and there is no budget panel."""
    page = render(log, tmp_path)
    assert 'id="budget"' not in page
    assert not [a for _, a in elements(page) if "data-over" in a]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dashboard", "{missing}", "-o", "{out}"], "no such file"),
        (["dashboard", "{log}", "-o", "{out}", "--since", "soon"], "not an ISO date"),
        (["dashboard", "{log}", "-o", "{nodir}"], "output directory does not exist"),
    ],
    ids=["missing-log", "bad-date", "no-output-dir"],
)
def test_cli_bad_input(
    log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Bad input is one line on stderr and exit code 2, and no file is written."""
    values = {
        "log": str(log),
        "missing": str(tmp_path / "nope.jsonl"),
        "out": str(tmp_path / "out.html"),
        "nodir": str(tmp_path / "nodir" / "out.html"),
    }
    assert main([a.format(**values) for a in args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert not (tmp_path / "out.html").exists()


# --- in a real browser ------------------------------------------------------------

PANELS = (
    "headline",
    "cost-over-time",
    "tokens-over-time",
    "cache-over-time",
    "status",
    "by-model",
    "top-sessions",
    "calls-without-usage",
    "unpriced-models",
)


def expected_totals(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures, computed straight from the events."""
    priced = [e["cost_usd"] for e in events if e["cost_usd"] is not None]
    inp = sum(e["input_tokens"] for e in events)
    out = sum(e["output_tokens"] for e in events)
    return {
        "cost_usd": sum(priced),
        "total_tokens": inp + out,
        "llm_calls": sum(e["llm_calls"] for e in events),
        "cache_hit_rate": sum(e["cache_read_input_tokens"] for e in events) / inp,
        "cache_savings_usd": sum(e["cache_savings_usd"] or 0 for e in events),
        "reasoning_share": sum(e["reasoning_tokens"] for e in events) / out,
    }


PAGE_STATE = """JSON.stringify({
  panels: [...document.querySelectorAll('section[id]')].map(s => s.id),
  cards: Object.fromEntries([...document.querySelectorAll('#headline .card')].map(
      c => [c.dataset.metric,
            {value: c.dataset.value, text: c.querySelector('.value').innerText}])),
  status: Object.fromEntries([...document.querySelectorAll('#status [data-status]')].map(
      s => [s.dataset.status, Number(s.dataset.value)])),
  models: Object.fromEntries([...document.querySelectorAll('#by-model tr[data-model]')].map(
      r => [r.dataset.model, r.querySelector('[data-field=cost_usd]').innerText])),
  sessions: [...document.querySelectorAll('#top-sessions tr[data-session]')].map(
      r => r.querySelector('td.key').firstChild.textContent),  // the key, not its badge
  unpriced: [...document.querySelectorAll('#unpriced-models li[data-model]')].map(
      li => li.dataset.model),
  without: Number(document.querySelector('#calls-without-usage .big').dataset.value),
  costBars: document.querySelectorAll('#cost-chart rect').length,
  cacheDots: document.querySelectorAll('#cache-chart circle').length,
  overSessions: [...document.querySelectorAll('#top-sessions tr.over')].map(
      r => r.dataset.session),
  overDays: [...document.querySelectorAll('#cost-chart rect.over')].map(r => r.dataset.bucket),
  barFills: [...new Set([...document.querySelectorAll('#cost-chart rect')].map(
      r => r.classList.contains('over') + ':' + getComputedStyle(r).fill))],
  budgetText: document.querySelector('#budget').innerText,
  scripts: document.scripts.length,
  text: document.body.innerText,
  width: document.documentElement.scrollWidth,
})"""


@pytest.mark.browser
def test_dashboard_in_headless_chromium(log: Path, tmp_path: Path, browser: DevTools) -> None:
    """Offline in Chromium: no errors or requests, right numbers, XSS shown as text."""
    page = tmp_path / "dashboard.html"
    limits = ["--session-usd", str(SESSION_USD), "--day-usd", str(DAY_USD)]
    assert main(["dashboard", str(log), "-o", str(page), *limits]) == 0
    url = page.resolve().as_uri()
    open_offline(browser, url)
    state = json.loads(browser.evaluate(PAGE_STATE))

    # Nothing went wrong and nothing was fetched.
    assert problems(browser) == []
    assert requested(browser) <= {url}

    # Every panel, with the numbers the events add up to.
    assert set(PANELS) <= set(state["panels"])
    events = sample_events()
    for metric, value in expected_totals(events).items():
        assert float(state["cards"][metric]["value"]) == pytest.approx(value), metric
    assert state["cards"]["cost_usd"]["text"] == f"${expected_totals(events)['cost_usd']:,.2f}"
    assert state["cards"]["total_tokens"]["text"].endswith("k")
    assert state["cards"]["cache_hit_rate"]["text"].endswith("%")
    statuses = [e["status"] for e in events]
    assert state["status"] == {s: statuses.count(s) for s in ("ok", "error", "cancelled")}
    assert state["models"][UNPRICED] == "n/a"
    assert state["models"][SONNET].startswith("$")
    assert state["unpriced"] == [UNPRICED]
    assert state["without"] == sum(e["llm_calls_without_usage"] for e in events)
    assert state["costBars"] == 4  # one per day
    assert state["cacheDots"] == 4

    # Sessions and days over the limits are marked, and look it.
    assert set(state["overSessions"]) == over_budget(events, "session", SESSION_USD)
    assert set(state["overDays"]) == over_budget(events, "day", DAY_USD)
    assert len(state["barFills"]) == 2  # one colour for bars over the day limit, one for others
    assert "cost more than $0.16" in state["budgetText"]

    # The hostile session id is text on the page, and nothing ran.
    assert XSS in state["sessions"]
    assert XSS in state["text"]
    assert state["scripts"] == 1  # the inert JSON block
    assert state["width"] <= 1280  # no horizontal scroll at a laptop width

    metrics = browser.call("Page.getLayoutMetrics")
    height = metrics["cssContentSize"]["height"]
    shot = browser.call(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
    )
    png = tmp_path / "dashboard.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    assert png.stat().st_size > 10_000
