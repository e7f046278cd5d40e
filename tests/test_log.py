"""The event log: concurrent appends, crash recovery, failure policy, rotation, reading, follow."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import enum
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from logs import run_child, usage_event
from waits import PollCounter, await_until, wait_until

from agent_usage import EventLog, afollow, follow, read_events


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


# ---------------------------------------------------------------------------- writer


@pytest.mark.parametrize(
    "options",
    [{}, {"fsync": True}, {"max_bytes": 10**6}],
    ids=["default", "fsync", "rotation-on"],
)
def test_append_writes_one_line_per_event_with_mode_0600(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    """Each append is one JSON line; a new file is private to its owner."""
    path = tmp_path / "events.jsonl"
    with EventLog(path, **options) as log:
        for i in range(3):
            log.append(usage_event(seq=i))
        assert log.path == str(path)
        assert log.dropped == 0
    assert (path.stat().st_mode & 0o777) == 0o600
    assert [orjson.loads(line)["seq"] for line in lines(path)] == [0, 1, 2]


STRESS_CHILD = """
    import sys, threading
    from agent_usage import EventLog
    path, proc, threads, per_thread = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    log = EventLog(path)
    def work(t):
        for i in range(per_thread):
            # Sizes from 100 B to ~40 KB: many writes span several pages.
            log.append({"type": "stress", "proc": proc, "thread": t, "seq": i,
                        "pad": "x" * ((i * 7919) % 40000 if i % 10 == 0 else 100)})
    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    log.close()
    assert log.dropped == 0
"""


def test_processes_and_threads_never_interleave_or_lose_lines(tmp_path: Path) -> None:
    """4 processes x 4 threads x 2,000 events: every line parses, each event exactly once."""
    path = tmp_path / "events.jsonl"
    procs, threads, per_thread = 4, 4, 2000
    children = [
        run_child(STRESS_CHILD, str(path), str(p), str(threads), str(per_thread))
        for p in range(procs)
    ]
    assert [c.wait(timeout=120) for c in children] == [0] * procs
    seen = [(e["proc"], e["thread"], e["seq"]) for e in map(orjson.loads, lines(path))]
    assert len(seen) == procs * threads * per_thread
    assert len(set(seen)) == len(seen)


async def test_asyncio_tasks_and_worker_threads_share_one_log(tmp_path: Path) -> None:
    """Tasks on the loop and in worker threads append to one log without loss."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:

        async def task(n: int) -> None:
            for i in range(200):
                if i % 2:
                    await asyncio.to_thread(log.append, usage_event(f"t{n}", i))
                else:
                    log.append(usage_event(f"t{n}", i))
                    await asyncio.sleep(0)

        await asyncio.gather(*(task(n) for n in range(20)))
    assert len(list(read_events(path))) == 4000


CRASH_CHILD = """
    import sys
    from agent_usage import EventLog
    log = EventLog(sys.argv[1])
    i = 0
    while True:  # killed by the parent mid-stream; 1 MB lines make torn writes likely
        log.append({"type": "big", "seq": i, "pad": "y" * 1_000_000})
        i += 1
"""


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def wait_for_growth(path: Path, by: int) -> None:
    """Return once the file is `by` bytes longer than now: its writer is mid-stream."""
    target = size(path) + by
    wait_until(lambda: size(path) >= target, 30, "the writer made no progress")


def test_kill_9_mid_write_never_glues_the_next_append(tmp_path: Path) -> None:
    """After repeated kill -9 of a writer, the next append always starts on a new line."""
    path = tmp_path / "events.jsonl"
    kills = 6
    for round_ in range(kills):
        child = run_child(CRASH_CHILD, str(path))
        wait_for_growth(path, 3_500_000)  # a few events into this run
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        with EventLog(path) as log:
            log.append(usage_event(seq=round_))
    reader = read_events(path, types={"llm_usage"})
    assert [e["seq"] for e in reader] == list(range(kills))
    assert reader.skipped <= kills  # at most the one torn line per kill
    for event in read_events(path, types={"big"}):
        assert len(event["pad"]) == 1_000_000


