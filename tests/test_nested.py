"""Nested tracked invokes: each writes its event, the inner names its parent, none counts twice.

A tracked chain called from a tracked agent's tool: the agent's event includes the
chain's call, and the chain's event carries `parent_invoke_id`, so readers that sum
a log (report, budgets) skip it. Every expected number is what the scripts served.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.tools import tool
from logs import usage_events as events

import agent_usage
from agent_usage import Budget, BudgetExceeded, EventLog, track_usage, tracking
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um


def nested_agent(outer_log: Any, inner_log: Any, **kwargs: Any) -> tuple[Any, ScriptedChatModel]:
    """A tracked agent whose tool runs a tracked chain; the agent's model serves 100+150
    input / 10+15 output tokens, the chain's model 70 / 7 per call."""
    tool_model = ScriptedChatModel(
        model_name="tool-model", script=[AIMessage(content="summary", usage_metadata=um(70, 7))]
    )
    chain = track_usage(tool_model | StrOutputParser(), inner_log, session_id="s", **kwargs)

    @tool
    def summarise(text: str) -> str:
        """Summarise text with a model."""
        return str(chain.invoke(text))

    agent_model = ScriptedChatModel(
        model_name="agent-model",
        script=[
            AIMessage(
                content="",
                tool_calls=[{"name": "summarise", "args": {"text": "x"}, "id": "t1"}],
                usage_metadata=um(100, 10),
            ),
            AIMessage(content="done", usage_metadata=um(150, 15)),
        ],
    )
    agent = track_usage(
        create_agent(agent_model, tools=[summarise]), outer_log, session_id="s", **kwargs
    )
    return agent, tool_model


INPUT = {"messages": [HumanMessage("go")]}


@pytest.mark.parametrize("method", ["invoke", "ainvoke"])
async def test_tracked_chain_in_a_tracked_agents_tool_names_its_parent(
    tmp_path: Path, method: str
) -> None:
    """Two events: the agent's holds all three calls, the chain's names the agent's invoke."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent, _ = nested_agent(log, log)
        if method == "ainvoke":
            await agent.ainvoke(INPUT)
        else:
            agent.invoke(INPUT)
    inner, outer = sorted(events(path), key=lambda e: e["llm_calls"])
    assert (outer["input_tokens"], outer["output_tokens"], outer["llm_calls"]) == (320, 32, 3)
    assert (inner["input_tokens"], inner["output_tokens"], inner["llm_calls"]) == (70, 7, 1)
    assert inner["parent_invoke_id"] == outer["invoke_id"] != inner["invoke_id"]
    assert "parent_invoke_id" not in outer


def test_three_levels_and_a_tracking_block_name_the_nearest_parent(tmp_path: Path) -> None:
    """Each event names the nearest enclosing tracked invoke, the block's root included."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent, _ = nested_agent(log, log)
        with tracking(log, session_id="block"):
            agent.invoke(INPUT)
    by_calls = {e["llm_calls"]: e for e in events(path) if e["session_id"] == "s"}
    [block] = [e for e in events(path) if e["session_id"] == "block"]
    assert "parent_invoke_id" not in block
    assert block["llm_calls"] == 3
    # The wrapper's invoke is one of the block's roots: same run, so same invoke id.
    assert by_calls[3]["parent_invoke_id"] == block["invoke_id"] == by_calls[3]["invoke_id"]
    assert by_calls[1]["parent_invoke_id"] == by_calls[3]["invoke_id"]


