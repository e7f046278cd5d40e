"""A loopback fake of the Gemini API's generateContent and streamGenerateContent.

langchain-google-genai's `ChatGoogleGenerativeAI` talks to it through the
google-genai client (give it `base_url=server.url` and any API key).

Wire format (Gemini API reference, `GenerateContentResponse`):

- `POST /v1/models/{model}:generateContent` (or /v1beta/) answers JSON:
  `candidates[0].content.parts` (`text`, `functionCall`), `finishReason`,
  `modelVersion`, and `usageMetadata` with `promptTokenCount` (INCLUDING cached
  content), `cachedContentTokenCount`, `candidatesTokenCount` (EXCLUDING
  thoughts), `thoughtsTokenCount` and `totalTokenCount` (prompt + candidates +
  thoughts).
- `POST /v1/models/{model}:streamGenerateContent?alt=sse` answers SSE, one
  `data: {GenerateContentResponse}` per chunk. Every chunk carries the usage so
  far, cumulative, as Gemini does: the prompt side and the thoughts in full from
  the first chunk, `candidatesTokenCount` growing until the last chunk holds the
  final count. The integration subtracts consecutive counts; their sum must
  equal the last.
- Errors: `{"error": {"code", "message", "status"}}` with the HTTP status.

`Reply.usage` is the final `usageMetadata` as sent; `Reply.model` the `modelVersion`.
A `GeminiReply` can also send the Gemini 2.0 quirk: a higher `promptTokenCount`
on the chunks before the last one, whose lower count is the true one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .servers import FakeServer, Reply, _Response

__all__ = ["GeminiReply", "GeminiServer"]

_PATH = re.compile(
    r"/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<op>generateContent|streamGenerateContent)"
)
_STATUS = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


@dataclass(frozen=True)
class GeminiReply(Reply):
    """A `Reply` whose stream reports `early_prompt_tokens` on every chunk but the last."""

    early_prompt_tokens: int | None = None


class GeminiServer(FakeServer):
    """Gemini API generateContent / streamGenerateContent. Base URL: `server.url`.

    `requests` records each body with the model and the method from the path
    under "model" and "method" ("generateContent" or "streamGenerateContent").
    """

    routes: ClassVar[Mapping[str, str]] = {
        "/generateContent": "_generate",
        "/streamGenerateContent": "_stream_generate",
    }

    @property
    def url(self) -> str:
        """The `base_url` to give `ChatGoogleGenerativeAI`."""
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, path: str, body: dict[str, Any]) -> _Response:
        # The model is part of the path; route on the method alone.
        match = _PATH.fullmatch(path.split("?", 1)[0])
        if match is None:
            return super()._answer(path, body)
        body = {**body, "model": match["model"], "method": match["op"]}
        return super()._answer("/" + match["op"], body)

    def _error(self, status: int, message: str) -> _Response:
        error = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
        return _Response(status, "application/json", json.dumps({"error": error}).encode())

    @staticmethod
    def _response(
        body: Mapping[str, Any],
        reply: Reply,
        parts: list[dict[str, Any]],
        usage: Mapping[str, Any] | None,
        finish: bool,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = "STOP"
        response: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": reply.model or body["model"],
            "responseId": "resp-fake",
        }
        if usage is not None:
            response["usageMetadata"] = dict(usage)
        return response

    @staticmethod
    def _parts(reply: Reply) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if reply.text:
            parts.append({"text": reply.text})
        parts.extend(
            {"functionCall": {"id": tc.id, "name": tc.name, "args": dict(tc.args)}}
            for tc in reply.tool_calls
        )
        return parts

    def _generate(self, body: dict[str, Any], reply: Reply) -> _Response:
        response = self._response(body, reply, self._parts(reply), reply.usage, finish=True)
        return _Response(200, "application/json", json.dumps(response).encode())

    def _stream_generate(self, body: dict[str, Any], reply: Reply) -> _Response:
        return _Response(200, "text/event-stream", self._chunks(body, reply))

    def _chunks(self, body: dict[str, Any], reply: Reply) -> Iterator[bytes]:
        pieces: list[list[dict[str, Any]]] = [
            [{"text": piece}] for piece in re.split(r"(?<= )", reply.text) if reply.text
        ]
        if reply.tool_calls:
            pieces.append(self._parts(Reply(tool_calls=reply.tool_calls)))
        pieces = pieces or [[{"text": ""}]]
        final = reply.usage
        early = reply.early_prompt_tokens if isinstance(reply, GeminiReply) else None
        for i, parts in enumerate(pieces, start=1):
            usage = None if final is None else _cumulative(final, i, len(pieces), early)
            response = self._response(body, reply, parts, usage, finish=i == len(pieces))
            yield b"data: " + json.dumps(response).encode() + b"\r\n\r\n"


def _cumulative(
    final: Mapping[str, Any], i: int, n: int, early_prompt: int | None
) -> dict[str, Any]:
    """The usage Gemini reports after chunk `i` of `n`: candidates so far, the rest in full."""
    usage = dict(final)
    if i < n:
        if early_prompt is not None:
            usage["promptTokenCount"] = early_prompt
        usage["candidatesTokenCount"] = final.get("candidatesTokenCount", 0) * i // n
        usage["totalTokenCount"] = (
            usage.get("promptTokenCount", 0)
            + usage["candidatesTokenCount"]
            + final.get("thoughtsTokenCount", 0)
        )
    return usage