@pytest.mark.parametrize(
    "fragment",
    [b'{"type": "llm_usage", "sess', b'{"type": "x", "models": {"a": 1}', b"\n\n{"],
    ids=["mid-string", "after-nested-object", "after-blank-lines"],
)
def test_a_torn_tail_is_detected_at_open(tmp_path: Path, fragment: bytes) -> None:
    """A file ending mid-line gets a newline before the next event; the fragment is skipped."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(usage_event(seq=0)) + b"\n" + fragment)
    with EventLog(path) as log:
        log.append(usage_event(seq=1))
        log.append(usage_event(seq=2))
    reader = read_events(path)
    assert [e["seq"] for e in reader] == [0, 1, 2]
    assert reader.skipped >= 1


SHORT_WRITE_CHILD = """
    import resource, signal, sys
    from agent_usage import EventLog
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG and short writes instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
    log = EventLog(sys.argv[1])
    for i in range(100):
        log.append({"type": "llm_usage", "seq": i, "pad": "z" * 3000})
    print(log.dropped)
"""


def test_a_short_write_leaves_no_glued_line(tmp_path: Path) -> None:
    """A write cut short by a file-size limit is ended cleanly; later appends are intact."""
    path = tmp_path / "events.jsonl"
    child = run_child(SHORT_WRITE_CHILD, str(path), stdout=subprocess.PIPE)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert int(out) > 0
    assert path.stat().st_size == 50_000  # the last write was cut short
    with EventLog(path) as log:
        log.append({"type": "llm_usage", "seq": 1000})
    reader = read_events(path)
    seqs = [e["seq"] for e in reader]
    assert seqs == [*range(len(seqs) - 1), 1000]
    assert reader.skipped == 1


# ---------------------------------------------------------------------------- failure policy


FULL_DISK_CHILD = """
    import errno, json, logging, sys
    from agent_usage import EventLog
    logging.basicConfig(level=logging.WARNING)
    log = EventLog(sys.argv[1])
    for i in range(5):
        log.append({"type": "llm_usage", "seq": i, "pad": "x" * 100_000})
    try:
        EventLog(sys.argv[1], strict=True).append({"type": "llm_usage"})
        strict = "written"
    except OSError as exc:
        strict = errno.errorcode[exc.errno]
    print(json.dumps({"dropped": log.dropped, "strict": strict}))
"""

# In a private mount namespace: a 64 KiB tmpfs, which the first 100 KB event fills.
FULL_MOUNT = 'mount -t tmpfs -o size=64k agent-usage-test "$0" && exec "$@"'


def namespaces() -> None:
    """Skip unless user and mount namespaces (`unshare -rm`) let a test mount a tmpfs."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], check=False).returncode:
        pytest.skip("no user and mount namespaces here (unshare -rm) to mount a tmpfs")


