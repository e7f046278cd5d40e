"""`track_usage(..., budget=...)` and `tracking(..., budget=...)` end to end.

Real langchain-openai against the loopback API, or the shipped ScriptedChatModel;
every call bills 1000 prompt + 100 completion tokens of "acme-model", priced here
at $1 / $10 per million: $0.002 and 1,100 tokens a call. Expected figures are
those; the log is read back with the public reader.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from logs import usage_events as events
from providers.acme import (
    CALL_TOKENS,
    CALL_USD,
    MODEL,
    PRICES,
    USAGE,
    ask,
    lookup,
    openai_agent,
    tool_reply,
)
from providers.servers import OpenAIServer, Reply

from agent_usage import Budget, BudgetExceeded, EventLog, track_usage
from agent_usage.middleware import UsageBudgetMiddleware
from agent_usage.testing import ScriptedChatModel, usage_metadata

pytest_plugins = ["providers.fixtures"]


def looping_model(*, delay: float = 0.0) -> ScriptedChatModel:
    """A model that calls `lookup` forever, 1,100 tokens a call (optionally slow)."""

    def reply(messages: list[BaseMessage]) -> AIMessage:
        if delay:
            # Deliberate pacing, not a wait: a slow model keeps concurrent invokes
            # overlapping. The bounds checked hold whatever the overlap turns out to be.
            time.sleep(delay)
        n = len(messages)
        call = {"name": "lookup", "args": {"query": "x"}, "id": f"t{n}", "type": "tool_call"}
        return AIMessage(content="", tool_calls=[call], usage_metadata=usage_metadata(1000, 100))

    return ScriptedChatModel(script=reply, model_name=MODEL)


def answering_model() -> ScriptedChatModel:
    return ScriptedChatModel(
        script=[AIMessage(content="ok", usage_metadata=usage_metadata(1000, 100))],
        model_name=MODEL,
    )


# --------------------------------------------------------------------- invoke


@pytest.mark.parametrize(
    ("budget", "field"),
    [
        (
            Budget(invoke_usd=CALL_USD),
            {"scope": "invoke", "limit": CALL_USD, "spent": CALL_USD, "unit": "usd"},
        ),
        (
            Budget(invoke_tokens=1000),
            {"scope": "invoke", "limit": 1000, "spent": CALL_TOKENS, "unit": "tokens"},
        ),
    ],
    ids=["usd", "tokens"],
)
async def test_invoke_limit_stops_the_second_call(
    openai_server: OpenAIServer, tmp_path: Path, budget: Budget, field: dict[str, Any]
) -> None:
    """The agent's second model call is not sent; its event says budget_exceeded and why."""
    openai_server.script(tool_reply(1), Reply(text="never sent", usage=USAGE))
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent = track_usage(openai_agent(openai_server), log, budget=budget, prices=PRICES)
        with pytest.raises(BudgetExceeded) as info:
            await agent.ainvoke(ask())

    assert len(openai_server.requests) == 1
    assert info.value.as_event_field() == field
    (event,) = events(path)
    assert event["status"] == "budget_exceeded"
    assert event["budget"] == field
    assert (event["total_tokens"], event["cost_usd"], event["llm_calls"]) == (1100, 0.002, 1)


