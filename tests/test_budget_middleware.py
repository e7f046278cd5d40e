"""`UsageBudgetMiddleware` on `create_agent` agents: langchain-openai against the loopback API.

Every call the fake server answers bills 1000 prompt + 100 completion tokens of
"acme-model", priced here at $1 / $10 per million: $0.002 and 1,100 tokens a call.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from providers.acme import CALL_TOKENS, CALL_USD, PRICES, USAGE, ask, openai_agent, tool_reply
from providers.servers import OpenAIServer, Reply

from agent_usage import Budget, BudgetExceeded
from agent_usage.middleware import UsageBudgetMiddleware

pytest_plugins = ["providers.fixtures"]


def agent_on(server: OpenAIServer, middleware: UsageBudgetMiddleware) -> Any:
    """An agent on langchain-openai against `server`, guarded by `middleware`."""
    return openai_agent(server, middleware=[middleware])


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """A log path of its own per test, so no two tests share a ledger."""
    return tmp_path / "events.jsonl"


async def test_end_stops_before_the_second_call(
    openai_server: OpenAIServer, log_path: Path
) -> None:
    """exit_behavior="end": the second call is not sent; a final AIMessage says why."""
    openai_server.script(tool_reply(1), tool_reply(2), Reply(text="done", usage=USAGE))
    budget = Budget(invoke_usd=CALL_USD)
    agent = agent_on(openai_server, UsageBudgetMiddleware(budget, log=log_path, prices=PRICES))

    result = await agent.ainvoke(ask())

    assert len(openai_server.requests) == 1
    last = result["messages"][-1]
    assert isinstance(last, AIMessage)
    assert last.content == (
        "Usage budget reached: invoke limit ($0.002 spent of a $0.002 limit). "
        "The agent stopped here."
    )
    assert not last.tool_calls


def test_error_raises_budget_exceeded(openai_server: OpenAIServer, log_path: Path) -> None:
    """exit_behavior="error": the invoke raises BudgetExceeded with what was spent."""
    openai_server.script(tool_reply(1), tool_reply(2), tool_reply(3))
    middleware = UsageBudgetMiddleware(
        Budget(invoke_tokens=2 * CALL_TOKENS), log=log_path, exit_behavior="error"
    )
    with pytest.raises(BudgetExceeded) as info:
        agent_on(openai_server, middleware).invoke(ask())

    assert len(openai_server.requests) == 2
    exc = info.value
    assert (exc.scope, exc.limit, exc.spent, exc.unit) == ("invoke", 2200, 2200, "tokens")
    assert str(exc) == "invoke budget reached: spent 2,200 of 2,200 tokens"


async def test_session_limit_across_invokes(openai_server: OpenAIServer, log_path: Path) -> None:
    """A session (thread_id) limit holds across invokes; the invoke limit resets per run."""
    openai_server.script(
        tool_reply(1), Reply(text="one", usage=USAGE), tool_reply(2), tool_reply(3)
    )
    budget = Budget(invoke_tokens=3 * CALL_TOKENS, session_tokens=2500)
    agent = agent_on(openai_server, UsageBudgetMiddleware(budget, log=log_path))
    config = {"configurable": {"thread_id": "t-1"}}

    first = await agent.ainvoke(ask(), config)
    assert first["messages"][-1].content == "one"
    second = await agent.ainvoke(ask(), config)

    # 2,200 tokens after the first invoke; the second invoke's first call is allowed.
    assert len(openai_server.requests) == 3
    assert second["messages"][-1].content == (
        "Usage budget reached: session limit (3,300 tokens spent of a 2,500-token limit). "
        "The agent stopped here."
    )
    # Another thread has its own session total.
    openai_server.script(Reply(text="fresh", usage=USAGE))
    other = await agent.ainvoke(ask(), {"configurable": {"thread_id": "t-2"}})
    assert other["messages"][-1].content == "fresh"


def test_day_key_gives_each_user_a_day(openai_server: OpenAIServer, log_path: Path) -> None:
    """day_key: each value of metadata["user_id"] has its own day total."""
    openai_server.script(tool_reply(1), tool_reply(2), Reply(text="bob's", usage=USAGE))
    budget = Budget(day_tokens=CALL_TOKENS, day_key="user_id")
    agent = agent_on(openai_server, UsageBudgetMiddleware(budget, log=log_path))

    # Sync: on Python 3.10 an async LangGraph node sees no config metadata.
    alice = agent.invoke(ask(), {"metadata": {"user_id": "alice"}})
    bob = agent.invoke(ask(), {"metadata": {"user_id": "bob"}})

    assert "day limit (1,100 tokens spent" in alice["messages"][-1].content
    assert "day limit (1,100 tokens spent" in bob["messages"][-1].content
    assert len(openai_server.requests) == 2  # one each


@pytest.mark.parametrize("exit_behavior", ["end", "error"])
def test_unpriced_model_with_usd_limit(
    openai_server: OpenAIServer, log_path: Path, exit_behavior: Any
) -> None:
    """An unpriced model under a USD limit is refused before any request, naming the fix."""
    openai_server.script(Reply(text="never sent", usage=USAGE))
    middleware = UsageBudgetMiddleware(
        Budget(session_usd=5.0), log=log_path, exit_behavior=exit_behavior
    )
    agent = agent_on(openai_server, middleware)
    if exit_behavior == "error":
        with pytest.raises(BudgetExceeded) as info:
            agent.invoke(ask())
        message = str(info.value)
    else:
        message = agent.invoke(ask())["messages"][-1].content
    assert openai_server.requests == []
    assert "model 'acme-model' has no known price" in message
    assert "prices={'acme-model': {'input': ..., 'output': ...}}" in message
    assert "Budget(unpriced='allow')" in message


def test_unpriced_allowed_keeps_token_limits(
    openai_server: OpenAIServer, log_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """unpriced="allow": the USD limit does not apply to it, token limits do; one warning."""
    openai_server.script(tool_reply(1), tool_reply(2), tool_reply(3))
    budget = Budget(session_usd=0.000001, session_tokens=2 * CALL_TOKENS, unpriced="allow")
    agent = agent_on(openai_server, UsageBudgetMiddleware(budget, log=log_path))
    with caplog.at_level(logging.WARNING, logger="agent_usage"):
        result = agent.invoke(ask(), {"configurable": {"thread_id": "t"}})

    assert len(openai_server.requests) == 2
    assert "session limit (2,200 tokens spent" in result["messages"][-1].content
    warnings = [
        r.getMessage() for r in caplog.records if "USD limits do not apply" in r.getMessage()
    ]
    assert warnings == [
        "agent_usage: model 'acme-model' has no known price; the budget's USD limits do not "
        "apply to it (unpriced='allow'), only its token limits"
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        (
            {"budget": {"session_usd": 1}},
            TypeError,
            "budget must be a Budget, got {'session_usd': 1}",
        ),
        (
            {"exit_behavior": "stop"},
            ValueError,
            "exit_behavior must be 'end' or 'error', got 'stop'",
        ),
    ],
    ids=["not-a-budget", "exit-behavior"],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], text: str) -> None:
    """Bad arguments raise at construction, naming the value."""
    args: dict[str, Any] = {"budget": Budget(invoke_tokens=1), **kwargs}
    with pytest.raises(error) as info:
        UsageBudgetMiddleware(args.pop("budget"), **args)
    assert str(info.value) == text


WRITER = """
import sys
from langchain_core.messages import AIMessage
from agent_usage import EventLog, track_usage
from agent_usage.testing import ScriptedChatModel, usage_metadata

