"""Loopback fakes of the OpenAI and Anthropic HTTP APIs with scripted usage.

The real integration packages (langchain-openai, langchain-anthropic) talk to
these through their own SDKs, so a test sees exactly what a user would: the
provider's wire format parsed by the integration, then our accounting. Each
server answers requests in order from a script of `Reply`s and records the
request bodies it was sent.

Wire formats follow the providers' API references:

- OpenAI Chat Completions (`POST /v1/chat/completions`): `usage` carries
  `prompt_tokens` (cached included), `completion_tokens` (reasoning included),
  `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`;
  the response echoes `service_tier`. Streaming sends `data: {chunk}` lines; with
  `stream_options.include_usage` every chunk has `"usage": null` and one last
  chunk with no choices carries the usage; then `data: [DONE]`.
- OpenAI Responses (`POST /v1/responses`): `usage` carries `input_tokens`,
  `input_tokens_details.cached_tokens`, `output_tokens`,
  `output_tokens_details.reasoning_tokens`; streaming ends with `response.completed`.
  Replies are scripted in the Chat Completions usage shape and converted.
- Anthropic Messages (`POST /v1/messages`): `usage.input_tokens` EXCLUDES cache
  reads and writes; `cache_creation` splits writes by TTL. Streaming sends the
  full usage in `message_start` (output_tokens 1) and the cumulative counts in
  `message_delta` (no TTL split there, as in the SDK's `MessageDeltaUsage`); a
  stream can break after that with an `error` event, as an overloaded API does.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from typing_extensions import Self

__all__ = ["AnthropicServer", "FakeServer", "OpenAIServer", "Reply", "ToolCall"]

_CREATED = 1_763_856_000  # a fixed timestamp keeps responses deterministic


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model makes in a scripted reply."""

    name: str
    args: Mapping[str, Any]
    id: str


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    Args:
        text: the answer text (split on spaces into stream deltas).
        tool_calls: tool calls the model makes.
        usage: the provider's own `usage` object, exactly as it would bill it;
            None sends a response without usage.
        model: the model name the response reports (default: the one requested).
        service_tier: OpenAI: the tier the response reports (default: the one
            requested, "default" when none or "auto").
        status: an HTTP error status to answer with instead of a completion.
        break_stream: Anthropic streaming: send an `error` event (overloaded)
            right after `message_delta` delivered the usage, instead of
            `message_stop`: the provider billed the call, the client sees a failure.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Mapping[str, Any] | None = None
    model: str | None = None
    service_tier: str | None = None
    status: int = 200
    break_stream: bool = False


@dataclass
class _Response:
    status: int
    content_type: str
    body: bytes | Iterable[bytes]
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) answering from a script.

    Use as a context manager, or call `close()`; `script()` queues replies,
    `requests` holds the JSON bodies received, in order.
    """

    # request path -> name of the method that renders the reply
    routes: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one response per connection, and a stream ends when we
            # close it, so no chunked encoding is needed.
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                response = server._answer(self.path, body)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if isinstance(response.body, bytes):
                    self.send_header("Content-Length", str(len(response.body)))
                    self.end_headers()
                    self.wfile.write(response.body)
                    return
                self.end_headers()
                for piece in response.body:
                    self.wfile.write(piece)
                    self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The ephemeral port the server listens on."""
        return int(self._httpd.server_address[1])

    def script(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        """Forget queued replies and recorded requests (one server serves many tests)."""
        with self._lock:
            self._replies.clear()
            self.requests.clear()

    @property
    def pending(self) -> int:
        """Replies not yet taken."""
        return len(self._replies)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self, path: str, body: dict[str, Any]) -> _Response:
        with self._lock:
            self.requests.append(body)
            reply = self._replies.popleft() if self._replies else None
        route = self.routes.get(path.split("?", 1)[0])
        if route is None:
            return self._error(404, f"fake server: no route {path}")
        if reply is None:
            # Loud, and distinct from a scripted 500: the test scripted too few replies.
            return self._error(418, "fake server: script exhausted")
        if reply.status != 200:
            return self._error(reply.status, "scripted failure")
        render = getattr(self, route)
        response: _Response = render(body, reply)
        return response

    def _error(self, status: int, message: str) -> _Response:
        raise NotImplementedError


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _words(text: str) -> list[str]:
    """Stream pieces that join back to `text` exactly."""
    parts = text.split(" ")
    return [p if i == len(parts) - 1 else p + " " for i, p in enumerate(parts) if p or i == 0]


