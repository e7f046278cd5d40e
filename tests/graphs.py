"""The LangGraph graph several test files build: a chain of nodes over a message list."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langchain_core.messages import BaseMessage
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    """A graph state holding a message list."""

    messages: Annotated[list[BaseMessage], operator.add]


def graph_of(*nodes: Any) -> Any:
    """A compiled chain of nodes, each `state -> {"messages": [...]}`, run in order."""
    g = StateGraph(State)
    prev = START
    for i, node in enumerate(nodes):
        g.add_node(f"n{i}", node)
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    g.add_edge(prev, END)
    return g.compile()