path, session, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
max_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else None
reply = AIMessage(content="ok", usage_metadata=usage_metadata(1000, 100))
model = ScriptedChatModel(script=[reply], model_name="acme-model")
with EventLog(path, max_bytes=max_bytes, backup_count=None) as log:
    tracked = track_usage(model, log, session_id=session)
    for _ in range(calls):
        tracked.invoke("hi")
"""


def other_process_spends(path: Path, session: str, calls: int, *rotate_at: int) -> None:
    """Another process logs `calls` tracked calls of 1,100 tokens for `session`."""
    args = [str(path), session, str(calls), *map(str, rotate_at)]
    subprocess.run([sys.executable, "-c", WRITER, *args], check=True, timeout=120)


def test_follows_what_another_process_logs(openai_server: OpenAIServer, log_path: Path) -> None:
    """Spend another process logs after the first check counts toward the session limit."""
    other_process_spends(log_path, "s1", 1)  # read at first use
    openai_server.script(Reply(text="one", usage=USAGE), Reply(text="never", usage=USAGE))
    budget = Budget(session_tokens=4 * CALL_TOKENS)
    agent = agent_on(openai_server, UsageBudgetMiddleware(budget, log=log_path))
    config = {"metadata": {"session_id": "s1"}}

    first = agent.invoke(ask(), config)  # 1,100 from the log + 1,100 here
    assert first["messages"][-1].content == "one"
    other_process_spends(log_path, "s1", 2)  # followed, not re-read: 4,400 now
    second = agent.invoke(ask(), config)

    assert len(openai_server.requests) == 1
    assert "session limit (4,400 tokens spent of a 4,400-token limit)" in (
        second["messages"][-1].content
    )


def test_first_use_reads_rotated_files(openai_server: OpenAIServer, log_path: Path) -> None:
    """The first check reads the whole log: its rotated files too, oldest first."""
    other_process_spends(log_path, "s2", 3, 300)  # rotates after every event
    assert len(list(log_path.parent.glob("events*.jsonl"))) >= 3
    openai_server.script(Reply(text="never", usage=USAGE))
    middleware = UsageBudgetMiddleware(
        Budget(session_tokens=3 * CALL_TOKENS), log=log_path, exit_behavior="error"
    )
    with pytest.raises(BudgetExceeded) as info:
        agent_on(openai_server, middleware).invoke(ask(), {"metadata": {"session_id": "s2"}})
    assert (info.value.scope, info.value.spent) == ("session", 3300)
    assert openai_server.requests == []
