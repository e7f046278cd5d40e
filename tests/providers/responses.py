"""The OpenAI Responses API as reasoning models answer it: a reasoning item before the answer.

`ReasoningOpenAIServer` is `OpenAIServer` whose Responses API replies (JSON and
SSE) start with a `reasoning` output item carrying a summary, as gpt-5 and the
o-series send when asked for `reasoning.summary`. Streaming, that item arrives
as `response.output_item.added`, `response.reasoning_summary_part.added`,
`response.reasoning_summary_text.delta`... before the message's events, which
shift one `output_index` up; `response.completed` lists it first in `output`.
The usage is the scripted one, unchanged (reasoning tokens are in `usage`, not
in the item).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from .servers import OpenAIServer, Reply, _Response, _words

__all__ = ["SUMMARY", "ReasoningOpenAIServer"]

SUMMARY = "Adding two and three gives five."  # the reasoning summary every reply carries


def _reasoning_item(text: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": "rs_fake",
        "summary": [{"type": "summary_text", "text": text}],
        "status": "completed",
    }


class ReasoningOpenAIServer(OpenAIServer):
    """OpenAI Responses API replies led by a reasoning item with a summary."""

    def _responses(self, body: dict[str, Any], reply: Reply) -> _Response:
        plain = super()._responses(body, reply)
        if isinstance(plain.body, bytes):
            response = json.loads(plain.body)
            response["output"].insert(0, _reasoning_item(SUMMARY))
            return _Response(200, plain.content_type, json.dumps(response).encode())
        return _Response(200, plain.content_type, self._with_reasoning(plain.body))

    @staticmethod
    def _with_reasoning(events: Iterable[bytes]) -> Iterator[bytes]:
        seq = iter(range(1_000_000))

        def event(kind: str, **data: Any) -> bytes:
            payload = {"type": kind, "sequence_number": next(seq), **data}
            return f"event: {kind}\ndata: ".encode() + json.dumps(payload).encode() + b"\n\n"

        item = _reasoning_item(SUMMARY)
        where = {"item_id": item["id"], "output_index": 0, "summary_index": 0}
        for raw in events:
            kind, _, data = raw.partition(b"\ndata: ")
            payload = json.loads(data)
            name = kind.decode().removeprefix("event: ")
            if name == "response.output_item.added" and payload["output_index"] == 0:
                # The reasoning item streams first, before the answer's first item.
                yield event(name, output_index=0, item={**item, "summary": []})
                part = {"type": "summary_text", "text": ""}
                yield event("response.reasoning_summary_part.added", **where, part=part)
                for piece in _words(SUMMARY):
                    yield event("response.reasoning_summary_text.delta", **where, delta=piece)
                yield event("response.reasoning_summary_text.done", **where, text=SUMMARY)
                done = {**part, "text": SUMMARY}
                yield event("response.reasoning_summary_part.done", **where, part=done)
                yield event("response.output_item.done", output_index=0, item=item)
            if "output_index" in payload:
                payload["output_index"] += 1
            if name == "response.completed":
                payload["response"]["output"].insert(0, item)
            payload.pop("sequence_number", None)
            payload.pop("type", None)
            yield event(name, **payload)
