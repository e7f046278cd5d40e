"""The event log under faults: lagging followers, killed writers, deleted files, held locks,
FIFOs, close races, huge lines and low open-file limits. Anything that could hang runs in a
child process with a timeout."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from logs import run_child
from waits import TIMEOUT_S, PollCounter, wait_until

from agent_usage import EventLog, _log, follow, read_events


def run_to_end(code: str, *args: str, timeout: float = 60, **kwargs: Any) -> str:
    """Run a child to its end (a hang fails the test); its stdout."""
    child = run_child(code, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    try:
        out, err = child.communicate(timeout=timeout)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == 0, err.decode()
    return str(out.decode())


# ---------------------------------------------------------------------------- item 1

ROTATING_WRITER = """
    import sys
    from agent_usage import EventLog
    path, proc, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with EventLog(path, max_bytes=2500, backup_count=None) as log:
        for i in range(count):
            log.append({"type": "llm_usage", "proc": proc, "seq": i, "pad": "r" * 150})
    assert log.dropped == 0
"""


def test_a_lagging_follower_misses_nothing_across_hundreds_of_rotations(tmp_path: Path) -> None:
    """4 rotating writers, ~400 rotations, a slow follower: every event once, none missed."""
    path = tmp_path / "events.jsonl"
    procs, per_proc = 4, 1500
    EventLog(path).close()
    stop = PollCounter()
    seen: list[tuple[str, int]] = []

    def consume() -> None:
        for event in follow(path, types={"llm_usage"}, poll_interval=0.01, stop=stop):
            seen.append((event["proc"], event["seq"]))
            if len(seen) % 50 == 0:
                # Deliberate pacing, not a wait: a slow reader, so the writers rotate
                # many times between its reads.
                time.sleep(0.005)

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        children = [
            run_child(ROTATING_WRITER, str(path), str(p), str(per_proc)) for p in range(procs)
        ]
        assert [c.wait(timeout=120) for c in children] == [0] * procs
        rotations = len(list(tmp_path.glob("events.*.jsonl")))
        wait_until(
            lambda: len(seen) >= procs * per_proc,
            timeout=60,
            message="the follower never read every event",
        )

        def a_whole_poll_adds_nothing() -> bool:
            before = len(seen)
            stop.wait_for_polls()
            return len(seen) == before

        # The writers have exited: once a poll begun after that finds nothing, the
        # follower is at the end of the log, and any event read twice is in `seen`.
        wait_until(a_whole_poll_adds_nothing, message="the follower kept reading")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert rotations >= 200  # hundreds (about 480 when rotation is never contended)
    expected = {(str(p), i) for p in range(procs) for i in range(per_proc)}
    missed = expected - set(seen)
    assert len(missed) == 0, f"missed {len(missed)} of {len(expected)}"
    assert len(seen) == len(set(seen)), "events read twice"


def test_read_events_during_rotations_never_misses_a_file(tmp_path: Path) -> None:
    """Reading while writers rotate: each writer's events come back gap-free, every time."""
    path = tmp_path / "events.jsonl"
    EventLog(path).close()
    children = [run_child(ROTATING_WRITER, str(path), str(p), "6000") for p in range(2)]
    reads = 0
    try:
        while any(c.poll() is None for c in children):
            events = list(read_events(path))
            reads += 1
            for p in "01":
                seqs = [e["seq"] for e in events if e["proc"] == p]
                assert seqs == list(range(len(seqs))), f"read {reads}: a file was missed"
    finally:
        for c in children:
            c.wait(timeout=120)
    assert reads >= 10


# ---------------------------------------------------------------------------- item 2

STEADY_WRITER = """
    import os, sys
    from agent_usage import EventLog
    path, proc, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    log = EventLog(path)
    i = 0
    while not os.path.exists(stop):
        for _ in range(50):
            log.append({"type": "steady", "proc": proc, "seq": i})
            i += 1
    log.close()
    print(i if log.dropped == 0 else -1)
"""

