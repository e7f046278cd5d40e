"""Test doubles shipped with the package: a scripted chat model, an in-memory event sink.

LangChain's `GenericFakeChatModel` drops `usage_metadata` and tool calls when it
streams, and cannot `bind_tools`, so an agent on it cannot be tested in
"messages" stream mode. `ScriptedChatModel` answers from a script (a list of
`AIMessage`s, or a function of the prompt) and streams the same message back in
chunks, the usage on the last one, the way real integrations do. The demo runs
on it, and so can users' own tests.

`capture_events()` collects every `llm_usage` event written while it is open,
whatever log (or none) the tracking was given, as structlog's `capture_logs`
collects log entries.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, PrivateAttr

from ._event import LlmUsageEvent
from ._tracker import captures

__all__ = ["ScriptedChatModel", "capture_events", "usage_metadata"]

Script = Sequence[AIMessage | str] | Callable[[list[BaseMessage]], AIMessage | str]


def usage_metadata(
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read: int | None = None,
    cache_creation: int | None = None,
    cache_creation_1h: int | None = None,
    reasoning: int | None = None,
) -> UsageMetadata:
    """A `UsageMetadata` in LangChain's contract (inclusive totals, detail subsets).

    With `cache_creation_1h`, the writes are split into TTL keys the way
    langchain-anthropic reports them (generic `cache_creation` set to 0).
    """
    um = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    details: dict[str, int] = {}
    if cache_read is not None:
        details["cache_read"] = cache_read
    if cache_creation is not None:
        if cache_creation_1h is not None:
            details["cache_creation"] = 0
            details["ephemeral_5m_input_tokens"] = cache_creation - cache_creation_1h
            details["ephemeral_1h_input_tokens"] = cache_creation_1h
        else:
            details["cache_creation"] = cache_creation
    if details:
        um["input_token_details"] = details  # type: ignore[typeddict-item]
    if reasoning is not None:
        um["output_token_details"] = {"reasoning": reasoning}
    return um


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script and reports the script's usage.

    Args:
        script: the replies in order (cycled when exhausted), or a function
            from the prompt messages to the reply.
        model_name: reported as `response_metadata["model_name"]`.
        provider: reported as `ls_provider` and `model_provider`.
        fail_after: raise `RuntimeError` on this call number (1-based), after
            nothing was billed; for error-path tests.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Any
    model_name: str = "scripted-model"
    provider: str = "scripted"
    fail_after: int | None = None
    _calls: int = PrivateAttr(default=0)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def calls(self) -> int:
        """How many times the model has been called."""
        return self._calls

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Tools are accepted and ignored: the script decides which tools to call."""
        return self

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        with self._lock:
            self._calls += 1
            n = self._calls
        if self.fail_after is not None and n >= self.fail_after:
            raise RuntimeError(f"scripted failure on call {n}")
        if callable(self.script):
            reply = self.script(messages)
        else:
            reply = self.script[(n - 1) % len(self.script)]
        message = AIMessage(content=reply) if isinstance(reply, str) else reply
        return message.model_copy(
            update={
                "response_metadata": {
                    **message.response_metadata,
                    "model_name": message.response_metadata.get("model_name", self.model_name),
                    "model_provider": self.provider,
                }
            },
            deep=True,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._reply(messages)
        content = message.content if isinstance(message.content, str) else ""
        for token in (t for t in re.split(r"(\s)", content) if t):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=message.id))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        last = AIMessageChunk(
            content="",
            id=message.id,
            tool_call_chunks=[
                tool_call_chunk(name=tc["name"], args=_json(tc["args"]), id=tc.get("id"), index=i)
                for i, tc in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)


@contextmanager
def capture_events() -> Iterator[list[LlmUsageEvent]]:
    """Collect, in memory, every `llm_usage` event written while the block runs.

    Events are collected from every tracked agent, `tracking()` block and
    `UsageCallbackHandler` in the process, in the order they were written, also
    when the tracking was given no log (``track_usage(agent, None)``)::

        with capture_events() as events:
            agent.invoke(inputs)
        assert events[0]["input_tokens"] == 100
    """
    collected: list[LlmUsageEvent] = []
    captures.append(collected)
    try:
        yield collected
    finally:
        # By identity: list.remove would take the first *equal* list (nested captures).
        for i, found in enumerate(captures):
            if found is collected:
                del captures[i]
                break


def _json(args: dict[str, Any]) -> str:
    import json

    return json.dumps(args)