def test_a_parent_in_another_log_is_not_named(tmp_path: Path) -> None:
    """An inner invoke writing to another log is that log's only record of its calls: no parent."""
    outer_path, inner_path = tmp_path / "outer.jsonl", tmp_path / "inner.jsonl"
    with EventLog(outer_path) as outer_log, EventLog(inner_path) as inner_log:
        agent, _ = nested_agent(outer_log, inner_log)
        agent.invoke(INPUT)
    [outer], [inner] = events(outer_path), events(inner_path)
    assert (outer["llm_calls"], inner["llm_calls"]) == (3, 1)
    assert "parent_invoke_id" not in inner
    assert agent_usage.report(inner_path)[0]["llm_calls"] == 1


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_report_totals_equal_the_outer_event_alone(tmp_path: Path, engine: str) -> None:
    """`report` skips nested events: the log's totals are the served calls, each once."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        agent, _ = nested_agent(log, log)
        agent.invoke(INPUT)
    assert len(events(path)) == 2
    for by in ("session", "model", "day"):
        rows = agent_usage.report(path, by=by, engine=engine)
        summed = {
            k: sum(r[k] for r in rows) for k in ("input_tokens", "output_tokens", "llm_calls")
        }
        assert summed == {"input_tokens": 320, "output_tokens": 32, "llm_calls": 3}, by


WORKER = """
import json, sys
from langchain_core.messages import AIMessage
from agent_usage import Budget, BudgetExceeded, EventLog, track_usage
from agent_usage.testing import ScriptedChatModel, usage_metadata

model = ScriptedChatModel(script=[AIMessage(content="ok", usage_metadata=usage_metadata(1, 1))])
with EventLog(sys.argv[1]) as log:
    try:
        track_usage(model, log, session_id="s", budget=Budget(session_tokens=1)).invoke("hi")
    except BudgetExceeded as exc:
        print(json.dumps({"spent": exc.spent, "calls": model.calls}))
"""


def test_nested_budgets_on_one_log_count_each_call_once(tmp_path: Path) -> None:
    """Session totals hold each call once: in this process, and in a new one reading the log."""
    path = tmp_path / "events.jsonl"
    # One invoke: 110 + 77 + 165 = 352 tokens. The check runs before each call, so
    # with an 850-token limit the third invoke's first two calls are allowed (at 704,
    # then 814) and its last refused at 891. Counted twice, the 77-token inner call
    # would have stopped the third invoke's first call, at 858.
    budget = Budget(session_tokens=850)
    with EventLog(path) as log:
        agent, tool_model = nested_agent(log, log, budget=budget)
        agent.invoke(INPUT)
        agent.invoke(INPUT)
        with pytest.raises(BudgetExceeded) as info:
            agent.invoke(INPUT)
    assert (info.value.scope, info.value.spent, tool_model.calls) == ("session", 891, 3)
    stopped = [e for e in events(path) if e["status"] == "budget_exceeded"]
    assert [(e["total_tokens"], "parent_invoke_id" in e) for e in stopped] == [(187, False)]
    # A new process reads the log: the nested events are skipped, the outer ones summed.
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"spent": 891, "calls": 0}


def test_an_external_call_in_nested_budgeted_invokes_counts_once(tmp_path: Path) -> None:
    """A call recorded from outside LangChain (LiteLLM) in nested budgeted invokes: once."""
    from langchain_core.runnables import RunnableLambda

    from agent_usage._scope import record_external_call
    from agent_usage._usage import Usage

    path = tmp_path / "events.jsonl"
    budget = Budget(session_tokens=10**6)
    with EventLog(path) as log:

        def external(_: Any) -> int:
            return record_external_call(Usage(input_tokens=500, output_tokens=50), model="ext")

        inner = track_usage(RunnableLambda(external), log, session_id="x", budget=budget)
        outer = track_usage(RunnableLambda(inner.invoke), log, session_id="x", budget=budget)
        assert outer.invoke("go") == 2  # counted in both scopes
        model = ScriptedChatModel(script=[AIMessage(content="a", usage_metadata=um(1, 1))])
        with pytest.raises(BudgetExceeded) as info:
            track_usage(model, log, session_id="x", budget=Budget(session_tokens=1)).invoke("hi")
    assert (info.value.spent, model.calls) == (550, 0)
    inner_event, outer_event = sorted(events(path), key=lambda e: "parent_invoke_id" not in e)
    assert inner_event["parent_invoke_id"] == outer_event["invoke_id"]
    assert inner_event["total_tokens"] == outer_event["total_tokens"] == 550
