"""Loopback fakes of provider HTTP APIs, for driving the real LangChain integrations.

`OpenAIServer` speaks OpenAI Chat Completions and Responses; `AnthropicServer`
speaks Anthropic Messages; both answer from a script of `Reply`s, plain JSON or
SSE streaming. `fixtures` holds the pytest fixtures that start and stop them.
"""

from __future__ import annotations

from .servers import AnthropicServer, FakeServer, OpenAIServer, Reply, ToolCall

__all__ = ["AnthropicServer", "FakeServer", "OpenAIServer", "Reply", "ToolCall"]