def test_limit_reached_inside_a_tool(tmp_path: Path) -> None:
    """A tool's own model call past the invoke limit is not made; the invoke is stopped."""
    inner = answering_model()

    @tool
    def summarise(text: str) -> str:
        """Summarise with a model of its own."""
        return str(inner.invoke(text).content)

    outer = ScriptedChatModel(
        script=[
            AIMessage(
                content="",
                tool_calls=[{"name": "summarise", "args": {"text": "x"}, "id": "s1"}],
                usage_metadata=usage_metadata(1000, 100),
            ),
            AIMessage(content="done", usage_metadata=usage_metadata(1000, 100)),
        ],
        model_name=MODEL,
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent = track_usage(
            create_agent(outer, tools=[summarise]), log, budget=Budget(invoke_tokens=1000)
        )
        with pytest.raises(BudgetExceeded) as info:
            agent.invoke(ask())

    assert (inner.calls, info.value.scope, info.value.spent) == (0, "invoke", 1100)
    (event,) = events(path)
    assert (event["status"], event["total_tokens"]) == ("budget_exceeded", 1100)


# --------------------------------------------------------------------- session


WORKER = """
import json, sys
from langchain_core.messages import AIMessage
from agent_usage import Budget, BudgetExceeded, EventLog, track_usage
from agent_usage.testing import ScriptedChatModel, usage_metadata

path, session, limit, invokes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
reply = AIMessage(content="ok", usage_metadata=usage_metadata(1000, 100))
model = ScriptedChatModel(script=[reply], model_name="acme-model")
done = stopped = 0
with EventLog(path) as log:
    agent = track_usage(model, log, session_id=session, budget=Budget(session_tokens=limit))
    for _ in range(invokes):
        try:
            agent.invoke("hi")
            done += 1
        except BudgetExceeded:
            stopped += 1
print(json.dumps({"calls": model.calls, "done": done, "stopped": stopped}))
"""


def worker(path: Path, session: str, limit: int, invokes: int) -> subprocess.Popen[str]:
    """A process invoking a tracked model under a session token limit, one call each."""
    args = [str(path), session, str(limit), str(invokes)]
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE, text=True
    )


def result(proc: subprocess.Popen[str]) -> dict[str, int]:
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    return dict(json.loads(out))


async def test_session_limit_across_invokes_and_a_new_process(tmp_path: Path) -> None:
    """A session limit holds across invokes, and in a new process reading the same log."""
    model = answering_model()
    path = tmp_path / "events.jsonl"
    budget = Budget(session_tokens=2500)
    with EventLog(path) as log:
        agent = track_usage(model, log, session_id="s1", budget=budget)
        for _ in range(3):  # 1,100, 2,200, then 3,300: the check is before each call
            await agent.ainvoke("hi")
        with pytest.raises(BudgetExceeded) as info:
            await agent.ainvoke("hi")
        # Another session is not held by s1's spend.
        await track_usage(model, log, session_id="s2", budget=budget).ainvoke("hi")

    assert (model.calls, info.value.scope, info.value.spent) == (4, "session", 3300)
    assert info.value.session_id == "s1"
    # A restart: the new process reads s1's 3,300 tokens from the log and sends nothing.
    assert result(worker(path, "s1", 2500, 2)) == {"calls": 0, "done": 0, "stopped": 2}
    assert result(worker(path, "s2", 2500, 2)) == {"calls": 2, "done": 2, "stopped": 0}


def test_two_processes_share_one_session_limit(tmp_path: Path) -> None:
    """Two processes on one log and one session stop together, within the bound."""
    path = tmp_path / "events.jsonl"
    limit = 10 * CALL_TOKENS
    procs = [worker(path, "shared", limit, 30) for _ in range(2)]
    results = [result(p) for p in procs]

    calls = sum(r["calls"] for r in results)
    logged = sum(e["total_tokens"] for e in events(path) if e["session_id"] == "shared")
    assert logged == calls * CALL_TOKENS
    # Each process's invoke makes one call; the other's running invoke is not yet
    # in the log: at most one call over per process.
    assert limit <= logged <= limit - 1 + 2 * CALL_TOKENS
    assert all(r["stopped"] >= 1 for r in results)


async def test_ten_plus_concurrent_invokes_of_one_session(tmp_path: Path) -> None:
    """12 concurrent invokes of one session overshoot by at most one call each."""
    model = looping_model(delay=0.01)
    limit = 20 * CALL_TOKENS
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent = track_usage(
            create_agent(model, tools=[lookup]),
            log,
            session_id="busy",
            budget=Budget(session_tokens=limit),
        )
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(agent.ainvoke(ask()) for _ in range(12)), return_exceptions=True),
            timeout=120,
        )

    assert all(isinstance(o, BudgetExceeded) for o in outcomes), outcomes
    logged = events(path)
    assert len(logged) == 12
    assert all(e["status"] == "budget_exceeded" for e in logged)
    total = sum(e["total_tokens"] for e in logged)
    assert total == model.calls * CALL_TOKENS
    # The documented bound: one call in flight per concurrently running invoke.
    assert limit <= total <= limit - 1 + 12 * CALL_TOKENS


# --------------------------------------------------------------------- day