class OpenAIServer(FakeServer):
    """OpenAI Chat Completions and Responses API. Base URL: `server.url` (ends in /v1)."""

    routes: ClassVar[Mapping[str, str]] = {
        "/v1/chat/completions": "_chat",
        "/v1/responses": "_responses",
    }

    @property
    def url(self) -> str:
        """The `base_url` to give `ChatOpenAI`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _error(self, status: int, message: str) -> _Response:
        body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
        return _Response(status, "application/json", _json(body))

    @staticmethod
    def _tier(body: Mapping[str, Any], reply: Reply) -> str:
        requested = body.get("service_tier")
        if reply.service_tier:
            return reply.service_tier
        return "default" if requested in (None, "auto") else str(requested)

    # -- Chat Completions ---------------------------------------------------

    def _chat(self, body: dict[str, Any], reply: Reply) -> _Response:
        model = reply.model or body.get("model", "gpt-test")
        tier = self._tier(body, reply)
        finish = "tool_calls" if reply.tool_calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": reply.text or None,
                "refusal": None,
            }
            if reply.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": tc.id,
                        "type": "function",
                        "function": {"name": tc.name, "arguments": json.dumps(tc.args)},
                    }
                    for tc in reply.tool_calls
                ]
            completion: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": _CREATED,
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "service_tier": tier,
                "system_fingerprint": "fp_fake",
            }
            if reply.usage is not None:
                completion["usage"] = dict(reply.usage)
            return _Response(200, "application/json", _json(completion))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _Response(
            200, "text/event-stream", self._chat_stream(reply, model, tier, finish, include_usage)
        )

    @staticmethod
    def _chat_stream(
        reply: Reply, model: str, tier: str, finish: str, include_usage: bool
    ) -> Iterator[bytes]:
        def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": model,
                "service_tier": tier,
                "system_fingerprint": "fp_fake",
                "choices": []
                if delta is None
                else [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                # The real API sends "usage": null on every chunk but the last.
                data["usage"] = dict(reply.usage or {}) if delta is None else None
            return b"data: " + _json(data) + b"\n\n"

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        if reply.text:
            for piece in _words(reply.text):
                yield chunk({"content": piece})
        for i, tc in enumerate(reply.tool_calls):
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": tc.id,
                            "type": "function",
                            "function": {"name": tc.name, "arguments": ""},
                        }
                    ]
                }
            )
            yield chunk(
                {"tool_calls": [{"index": i, "function": {"arguments": json.dumps(tc.args)}}]}
            )
        yield chunk({}, finish)
        if include_usage and reply.usage is not None:
            yield chunk(None)
        yield b"data: [DONE]\n\n"

    # -- Responses API ------------------------------------------------------

    @staticmethod
    def _responses_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
        """Chat Completions usage -> the Responses API's names for the same counts."""
        prompt = usage.get("prompt_tokens_details") or {}
        completion = usage.get("completion_tokens_details") or {}
        input_details = {"cached_tokens": prompt.get("cached_tokens", 0)}
        if "cache_write_tokens" in prompt:
            input_details["cache_write_tokens"] = prompt["cache_write_tokens"]
        return {
            "input_tokens": usage.get("prompt_tokens", 0),
            "input_tokens_details": input_details,
            "output_tokens": usage.get("completion_tokens", 0),
            "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens", 0)},
            "total_tokens": usage.get("total_tokens", 0),
        }

    def _responses(self, body: dict[str, Any], reply: Reply) -> _Response:
        model = reply.model or body.get("model", "gpt-test")
        output: list[dict[str, Any]] = []
        if reply.text:
            output.append(
                {
                    "type": "message",
                    "id": "msg_fake",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                }
            )
        output.extend(
            {
                "type": "function_call",
                "id": f"fc_{tc.id}",
                "call_id": tc.id,
                "name": tc.name,
                "arguments": json.dumps(tc.args),
                "status": "completed",
            }
            for tc in reply.tool_calls
        )
        response: dict[str, Any] = {
            "id": "resp_fake",
            "object": "response",
            "created_at": _CREATED,
            "status": "completed",
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "service_tier": self._tier(body, reply),
            "usage": None if reply.usage is None else self._responses_usage(reply.usage),
        }
        if not body.get("stream"):
            return _Response(200, "application/json", _json(response))
        return _Response(200, "text/event-stream", self._responses_stream(response))

    @staticmethod
    def _responses_stream(response: dict[str, Any]) -> Iterator[bytes]:
        seq = iter(range(1_000_000))

        def event(kind: str, **data: Any) -> bytes:
            payload = {"type": kind, "sequence_number": next(seq), **data}
            return f"event: {kind}\ndata: ".encode() + _json(payload) + b"\n\n"

        started = {**response, "status": "in_progress", "output": [], "usage": None}
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        for index, item in enumerate(response["output"]):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                yield event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                part = {"type": "output_text", "text": "", "annotations": []}
                yield event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                )
                for piece in _words(text):
                    yield event(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        delta=piece,
                        logprobs=[],
                    )
                yield event(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=text,
                    logprobs=[],
                )
                yield event(
                    "response.content_part.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part={**part, "text": text},
                )
            else:
                yield event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
                yield event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=item["arguments"],
                )
                yield event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
            yield event("response.output_item.done", output_index=index, item=item)
        yield event("response.completed", response=response)