# Forks writers of 64 KB lines and kills each a few milliseconds in, mostly mid-write.
CRASHER = """
    import os, random, signal, sys, time
    from agent_usage import EventLog
    path, kills = sys.argv[1], int(sys.argv[2])
    rng = random.Random(7)
    for k in range(kills):
        pid = os.fork()
        if pid == 0:
            log = EventLog(path)
            while True:
                log.append({"type": "big", "kill": k, "pad": "y" * 65536})
        # Deliberate jitter, not a wait: the kill lands at a random point of a write.
        time.sleep(rng.uniform(0.001, 0.004))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
"""


def test_kill_9_of_one_writer_never_costs_another_an_event(tmp_path: Path) -> None:
    """100 writers killed mid-append next to 3 open writers: every returned-for event is read."""
    path = tmp_path / "events.jsonl"
    stop = tmp_path / "stop"
    EventLog(path).close()
    steady = [
        run_child(STEADY_WRITER, str(path), str(p), str(stop), stdout=subprocess.PIPE)
        for p in range(3)
    ]
    try:
        run_to_end(CRASHER, str(path), "100", timeout=120)
    finally:
        stop.touch()
        counts = [int(c.communicate(timeout=60)[0]) for c in steady]
    assert all(n > 0 for n in counts)
    reader = read_events(path)
    got: dict[str, set[int]] = {str(p): set() for p in range(3)}
    torn_free_big = 0
    for event in reader:
        if event["type"] == "steady":
            got[event["proc"]].add(event["seq"])
        else:
            assert len(event["pad"]) == 65536
            torn_free_big += 1
    lost = sum(len(set(range(n)) - got[str(p)]) for p, n in enumerate(counts))
    assert lost == 0, f"lost {lost} of {sum(counts)} returned-for events"
    assert reader.skipped > 0  # the kills did tear lines: the test exercised something
    assert torn_free_big > 0


# ---------------------------------------------------------------------------- item 3


class CheckClock:
    """The clock EventLog reads to decide when to compare its path with the open file.

    It compares them at most every `_CHECK_INTERVAL_S` (0.1 s); a test moves this clock
    past that instead of sleeping through it, so the next append checks, at once.
    """

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def pass_check_interval(self) -> None:
        self.now += _log._CHECK_INTERVAL_S


@pytest.fixture
def check_clock(monkeypatch: pytest.MonkeyPatch) -> CheckClock:
    clock = CheckClock()
    monkeypatch.setattr(_log, "_monotonic", clock)
    return clock


@pytest.mark.parametrize("how", ["deleted", "replaced", "renamed"])
def test_a_log_deleted_or_replaced_under_a_writer_is_reopened(
    tmp_path: Path, how: str, check_clock: CheckClock
) -> None:
    """Like WatchedFileHandler: the path is reopened; nothing is lost to an unlinked file."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    for i in range(10):
        log.append({"type": "x", "seq": i})
    if how == "deleted":
        path.unlink()
    elif how == "replaced":
        (tmp_path / "new").write_bytes(b"")
        os.replace(tmp_path / "new", path)
    else:
        path.rename(tmp_path / "events.old")
    for i in range(10, 2010):
        log.append({"type": "x", "seq": i})
    check_clock.pass_check_interval()
    log.append({"type": "x", "seq": 2010})  # noticed now, before close
    assert path.exists()
    log.close()
    assert log.dropped == 0
    seqs = [e["seq"] for e in read_events(path)]
    if how == "renamed":  # the events before the check are in the renamed file
        seqs += [e["seq"] for e in read_events(tmp_path / "events.old")]
    assert len(seqs) == len(set(seqs)), "an event written twice"
    assert set(range(10, 2011)) <= set(seqs)


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_a_deleted_directory_makes_appends_fail_counted(
    tmp_path: Path, strict: bool, check_clock: CheckClock
) -> None:
    """Events written after the log's directory is removed count as dropped, or raise."""
    directory = tmp_path / "logs"
    directory.mkdir()
    log = EventLog(directory / "events.jsonl", strict=strict)
    log.append({"type": "x"})
    check_clock.pass_check_interval()
    log.append({"type": "x"})  # checked now: the path is fine
    shutil.rmtree(directory)
    for _ in range(49):
        log.append({"type": "x"})
    check_clock.pass_check_interval()
    if strict:
        with pytest.raises(FileNotFoundError):
            log.append({"type": "x"})
    else:
        log.append({"type": "x"})
        assert log.dropped == 50
        log.append({"type": "x"})
        assert log.dropped == 51
    log.close()


