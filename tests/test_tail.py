"""`agent-usage tail`: follows the log and prints one readable line per new llm_usage event."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from logs import usage_event

from agent_usage import EventLog
from agent_usage._cli import main

ROOT = Path(__file__).resolve().parent.parent


class Tail:
    """A running `agent-usage tail`, its stdout lines collected by a thread."""

    def __init__(self, path: Path, *extra: str) -> None:
        argv = [sys.executable, "-m", "agent_usage", "tail", str(path), "--interval", "0.02"]
        self.proc = subprocess.Popen(
            [*argv, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TZ": "UTC"},
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,))
        self.reader.start()
        # It says so on stderr once it follows the file: only then append.
        assert "following" in self.proc.stderr.readline()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.lines.put(line.rstrip("\n"))

    def read(self, n: int, timeout: float = 15.0) -> list[str]:
        return [self.lines.get(timeout=timeout) for _ in range(n)]

    def interrupt(self) -> str:
        """Ctrl-C it; return its stderr after it exits."""
        self.proc.send_signal(signal.SIGINT)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        assert self.proc.returncode in (0, 130)
        return err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def start_tail() -> Iterator[Callable[..., Tail]]:
    """Starts tails; kills any left running when the test ends."""
    started: list[Tail] = []

    def start(path: Path, *extra: str) -> Tail:
        started.append(Tail(path, *extra))
        return started[-1]

    yield start
    for tail in started:
        tail.kill()


def test_tail_prints_new_usage_events_and_exits_cleanly_on_ctrl_c(
    tmp_path: Path, start_tail: Callable[..., Tail]
) -> None:
    """Only llm_usage events appended after start are printed; Ctrl-C exits without a traceback."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.append(usage_event("before"))
        tail = start_tail(path)
        log.append({"type": "tool_call", "name": "search"})
        log.append(usage_event("s1"))
        log.append(usage_event("s2", cost_usd=1.5, status="error"))
        lines = tail.read(2)
    err = tail.interrupt()
    assert "Traceback" not in err
    assert lines[0].split() == [
        "2026-11-22", "23:14:00", "s1", "claude-sonnet-4-5",
        "1,200", "in", "80", "out", "cache", "83%", "$0.001860",
    ]  # fmt: skip
    assert lines[1].endswith("$1.5000  [error]")
    assert "before" not in "\n".join(lines)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"session_id": None, "cost_usd": None}, " - "),
        ({"cost_usd": None}, "cost unknown"),
        ({"input_tokens": 0, "cache_read_input_tokens": 0}, "cache    -"),
        ({"session_id": "evil\x1b[2J"}, "evil\\x1b[2J"),
        ({"timestamp": "garbage"}, "garbage"),
        ({"timestamp": "2026-11-22T23:14:09Z"}, "2026-11-22 23:14:09"),
    ],
    ids=["no-session", "unpriced", "no-input", "escape-sequence", "bad-time", "zulu-time"],
)
def test_tail_from_start_formats_odd_events_readably(
    tmp_path: Path, start_tail: Callable[..., Tail], overrides: dict[str, Any], expected: str
) -> None:
    """--from-start replays the file; missing values, and terminal escapes, print safely."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.append(usage_event(**overrides))
    tail = start_tail(path, "--from-start")
    (line,) = tail.read(1)
    assert "Traceback" not in tail.interrupt()
    assert expected in line
    assert "\x1b" not in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tail", "{tmp}"], "Is a directory"),
        (["tail", "{tmp}/fifo"], "cannot follow {tmp}/fifo: not a regular file (a FIFO)"),
        (["tail", "{tmp}/e.jsonl", "--interval", "0"], "--interval must be positive"),
        (["tail", "{tmp}/e.jsonl", "--interval", "nan"], "--interval must be positive"),
        (["tail", "{tmp}/e.jsonl", "--interval", "inf"], "--interval must be positive"),
    ],
    ids=["directory", "fifo", "zero-interval", "nan-interval", "inf-interval"],
)
def test_tail_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A directory, a FIFO or a bad option: one line on stderr, exit code 2, at once."""
    (tmp_path / "e.jsonl").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err
    assert err.count("\n") == 1


def test_tail_waits_for_a_missing_file_like_tail_f(
    tmp_path: Path, start_tail: Callable[..., Tail]
) -> None:
    """A log that does not exist yet is waited for, then read from its start."""
    path = tmp_path / "later.jsonl"
    tail = start_tail(path)
    with EventLog(path) as log:
        log.append(usage_event("first"))
    (line,) = tail.read(1)
    assert "first" in line
    assert "Traceback" not in tail.interrupt()


def test_tail_on_an_unreadable_file_fails_at_once(tmp_path: Path, unprivileged: list[str]) -> None:
    """A file we may not read: one line naming it, exit code 2, no "following" and no wait."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"")
    path.chmod(0o200)
    argv = [*unprivileged, sys.executable, "-m", "agent_usage", "tail", str(path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr == f"agent-usage tail: error: Permission denied: {path}\n"