def test_day_key_gives_each_user_a_day(tmp_path: Path) -> None:
    """day_key: each value of metadata["user_id"] has its own daily total; others share one."""
    model = answering_model()
    path = tmp_path / "events.jsonl"
    budget = Budget(day_tokens=2 * CALL_TOKENS, day_key="user_id")
    with EventLog(path) as log:
        alice = track_usage(model, log, metadata={"user_id": "alice"}, budget=budget)
        bob = track_usage(model, log, metadata={"user_id": "bob"}, budget=budget)
        alice.invoke("hi")
        alice.invoke("hi")
        with pytest.raises(BudgetExceeded) as info:
            alice.invoke("hi")
        bob.invoke("hi")

    assert (info.value.scope, info.value.spent, model.calls) == ("day", 2200, 3)
    # A new process: alice's day is read back from the log, bob has one call left.
    code = f"""
from langchain_core.messages import AIMessage
from agent_usage import Budget, BudgetExceeded, EventLog, track_usage
from agent_usage.testing import ScriptedChatModel, usage_metadata
reply = AIMessage(content="ok", usage_metadata=usage_metadata(1000, 100))
model = ScriptedChatModel(script=[reply], model_name="acme-model")
budget = Budget(day_tokens={2 * CALL_TOKENS}, day_key="user_id")
out = []
with EventLog({str(path)!r}) as log:
    for user in ("alice", "bob", "bob"):
        try:
            track_usage(model, log, metadata={{"user_id": user}}, budget=budget).invoke("hi")
            out.append(user)
        except BudgetExceeded as exc:
            out.append(f"{{user}} stopped at {{exc.spent}}")
print(out)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "['alice stopped at 2200', 'bob', 'bob stopped at 2200']"


# --------------------------------------------------------------------- unpriced


def test_unpriced_model_under_a_usd_limit(tmp_path: Path) -> None:
    """An unpriced model under a USD limit: a clear error before its first call."""
    model = answering_model()
    budget = Budget(session_usd=1.0)
    with EventLog(tmp_path / "events.jsonl") as log:
        with pytest.raises(BudgetExceeded) as info:
            track_usage(model, log, session_id="s", budget=budget).invoke("hi")
        assert model.calls == 0
        track_usage(model, log, session_id="s", budget=budget, prices=PRICES).invoke("hi")
    assert model.calls == 1
    assert str(info.value) == (
        "model 'acme-model' has no known price, so the session budget of $1 cannot be "
        "checked. Give it a price with prices={'acme-model': {'input': ..., 'output': ...}} "
        "(USD per million tokens) where you track usage, or use Budget(unpriced='allow') to "
        "apply only token limits to it"
    )


def test_unpriced_allowed_applies_token_limits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """unpriced="allow": USD limits skip the model, token limits hold, one warning."""
    model = answering_model()
    budget = Budget(session_usd=0.0001, session_tokens=2 * CALL_TOKENS, unpriced="allow")
    with caplog.at_level(logging.WARNING), EventLog(tmp_path / "events.jsonl") as log:
        agent = track_usage(model, log, session_id="s", budget=budget)
        agent.invoke("hi")
        agent.invoke("hi")
        with pytest.raises(BudgetExceeded) as info:
            agent.invoke("hi")
    assert (model.calls, info.value.unit, info.value.spent) == (2, "tokens", 2200)
    warned = [r for r in caplog.records if "USD limits do not apply" in r.getMessage()]
    assert len(warned) == 1


# --------------------------------------------------------------------- composing


async def test_middleware_and_track_usage_count_each_call_once(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    """The middleware and a tracked budget on one log share one ledger: no call counted twice."""
    openai_server.script(*(tool_reply(i) for i in range(5)))
    path = tmp_path / "events.jsonl"
    middleware = UsageBudgetMiddleware(Budget(session_tokens=3 * CALL_TOKENS), log=path)
    with EventLog(path) as log:
        agent = track_usage(
            openai_agent(openai_server, middleware=[middleware]),
            log,
            session_id="s",
            budget=Budget(day_tokens=100 * CALL_TOKENS),
            prices=PRICES,
        )
        result = await agent.ainvoke(ask(), {"configurable": {"thread_id": "s"}})

    assert len(openai_server.requests) == 3
    assert "session limit (3,300 tokens spent" in result["messages"][-1].content
    (event,) = events(path)
    assert (event["status"], event["total_tokens"]) == ("ok", 3300)


def test_tracking_scope_takes_a_budget(tmp_path: Path) -> None:
    """`with tracking(..., budget=...)` stops invokes started inside the block."""
    from agent_usage import tracking

    model = answering_model()
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log, tracking(log, session_id="t", budget=Budget(session_tokens=1)):
        model.invoke("hi")
        with pytest.raises(BudgetExceeded):
            model.invoke("hi")
    assert model.calls == 1
    assert [e["status"] for e in events(path)] == ["ok"]


def test_guard_is_thread_safe(tmp_path: Path) -> None:
    """Threads invoking one session at once stay within the bound too."""
    model = answering_model()
    limit = 10 * CALL_TOKENS
    path = tmp_path / "events.jsonl"
    stopped: list[BaseException] = []
    with EventLog(path) as log:
        agent = track_usage(model, log, session_id="th", budget=Budget(session_tokens=limit))

        def run() -> None:
            for _ in range(10):
                try:
                    agent.invoke("hi")
                except BudgetExceeded as exc:
                    stopped.append(exc)

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    total = sum(e["total_tokens"] for e in events(path))
    assert total == model.calls * CALL_TOKENS
    assert limit <= total <= limit - 1 + 8 * CALL_TOKENS
    assert len(stopped) == 80 - model.calls


async def test_middleware_inside_track_usage_without_a_budget(
    openai_server: OpenAIServer, tmp_path: Path
) -> None:
    """A middleware budget under track_usage (no budget) on one log: the event read back
    is not counted again on top of the middleware's own count."""
    openai_server.script(tool_reply(1), Reply(text="one", usage=USAGE), tool_reply(2))
    path = tmp_path / "events.jsonl"
    middleware = UsageBudgetMiddleware(Budget(session_tokens=3 * CALL_TOKENS), log=path)
    with EventLog(path) as log:
        agent = track_usage(openai_agent(openai_server, middleware=[middleware]), log)
        config = {"configurable": {"thread_id": "s"}}
        first = await agent.ainvoke(ask(), config)  # 2 calls, then its event is written
        second = await agent.ainvoke(ask(), config)  # 1 more: 3,300; then stopped

    assert first["messages"][-1].content == "one"
    assert len(openai_server.requests) == 3
    assert "session limit (3,300 tokens spent" in second["messages"][-1].content
    assert [e["total_tokens"] for e in events(path)] == [2200, 1100]