# ---------------------------------------------------------------------------- item 4


def close_mid_stream(path: Path) -> tuple[int, int]:
    """Close a log while 4 threads append to it: (appends attempted, dropped)."""
    log = EventLog(path)
    counts = [0] * 4  # each thread's appends so far, written by that thread alone
    closed, stop = threading.Event(), threading.Event()
    # Set by each thread once it has ended an append begun before / after the close.
    before = [threading.Event() for _ in range(4)]
    after = [threading.Event() for _ in range(4)]

    def hammer(t: int) -> None:
        while not stop.is_set():
            late = closed.is_set()
            log.append({"type": "x"})
            counts[t] += 1
            (after if late else before)[t].set()

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    try:
        # All four are mid-stream when the log closes, and go on appending after it.
        assert all(e.wait(TIMEOUT_S) for e in before), "the appending threads stalled"
        log.close()
        closed.set()
        assert all(e.wait(TIMEOUT_S) for e in after), "the appending threads stalled"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return sum(counts), log.dropped


def test_close_racing_appends_never_loses_an_event_silently(tmp_path: Path) -> None:
    """Every append is either on disk or counted in `dropped`, across 200 closes mid-stream."""
    path = tmp_path / "events.jsonl"
    rounds = [close_mid_stream(path) for _ in range(200)]
    attempted = sum(a for a, _ in rounds)
    dropped = sum(d for _, d in rounds)
    on_disk = sum(1 for _ in read_events(path))
    assert on_disk + dropped == attempted, f"{attempted - on_disk - dropped} lost silently"
    assert dropped > 0


# ---------------------------------------------------------------------------- item 5

HOLD_LOCK = """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(120)  # holds the lock until the test kills it; 120 s only bounds a leak
"""

APPEND_PAST_MAX = """
    import json, logging, sys, time
    from agent_usage import EventLog
    logging.basicConfig(level=logging.WARNING)
    log = EventLog(sys.argv[1], max_bytes=1000)
    started = time.monotonic()
    for i in range(50):
        log.append({"type": "x", "seq": i, "pad": "p" * 100})
    print(json.dumps({"seconds": time.monotonic() - started, "dropped": log.dropped}))
"""


def test_a_held_rotation_lock_never_blocks_append(tmp_path: Path) -> None:
    """Another process holding `<path>.lock`: appends wait at most 0.5 s, then write anyway."""
    path = tmp_path / "events.jsonl"
    holder = run_child(HOLD_LOCK, f"{path}.lock", stdout=subprocess.PIPE)
    assert holder.stdout is not None  # stdout=PIPE
    try:
        assert holder.stdout.readline() == b"held\n"
        child = run_child(
            APPEND_PAST_MAX, str(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = child.communicate(timeout=30)
    finally:
        holder.kill()
        holder.communicate(timeout=10)
    assert child.returncode == 0, err
    result = orjson.loads(out)
    assert result["dropped"] == 0
    assert result["seconds"] < 3
    assert err.decode().count("held by another process") == 1
    assert [e["seq"] for e in read_events(path)] == list(range(50))


FIFO_CHILD = """
    import json, sys
    from agent_usage import EventLog, _log, follow, read_events
    out = {}
    for name, call in [
        ("EventLog", lambda: EventLog(sys.argv[1])),
        ("EventLog strict", lambda: EventLog(sys.argv[1], strict=True)),
        ("read_events", lambda: list(read_events(sys.argv[1]))),
        ("follow", lambda: next(follow(sys.argv[1], from_start=True))),
    ]:
        try:
            call()
            out[name] = "no error"
        except OSError as exc:
            out[name] = [exc.strerror, exc.filename]
    print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_is_refused_at_open(tmp_path: Path, kind: str) -> None:
    """A FIFO with no reader or a device: a clear error at once, never a hang."""
    if kind == "fifo":
        path = str(tmp_path / "events.jsonl")
        os.mkfifo(path)
        what = "a FIFO"
    else:
        path = "/dev/zero"
        what = "a character device"
    out = orjson.loads(run_to_end(FIFO_CHILD, path, timeout=30))
    message = f"not a regular file ({what}), cannot be an event log"
    calls = ["EventLog", "EventLog strict", "read_events", "follow"]
    assert out == {call: [message, path] for call in calls}


# ---------------------------------------------------------------------------- item 13

LONG_LINE_CHILD = """
    import json, resource, sys, time
    from agent_usage import read_events
    started = time.perf_counter()
    reader = read_events(sys.argv[1], types={"llm_usage"})
    seqs = [e["seq"] for e in reader]
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seqs": seqs,
        "skipped": reader.skipped,
    }))