def test_a_full_disk_is_logged_once_counted_and_strict_raises(tmp_path: Path) -> None:
    """ENOSPC: the default log warns once and counts every dropped event; strict raises."""
    namespaces()
    mnt = tmp_path / "full"
    mnt.mkdir()
    prefix = ["unshare", "-rm", "sh", "-c", FULL_MOUNT, str(mnt)]
    child = run_child(
        FULL_DISK_CHILD,
        str(mnt / "events.jsonl"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        prefix=prefix,
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert orjson.loads(out) == {"dropped": 5, "strict": "ENOSPC"}
    assert err.decode().count("No space left") == 1


UNWRITABLE_CHILD = """
    import errno, json, logging, sys
    from agent_usage import EventLog
    logging.basicConfig(level=logging.WARNING)
    log = EventLog(sys.argv[1])
    for _ in range(3):
        log.append({"type": "llm_usage"})
    try:
        EventLog(sys.argv[1], strict=True)
        strict = "opened"
    except OSError as exc:
        strict = [errno.errorcode[exc.errno], exc.filename]
    print(json.dumps({"dropped": log.dropped, "strict": strict}))
"""


def test_a_file_we_may_not_write_is_counted_and_strict_raises(unprivileged: list[str]) -> None:
    """EACCES: the default log carries on counting drops; strict raises naming the path."""
    tmp = tempfile.mkdtemp()
    try:
        os.chmod(tmp, 0o755)
        path = os.path.join(tmp, "events.jsonl")
        Path(path).write_bytes(b"")
        os.chmod(path, 0o444)
        child = run_child(
            UNWRITABLE_CHILD,
            path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            prefix=unprivileged,
        )
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert orjson.loads(out) == {"dropped": 3, "strict": ["EACCES", path]}
        assert err.decode().count("Permission denied") == 1
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


# In a private mount namespace: a tmpfs holding an empty log, remounted read-only.
READ_ONLY_MOUNT = (
    'mount -t tmpfs agent-usage-test "$0" && : > "$0/events.jsonl" '
    '&& mount -o remount,ro "$0" && exec "$@"'
)


def test_a_read_only_filesystem_is_counted_and_strict_raises(tmp_path: Path) -> None:
    """EROFS: the default log carries on counting drops; strict raises naming the path."""
    namespaces()
    mnt = tmp_path / "ro"
    mnt.mkdir()
    path = str(mnt / "events.jsonl")
    prefix = ["unshare", "-rm", "sh", "-c", READ_ONLY_MOUNT, str(mnt)]
    child = run_child(
        UNWRITABLE_CHILD, path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, prefix=prefix
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert orjson.loads(out) == {"dropped": 3, "strict": ["EROFS", path]}
    assert err.decode().count("Read-only file system") == 1


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda d: d, IsADirectoryError),
        (lambda d: d / "missing" / "events.jsonl", FileNotFoundError),
    ],
    ids=["directory", "missing-parent"],
)
def test_a_path_that_cannot_work_fails_at_construction(
    tmp_path: Path, make: Any, error: type[OSError]
) -> None:
    """A directory or a missing parent raises at once, naming the path, even when not strict."""
    path = make(tmp_path)
    with pytest.raises(error) as info:
        EventLog(path)
    assert info.value.filename == str(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_bytes": 0}, "max_bytes"), ({"max_bytes": 10, "backup_count": 0}, "backup_count")],
    ids=["max_bytes", "backup_count"],
)
def test_bad_rotation_options_raise(tmp_path: Path, options: Any, message: str) -> None:
    """Rotation options are validated when the log is built."""
    with pytest.raises(ValueError, match=message):
        EventLog(tmp_path / "e.jsonl", **options)


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_append_after_close(tmp_path: Path, strict: bool) -> None:
    """After close an append is dropped and counted, or raises when strict."""
    log = EventLog(tmp_path / "e.jsonl", strict=strict)
    log.close()
    log.close()  # idempotent
    if strict:
        with pytest.raises(ValueError, match="closed"):
            log.append(usage_event())
    else:
        log.append(usage_event())
        assert log.dropped == 1


def test_close_while_threads_append_is_safe(tmp_path: Path) -> None:
    """Closing under concurrent appends raises nothing, and no event lands in another file."""
    log = EventLog(tmp_path / "events.jsonl")
    stop = threading.Event()
    errors: list[BaseException] = []
    appends = [0] * 4  # each thread's appends so far, written by that thread alone

    def hammer(n: int) -> None:
        try:
            while not stop.is_set():
                log.append(usage_event())
                appends[n] += 1
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    def every_thread_appends_again() -> None:
        """Wait until each thread has begun and ended one more append than it had now."""
        marks = list(appends)
        wait_until(
            lambda: all(a >= m + 2 for a, m in zip(appends, marks, strict=True)),
            message=f"the appending threads stalled: {errors}",
        )

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        every_thread_appends_again()  # all four are mid-stream when the log closes
        log.close()
        # Opened right after close: it would get a freed descriptor number first.
        other = tmp_path / "other.jsonl"
        with open(other, "wb") as f:
            every_thread_appends_again()  # appends after the close, while `other` is open
            stop.set()
            for t in threads:
                t.join(timeout=10)
            f.flush()
    finally:
        stop.set()
        log.close()
    assert errors == []
    assert other.read_bytes() == b""
    assert log.dropped > 0
    reader = read_events(tmp_path / "events.jsonl")
    assert len(list(reader)) > 0
    assert reader.skipped == 0


