"""A loopback fake of Amazon Bedrock Runtime's Converse and ConverseStream APIs.

langchain-aws's `ChatBedrockConverse` talks to it through boto3 (give it
`endpoint_url=server.url` and dummy credentials), so the request is signed,
sent and parsed by botocore exactly as against AWS.

Wire format (Bedrock Runtime API reference, botocore's `bedrock-runtime` model):

- `POST /model/{modelId}/converse` answers JSON: `output.message.content` blocks
  (`text`, `toolUse`), `stopReason`, `metrics`, and `usage` with `inputTokens`
  (EXCLUDING cache reads and writes), `outputTokens`, `totalTokens`,
  `cacheReadInputTokens`, `cacheWriteInputTokens` and `cacheDetails`, the writes
  split by TTL: `[{"ttl": "1h", "inputTokens": n}, {"ttl": "5m", ...}]`.
- `POST /model/{modelId}/converse-stream` answers `application/vnd.amazon.eventstream`:
  binary AWS event-stream messages (see `event_message`), one per event:
  `messageStart`, `contentBlockStart` / `contentBlockDelta` / `contentBlockStop`,
  `messageStop`, then `metadata` carrying the same `usage` object.
- Errors: the HTTP status, an `x-amzn-ErrorType` header naming the exception
  and a JSON body with `message`.

`Reply.usage` is the Bedrock `usage` object as sent. `Reply.model` is unused:
Bedrock does not echo a model name, the integration reports the model id asked for.
"""

from __future__ import annotations

import binascii
import json
import re
import struct
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import unquote

from .servers import FakeServer, Reply, _Response

__all__ = ["BedrockServer", "event_message"]

# AWS event-stream header value type 7: a UTF-8 string with a 2-byte length.
_STRING = 7
# HTTP status -> the exception name botocore maps it to.
_ERRORS = {
    400: "ValidationException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_PATH = re.compile(r"/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream)")


def event_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one AWS event-stream message (the framing botocore's parser checks).

    Layout: a 12-byte prelude (total length, headers length, both big-endian
    uint32, then the CRC32 of those 8 bytes), the headers (name length byte,
    name, value type byte, value length uint16, value), the payload, and the
    CRC32 of everything before it.
    """
    encoded = b"".join(
        struct.pack("!B", len(name))
        + name.encode()
        + struct.pack("!BH", _STRING, len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    head = prelude + struct.pack("!I", binascii.crc32(prelude)) + encoded + payload
    return head + struct.pack("!I", binascii.crc32(head))


def _event(kind: str, body: Mapping[str, Any]) -> bytes:
    headers = {
        ":event-type": kind,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return event_message(headers, json.dumps(body).encode())


class BedrockServer(FakeServer):
    """Bedrock Runtime Converse / ConverseStream. Endpoint: `server.url`.

    `requests` records each body with the model id and the operation from the
    path under "modelId" and "operation" ("converse" or "converse-stream").
    """

    routes: ClassVar[Mapping[str, str]] = {
        "/converse": "_converse",
        "/converse-stream": "_converse_stream",
    }

    @property
    def url(self) -> str:
        """The `endpoint_url` to give `ChatBedrockConverse`."""
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, path: str, body: dict[str, Any]) -> _Response:
        # The model id is part of the path; route on the operation alone.
        match = _PATH.fullmatch(path.split("?", 1)[0])
        if match is None:
            return super()._answer(path, body)
        body = {**body, "modelId": unquote(match["model"]), "operation": match["op"]}
        return super()._answer("/" + match["op"], body)

    def _error(self, status: int, message: str) -> _Response:
        kind = _ERRORS.get(status, "InternalServerException")
        return _Response(
            status,
            "application/json",
            json.dumps({"message": message}).encode(),
            headers={"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/"},
        )

    @staticmethod
    def _stop(reply: Reply) -> str:
        return "tool_use" if reply.tool_calls else "end_turn"

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        return dict(reply.usage or {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0})

    def _converse(self, body: dict[str, Any], reply: Reply) -> _Response:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"text": reply.text})
        content.extend(
            {"toolUse": {"toolUseId": tc.id, "name": tc.name, "input": dict(tc.args)}}
            for tc in reply.tool_calls
        )
        response = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self._stop(reply),
            "usage": self._usage(reply),
            "metrics": {"latencyMs": 42},
        }
        return _Response(200, "application/json", json.dumps(response).encode())

    def _converse_stream(self, body: dict[str, Any], reply: Reply) -> _Response:
        return _Response(200, "application/vnd.amazon.eventstream", self._events(reply))

    def _events(self, reply: Reply) -> Iterator[bytes]:
        yield _event("messageStart", {"role": "assistant"})
        index = 0
        if reply.text:
            for piece in re.split(r"(?<= )", reply.text):
                delta = {"contentBlockIndex": index, "delta": {"text": piece}}
                yield _event("contentBlockDelta", delta)
            yield _event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        for tc in reply.tool_calls:
            start = {"toolUse": {"toolUseId": tc.id, "name": tc.name}}
            yield _event("contentBlockStart", {"contentBlockIndex": index, "start": start})
            delta = {"toolUse": {"input": json.dumps(dict(tc.args))}}
            yield _event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
            yield _event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        yield _event("messageStop", {"stopReason": self._stop(reply)})
        yield _event("metadata", {"usage": self._usage(reply), "metrics": {"latencyMs": 42}})