"""


def write_long_line_log(path: Path, line_mb: int) -> None:
    with open(path, "wb") as f:
        f.write(orjson.dumps({"type": "llm_usage", "seq": 0}) + b"\n")
        f.write(b'{"type": "llm_usage", "seq": 1, "pad": "')
        for _ in range(line_mb):
            f.write(b"z" * (1 << 20))
        f.write(b'"}\n')
        f.write(orjson.dumps({"type": "llm_usage", "seq": 2}) + b"\n")


def write_normal_log(path: Path, mb: int) -> None:
    line = orjson.dumps({"type": "llm_usage", "seq": 0, "pad": "n" * 1000}) + b"\n"
    block = line * ((1 << 20) // len(line))
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(block)


def test_a_100_mb_line_costs_what_100_mb_of_lines_cost(tmp_path: Path) -> None:
    """Linear time, bounded memory: the huge line is skipped and counted, never held whole."""
    long_log, normal_log = tmp_path / "long.jsonl", tmp_path / "normal.jsonl"
    write_long_line_log(long_log, 100)
    write_normal_log(normal_log, 100)
    normal = orjson.loads(run_to_end(LONG_LINE_CHILD, str(normal_log), timeout=120))
    long = orjson.loads(run_to_end(LONG_LINE_CHILD, str(long_log), timeout=120))
    assert long["seqs"] == [0, 2]
    assert long["skipped"] == 1
    assert long["seconds"] < 3 * normal["seconds"] + 0.5
    assert long["peak_mb"] < normal["peak_mb"] + 100  # not 3x the line


OPEN_FILE_LIMIT_CHILD = """
    import resource, sys
    from agent_usage import read_events
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    print(sum(1 for _ in read_events(sys.argv[1])))
"""


def test_450_rotated_files_read_under_a_256_open_file_limit(tmp_path: Path) -> None:
    """read_events opens rotated files one at a time."""
    for i in range(450):
        name = f"events.20261122T2314{i // 100:02d}{i % 100:06d}Z.jsonl"
        (tmp_path / name).write_bytes(orjson.dumps({"type": "x", "seq": i}) + b"\n")
    (tmp_path / "events.jsonl").write_bytes(orjson.dumps({"type": "x", "seq": 450}) + b"\n")
    out = run_to_end(OPEN_FILE_LIMIT_CHILD, str(tmp_path / "events.jsonl"), timeout=60)
    assert int(out) == 451


# ---------------------------------------------------------------------------- item 17


def test_a_failed_open_is_reported_as_its_cause_not_as_not_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Appends after a failed open report the real cause, never "[Errno 9] not open"."""
    path = tmp_path / ("e" * 300 + ".jsonl")  # the open fails: ENAMETOOLONG
    with caplog.at_level(logging.WARNING, logger="agent_usage"):
        log = EventLog(path)
        for _ in range(3):
            log.append({"type": "x"})
    assert log.dropped == 3
    messages = [r.getMessage() for r in caplog.records]
    assert messages and all("File name too long" in m for m in messages)
    log.strict = True
    with pytest.raises(OSError) as info:
        log.append({"type": "x"})
    assert info.value.errno == errno.ENAMETOOLONG
    log.close()