class Color(enum.Enum):
    RED = "red"


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


cycle: dict[str, Any] = {}
cycle["self"] = cycle


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2026-01-02T03:04:05+00:00"),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (decimal.Decimal("0.0125"), 0.0125),
        (decimal.Decimal("NaN"), "NaN"),
        ({3, 1, 2}, [1, 2, 3]),
        (frozenset({"a"}), ["a"]),
        (b"bytes", "bytes"),
        (Color.RED, "red"),
        (Path("/tmp/x"), "/tmp/x"),
        (ValueError("bad"), "ValueError: bad"),
        (Opaque(), "opaque!"),
        (Unprintable(), "<unprintable Unprintable>"),
        ({1: "int key"}, {"1": "int key"}),
        (2**80, str(2**80)),
        ("lone \ud800 surrogate", "lone ? surrogate"),
        (cycle, {"self": "<dict cycle or too deep>"}),
    ],
    ids=[
        "datetime", "date", "uuid", "decimal", "decimal-nan", "set", "frozenset", "bytes",
        "enum", "path", "exception", "object", "unprintable", "int-keys", "huge-int",
        "surrogate", "cycle",
    ],
)  # fmt: skip
def test_values_json_cannot_hold_are_converted_not_fatal(
    tmp_path: Path, value: Any, expected: Any
) -> None:
    """Odd values in an event are encoded sensibly or as their str; the write happens."""
    path = tmp_path / "events.jsonl"
    with EventLog(path, strict=True) as log:
        log.append({"type": "x", "metadata": {"v": value}})
    (event,) = read_events(path)
    assert event["metadata"]["v"] == expected


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork with threads alive, 3.12+
def test_a_forked_child_reopens_and_both_keep_appending(tmp_path: Path) -> None:
    """After fork, parent and child each append on their own descriptor; nothing is lost."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=4096, backup_count=None)
    log.append({"type": "x", "who": "parent", "seq": -1})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            for i in range(200):
                log.append({"type": "x", "who": "child", "seq": i})
            code = 0 if log.dropped == 0 else 1
        finally:
            os._exit(code)
    for i in range(200):
        log.append({"type": "x", "who": "parent", "seq": i})
    _, status = os.waitpid(pid, 0)
    log.close()
    assert os.waitstatus_to_exitcode(status) == 0
    events = list(read_events(path))
    assert sorted(e["seq"] for e in events if e["who"] == "child") == list(range(200))
    assert sorted(e["seq"] for e in events if e["who"] == "parent") == list(range(-1, 200))


# ---------------------------------------------------------------------------- rotation


def test_rotation_keeps_backup_count_files_named_by_age(tmp_path: Path) -> None:
    """Full files are renamed with a timestamp that sorts by age; only the newest N stay."""
    path = tmp_path / "events.jsonl"
    with EventLog(path, max_bytes=2000, backup_count=3) as log:
        for i in range(100):
            log.append(usage_event(seq=i))
    rotated = sorted(p.name for p in tmp_path.glob("events.*.jsonl"))
    assert len(rotated) == 3
    assert all(len(name) == len("events.20261122T231409123456Z.jsonl") for name in rotated)
    seqs = [e["seq"] for e in read_events(path)]
    assert seqs == sorted(seqs)  # oldest first across files
    assert seqs[-1] == 99
    assert all(os.path.getsize(tmp_path / name) >= 2000 for name in rotated)
    assert (path.stat().st_mode & 0o777) == 0o600


ROTATE_CHILD = """
    import sys
    from agent_usage import EventLog
    with EventLog(sys.argv[1], max_bytes=20_000, backup_count=None) as log:
        for i in range(3000):
            log.append({"type": "r", "proc": sys.argv[2], "seq": i})
