"""`agent-usage demo`: a real LangGraph agent on a scripted offline chat model.

The agent is a small tool-calling graph (model node, `ToolNode`, a checkpointer)
whose model is `ScriptedChatModel`. Usage follows what Anthropic bills a
prompt-cached conversation: the system prompt is written to the cache once per
session (a 1-hour TTL for one session), later calls read the cached prefix and
write the new tail, and answers spend thinking tokens. One tool calls a second
model (an OpenAI-style reasoning model with cached input), the case that
hand-summed message usage misses. Everything is deterministic and offline.
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
from collections.abc import Sequence
from typing import Annotated, Any

from . import report
from ._common import CliError, positive_int

__all__ = ["add_arguments", "run", "run_demo"]

SYSTEM_TOKENS = 1800
TOKENS_PER_MESSAGE = 150
AGENT_MODEL = "claude-sonnet-4-5-20250929"
TOOL_MODEL = "gpt-5-mini-2025-08-07"
QUESTIONS = (
    "Why did the nightly export fail?",
    "Which service owns the billing queue?",
    "Summarise yesterday's incidents.",
    "Is the cache warm after the deploy?",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage demo`."""
    parser.add_argument(
        "--log",
        default="demo-events.jsonl",
        help="where to write the events (default: %(default)s; appended to)",
    )
    parser.add_argument(
        "--sessions", type=positive_int, default=4, help="sessions (default: %(default)s)"
    )
    parser.add_argument(
        "--turns", type=positive_int, default=3, help="turns per session (default: %(default)s)"
    )


def _agent_reply(messages: Sequence[Any]) -> Any:
    """The agent model's answer: a tool call first, then an answer citing it."""
    from langchain_core.messages import AIMessage, ToolMessage

    from ..testing import usage_metadata

    # The cached prefix is everything up to the previous request; the new tail is written,
    # except the newest message, which is not cached yet.
    sizes = [_tokens(m) for m in messages]
    prompt = SYSTEM_TOKENS + sum(sizes)
    first_call = len(messages) == 1
    read = 0 if first_call else SYSTEM_TOKENS + sum(sizes[:-2])
    written = prompt - read - sizes[-1]
    if isinstance(messages[-1], ToolMessage):
        return AIMessage(
            content=f"Here is what I found: {messages[-1].content}",
            usage_metadata=usage_metadata(
                prompt, 260, cache_read=read, cache_creation=written, reasoning=110
            ),
        )
    question = str(messages[-1].content)
    ttl_1h = written if first_call and "billing" in question else None
    return AIMessage(
        content="",
        tool_calls=[
            {"name": "lookup_docs", "args": {"query": question}, "id": f"call-{len(messages)}"}
        ],
        usage_metadata=usage_metadata(
            prompt,
            90,
            cache_read=read,
            cache_creation=written,
            cache_creation_1h=ttl_1h,
            reasoning=40,
        ),
    )


def _tokens(message: Any) -> int:
    """A stand-in tokenizer: deterministic, roughly 4 characters a token."""
    return (
        TOKENS_PER_MESSAGE
        + len(str(message.content)) // 4
        + 60 * len(getattr(message, "tool_calls", []))
    )


def _tool_reply(messages: Sequence[Any]) -> Any:
    from langchain_core.messages import AIMessage

    from ..testing import usage_metadata

    query = str(messages[-1].content)
    prompt = 640 + len(query) * 3  # a cached instruction prefix, then the query
    return AIMessage(
        content=f"runbook section {len(query) % 9 + 1}.2 covers it",
        usage_metadata=usage_metadata(prompt, 120 + len(query), cache_read=640, reasoning=96),
    )


def build_agent() -> Any:
    """The demo agent: model -> tools -> model, with an in-memory checkpointer."""
    from langchain_core.messages import AnyMessage
    from langchain_core.tools import tool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import START, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition
    from typing_extensions import TypedDict

    from ..testing import ScriptedChatModel

    docs_model = ScriptedChatModel(script=_tool_reply, model_name=TOOL_MODEL, provider="openai")
    agent_model = ScriptedChatModel(
        script=_agent_reply, model_name=AGENT_MODEL, provider="anthropic"
    )

    @tool
    def lookup_docs(query: str) -> str:
        """Search the runbooks with a small reasoning model."""
        return str(docs_model.invoke(f"Find the runbook entry for: {query}").content)

    # Functional form: class-body annotations would be strings under
    # `from __future__ import annotations` and could not see these local imports.
    State = TypedDict("State", {"messages": Annotated[list[AnyMessage], operator.add]})  # noqa: UP013

    async def call_model(state: Any) -> dict[str, Any]:
        return {"messages": [await agent_model.ainvoke(state["messages"])]}

    graph = StateGraph(State)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode([lookup_docs]))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=InMemorySaver())


async def run_demo(log_path: str | os.PathLike[str], *, sessions: int = 4, turns: int = 3) -> int:
    """Run the demo agent and append its events to `log_path`; returns the invokes made."""
    from langchain_core.messages import HumanMessage

    from .._log import EventLog
    from .._wrapper import track_usage

    # Strict: a log that cannot be written stops the demo with the real cause, before
    # it claims to have written anything.
    with EventLog(log_path, strict=True) as log:
        agent = track_usage(build_agent(), log, metadata={"app": "agent-usage-demo"})

        async def session(n: int) -> None:
            config = {"configurable": {"thread_id": f"demo-session-{n + 1}"}}
            for t in range(turns):
                question = QUESTIONS[(n + t) % len(QUESTIONS)]
                await agent.ainvoke({"messages": [HumanMessage(question)]}, config)

        await asyncio.gather(*(session(n) for n in range(sessions)))
    return sessions * turns


def run(args: argparse.Namespace) -> int:
    """Run the demo, then print the per-session report of its log."""
    try:
        invokes = asyncio.run(run_demo(args.log, sessions=args.sessions, turns=args.turns))
    except OSError as exc:
        raise CliError(f"cannot write {args.log}: {exc.strerror or exc}") from None
    print(f"ran {invokes} agent invokes; events appended to {args.log}\n")
    # Parse through the report's own options, so the demo prints what `report` would.
    report_parser = argparse.ArgumentParser(prog="agent-usage report")
    report.add_arguments(report_parser)
    code = report.run(report_parser.parse_args([os.fspath(args.log), "--by", "session"]))
    print(f"\nnext: agent-usage dashboard {args.log} -o dashboard.html")
    return code
