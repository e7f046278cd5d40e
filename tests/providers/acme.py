"""The billed call the budget tests count: "acme-model" on the loopback OpenAI API.

Every call the fake server answers bills 1000 prompt + 100 completion tokens,
priced here at $1 / $10 per million: $0.002 and 1,100 tokens a call.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from .servers import OpenAIServer, Reply, ToolCall

MODEL = "acme-model"
PRICES = {MODEL: {"input": 1.0, "output": 10.0}}
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
CALL_USD = (1000 * 1.0 + 100 * 10.0) / 1e6  # 0.002
CALL_TOKENS = 1100


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return "found it"


def tool_reply(n: int) -> Reply:
    """A served reply calling `lookup` (call id `call_<n>`), billed one call."""
    return Reply(tool_calls=(ToolCall("lookup", {"query": "x"}, f"call_{n}"),), usage=USAGE)


def openai_agent(server: OpenAIServer, tools: list[Any] | None = None, **kwargs: Any) -> Any:
    """A `create_agent` agent on langchain-openai against `server`, with `lookup` by default."""
    model = ChatOpenAI(model=MODEL, base_url=server.url, api_key=SecretStr("test"), max_retries=0)
    return create_agent(model, tools=[lookup] if tools is None else tools, **kwargs)


def ask() -> dict[str, Any]:
    """The agent's input."""
    return {"messages": [HumanMessage("find x")]}