"""


def test_rotation_across_processes_loses_nothing(tmp_path: Path) -> None:
    """Three processes rotating one log: every event is in exactly one file, in order."""
    path = tmp_path / "events.jsonl"
    children = [run_child(ROTATE_CHILD, str(path), str(p)) for p in range(3)]
    assert [c.wait(timeout=120) for c in children] == [0, 0, 0]
    reader = read_events(path)
    events = list(reader)
    assert reader.skipped == 0
    assert len(events) == 9000
    for p in "012":
        assert [e["seq"] for e in events if e["proc"] == p] == list(range(3000))
    assert len(list(tmp_path.glob("events.*.jsonl"))) > 5


# ---------------------------------------------------------------------------- reader


def test_the_reader_skips_and_counts_bad_lines(tmp_path: Path) -> None:
    """Blank, non-JSON, non-object and torn lines are skipped without raising, and counted."""
    path = tmp_path / "events.jsonl"
    good = [orjson.dumps(usage_event(seq=i)) for i in range(3)]
    bad = [b"", b"   ", b"not json", b"[1, 2]", b'"str"', b"42", b'{"type": "llm_us', b"{}}"]
    body = [good[0], *bad[:4], good[1], *bad[4:], good[2] + b"\r", b'{"torn": tr']
    path.write_bytes(b"\n".join(body))
    reader = read_events(path)
    assert [e["seq"] for e in reader] == [0, 1, 2]
    assert reader.skipped == len(bad) + 1
    assert reader.bytes_read == reader.bytes_total == path.stat().st_size


@pytest.mark.parametrize(
    ("line", "types", "wanted"),
    [
        (b'{"type":"llm_usage","n":1}', {"llm_usage"}, True),
        (b'{"type":"llm\\u005fusage","n":1}', {"llm_usage"}, True),
        (b'{"type" : "tool_call", "note": "llm_usage"}', {"llm_usage"}, False),
        (b'{"type":"a\\/b"}', {"a/b"}, True),
        (b'{"type":"tool_call"}', {"llm_usage", "tool_call"}, True),
        (b'{"type":"tool\\u005fcall"}', {"llm_usage", "tool_call"}, True),
        (b'{"type":"timing"}', {"llm_usage", "tool_call"}, False),
        (b'{"type":"llm_usage"}', "llm_usage", True),
    ],
    ids=[
        "plain", "unicode-escaped", "name-elsewhere", "escaped-slash", "two-types",
        "two-types-escaped", "two-types-other", "bare-string",
    ],
)  # fmt: skip
def test_the_type_filter_never_misses_an_escaped_match(
    tmp_path: Path, line: bytes, types: Any, wanted: bool
) -> None:
    """The byte pre-filter only skips lines that certainly hold another type."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(line + b"\n")
    assert len(list(read_events(path, types=types))) == int(wanted)


@pytest.mark.parametrize(
    "since",
    [
        "2026-11-22T23:14:03.123456+00:00",
        "2026-11-22T23:14:03.123456Z",
        "2026-11-23T00:14:03.123456+01:00",
        dt.datetime(2026, 11, 22, 23, 14, 3, 123456, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 11, 22, 23, 14, 3, 123456),
    ],
    ids=["iso", "zulu", "other-offset", "aware-datetime", "naive-datetime-is-utc"],
)
def test_since_keeps_events_at_or_after_a_time(tmp_path: Path, since: Any) -> None:
    """`since` compares real instants, whatever the offset or type it is given in."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        for i in range(6):
            log.append(usage_event(seq=i))
        log.append({"type": "llm_usage", "seq": 99, "timestamp": "not a time"})
    assert [e["seq"] for e in read_events(path, since=since)] == [3, 4, 5]


def test_bad_since_raises(tmp_path: Path) -> None:
    """An unreadable `since` is a ValueError naming it."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="yesterday"):
        read_events(path, since="yesterday")