class AnthropicServer(FakeServer):
    """Anthropic Messages API. Base URL: `server.url` (the SDK adds /v1/messages)."""

    routes: ClassVar[Mapping[str, str]] = {"/v1/messages": "_messages"}

    @property
    def url(self) -> str:
        """The `base_url` to give `ChatAnthropic`."""
        return f"http://127.0.0.1:{self.port}"

    def _error(self, status: int, message: str) -> _Response:
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return _Response(status, "application/json", _json(body))

    @staticmethod
    def _content(reply: Reply) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content.extend(
            {"type": "tool_use", "id": tc.id, "name": tc.name, "input": dict(tc.args)}
            for tc in reply.tool_calls
        )
        return content

    def _messages(self, body: dict[str, Any], reply: Reply) -> _Response:
        model = reply.model or body.get("model", "claude-test")
        stop = "tool_use" if reply.tool_calls else "end_turn"
        usage = dict(reply.usage or {"input_tokens": 0, "output_tokens": 0})
        if not body.get("stream"):
            message = {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": self._content(reply),
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
            return _Response(200, "application/json", _json(message))
        return _Response(200, "text/event-stream", self._stream(reply, model, stop, usage))

    def _stream(
        self, reply: Reply, model: str, stop: str, usage: dict[str, Any]
    ) -> Iterator[bytes]:
        def event(kind: str, **data: Any) -> bytes:
            return f"event: {kind}\ndata: ".encode() + _json({"type": kind, **data}) + b"\n\n"

        # message_start: the input side in full, output_tokens still tiny.
        start_usage = {**usage, "output_tokens": min(1, usage.get("output_tokens", 0))}
        yield event(
            "message_start",
            message={
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        )
        yield event("ping")
        for index, block in enumerate(self._content(reply)):
            if block["type"] == "text":
                yield event(
                    "content_block_start", index=index, content_block={"type": "text", "text": ""}
                )
                for piece in _words(block["text"]):
                    yield event(
                        "content_block_delta",
                        index=index,
                        delta={"type": "text_delta", "text": piece},
                    )
            else:
                yield event(
                    "content_block_start", index=index, content_block={**block, "input": {}}
                )
                yield event(
                    "content_block_delta",
                    index=index,
                    delta={"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                )
            yield event("content_block_stop", index=index)
        # message_delta: cumulative counts, without the TTL split (MessageDeltaUsage).
        delta_usage = {
            key: usage[key]
            for key in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "output_tokens",
                "output_tokens_details",
            )
            if key in usage
        }
        yield event(
            "message_delta",
            delta={"stop_reason": stop, "stop_sequence": None},
            usage=delta_usage,
        )
        if reply.break_stream:
            yield event("error", error={"type": "overloaded_error", "message": "Overloaded"})
            return
        yield event("message_stop")
