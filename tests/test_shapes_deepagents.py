"""deepagents sub-agents, serial and parallel: every sub-agent's calls land in the parent's event.

A deep agent delegates through its `task` tool; each sub-agent is a compiled
agent of its own, run inside the tool call (in parallel when the main model
asks for two tasks at once). The sub-agents' model calls must be counted once
in the one event of the parent's invoke, with their own per-model rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from providers.expect import drive, expected, numbers, only_event

from agent_usage import EventLog, track_usage
from agent_usage.testing import ScriptedChatModel
from agent_usage.testing import usage_metadata as um

deepagents = pytest.importorskip(
    "deepagents", reason="deepagents is installed on Python 3.11+ only (the lock skips it on 3.10)"
)

# Each task's usage follows from its description, so parallel sub-agents cannot swap numbers.
TASKS = {
    "research alpha": um(1200, 80, cache_read=1024, reasoning=30),
    "research beta": um(900, 60, cache_creation=512),
}


def task(description: str, n: int) -> dict[str, Any]:
    """A `task` tool call delegating `description` to the researcher sub-agent."""
    args = {"description": description, "subagent_type": "researcher"}
    return {"name": "task", "args": args, "id": f"task-{n}"}


def researcher_reply(messages: list[BaseMessage]) -> AIMessage:
    """The sub-agent model: its prompt's last message is the delegated task."""
    description = str(messages[-1].content)
    return AIMessage(content=f"findings on {description}", usage_metadata=TASKS[description])


SCRIPTS = {
    "serial": [
        AIMessage(content="", tool_calls=[task("research alpha", 1)], usage_metadata=um(500, 40)),
        AIMessage(content="", tool_calls=[task("research beta", 2)], usage_metadata=um(700, 35)),
        AIMessage(content="both done", usage_metadata=um(900, 25, cache_read=512)),
    ],
    "parallel": [
        AIMessage(
            content="",
            tool_calls=[task("research alpha", 1), task("research beta", 2)],
            usage_metadata=um(500, 40),
        ),
        AIMessage(content="both done", usage_metadata=um(1600, 60, cache_read=512)),
    ],
}
# main-model totals: serial 2100/100 (read 512), parallel 2100/100 (read 512): the same
# sum by construction, so the table below holds for both.
MAIN = expected(2100, 100, read=512)
SUB = expected(2100, 140, read=1024, creation=512, reasoning=30)


@pytest.mark.parametrize("how", ["ainvoke", "invoke", "astream-messages"])
@pytest.mark.parametrize("shape", ["serial", "parallel"])
async def test_deep_agent_subagents_count_once(tmp_path: Path, shape: str, how: str) -> None:
    """Sub-agents run serially or in parallel: one event, main and sub-agent rows exact."""
    main = ScriptedChatModel(model_name="main-model", script=SCRIPTS[shape])
    sub = ScriptedChatModel(model_name="sub-model", script=researcher_reply)
    agent = deepagents.create_deep_agent(
        model=main,
        subagents=[
            {
                "name": "researcher",
                "description": "Researches one topic.",
                "system_prompt": "You research.",
                "model": sub,
                "tools": [],
            }
        ],
    )
    path = tmp_path / "events.jsonl"
    inputs = {"messages": [HumanMessage("research alpha and beta")]}
    with EventLog(path) as log:
        result = await drive(track_usage(agent, log), how, inputs, subgraphs=True)
    if how == "ainvoke":
        assert result["messages"][-1].text == "both done"

    assert sub.calls == 2
    assert main.calls == len(SCRIPTS[shape])
    event = only_event(path)
    assert numbers(event["models"]["main-model"]) == MAIN
    assert numbers(event["models"]["sub-model"]) == SUB
    assert numbers(event) == expected(4200, 240, read=1536, creation=512, reasoning=30)
    assert event["llm_calls"] == len(SCRIPTS[shape]) + 2
    assert event["model"] == "mixed"