def test_a_missing_log_raises_when_read_events_is_called(tmp_path: Path) -> None:
    """FileNotFoundError names the path, before any iteration."""
    path = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError) as info:
        read_events(path)
    assert info.value.filename == str(path)


def test_the_reader_streams_across_chunk_boundaries(tmp_path: Path) -> None:
    """Lines longer than a read chunk and lines split across chunks come back whole."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        for i in range(40):
            log.append(usage_event(seq=i, pad="p" * (i * 97_000)))
    reader = read_events(path, types={"llm_usage"})
    assert [e["seq"] for e in reader] == list(range(40))
    assert reader.skipped == 0


# ---------------------------------------------------------------------------- follow


def collect(iterator: Iterator[dict[str, Any]], n: int, out: list[dict[str, Any]]) -> None:
    for event in iterator:
        out.append(event)
        if len(out) == n:
            break


def test_follow_yields_new_events_across_rotation_and_truncation(tmp_path: Path) -> None:
    """Like tail -F: only events appended after it started, through rotation and truncation."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=3000, backup_count=None)
    log.append(usage_event(seq=-1))  # before follow starts: not yielded
    out: list[dict[str, Any]] = []
    stop = PollCounter()
    # follow() is at the end of the log when it returns: every append after it is new.
    it = follow(path, types={"llm_usage"}, poll_interval=0.01, stop=stop)
    thread = threading.Thread(target=collect, args=(it, 40, out))

    def followed(n: int) -> None:
        wait_until(lambda: len(out) == n, message=f"{n} events not followed")

    thread.start()
    try:
        for i in range(30):  # several rotations
            log.append(usage_event(seq=i))
            log.append({"type": "other"})
            if i % 7 == 0:  # caught up at some rotations, lagging through others
                followed(i + 1)
        followed(30)
        os.truncate(path, 0)  # copytruncate-style
        # Appends that outgrew the old size before the follower looked would hide the
        # truncation (from tail -F too): it must have looked once first.
        stop.wait_for_polls()
        for i in range(30, 40):
            log.append(usage_event(seq=i))
        thread.join(timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
        log.close()
    assert [e["seq"] for e in out] == list(range(40))


def test_follow_waits_for_a_file_and_stops_on_request(tmp_path: Path) -> None:
    """A log created after follow starts is read from its start; setting stop ends it."""
    path = tmp_path / "late.jsonl"
    stop = PollCounter()
    out: list[dict[str, Any]] = []
    it = follow(path, poll_interval=0.01, stop=stop)
    thread = threading.Thread(target=lambda: out.extend(it))
    thread.start()
    try:
        stop.wait_for_polls()  # it has looked for the file and not found it
        with EventLog(path) as log:
            log.append(usage_event(seq=1))
        wait_until(lambda: len(out) == 1, message="the new file's event not followed")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert [e["seq"] for e in out] == [1]


async def test_afollow_yields_from_start_and_stops_on_an_asyncio_event(tmp_path: Path) -> None:
    """afollow with from_start replays the file, then yields new events until stopped."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.append(usage_event(seq=0))
    stop = asyncio.Event()
    seen: list[int] = []

    async def consume() -> None:
        async for event in afollow(path, from_start=True, poll_interval=0.01, stop=stop):
            seen.append(event["seq"])
            if len(seen) == 3:
                stop.set()

    task = asyncio.create_task(consume())
    try:
        # The replayed event came first: the follower is at the end, the next two are new.
        await await_until(lambda: seen == [0], message="the existing event not replayed")
        log.append(usage_event(seq=1))
        log.append(usage_event(seq=2))
        await asyncio.wait_for(task, timeout=10)
    finally:
        task.cancel()
        log.close()
    assert seen == [0, 1, 2]