def test_a_stop_logs_no_callback_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A budget stop is the exception, not also langchain-core's "Error in callback" warning."""
    model = answering_model()
    with caplog.at_level(logging.WARNING), EventLog(tmp_path / "events.jsonl") as log:
        agent = track_usage(
            model, log, session_id="q", budget=Budget(session_tokens=1), prices=PRICES
        )
        agent.invoke("hi")
        with pytest.raises(BudgetExceeded):
            agent.invoke("hi")
    assert [r.getMessage() for r in caplog.records] == []


def test_dirty_log_lines_are_skipped_not_summed(tmp_path: Path) -> None:
    """Malformed or torn lines in the log never break a budget and never count."""
    path = tmp_path / "events.jsonl"
    good = {
        "type": "llm_usage",
        "timestamp": "2026-11-22T10:00:00.000000+00:00",
        "session_id": "d",
        "total_tokens": 1100,
        "cost_usd": 0.002,
    }
    bad = [
        {**good, "total_tokens": "many"},
        {**good, "total_tokens": -5},
        {**good, "cost_usd": "free"},
        {**good, "session_id": ["d"]},
        {**good, "timestamp": {"when": "now"}},
        {**good, "timestamp": "2026-13-45T10:00:00+00:00"},
        {k: v for k, v in good.items() if k != "timestamp"},
    ]
    lines = [json.dumps(e) for e in (good, *bad)] + ["not json", '{"type": "llm_usage", "sess']
    path.write_text("\n".join(lines))  # the last line torn, without its newline
    model = answering_model()
    with EventLog(path) as log:
        agent = track_usage(model, log, session_id="d", budget=Budget(session_tokens=2200))
        agent.invoke("hi")  # 1,100 from the one good line: allowed
        with pytest.raises(BudgetExceeded) as info:
            agent.invoke("hi")
    assert (model.calls, info.value.spent) == (1, 2200)
