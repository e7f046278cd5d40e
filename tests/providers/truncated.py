"""Provider fakes whose streams break part-way, as a dropped connection does.

`TruncatedAnthropicServer` sends the first `keep` SSE events of an Anthropic
Messages stream (its `message_start` carries the full input-side usage) and then
closes the connection, with no `message_delta` or `message_stop`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from .servers import AnthropicServer, Reply

__all__ = ["TruncatedAnthropicServer"]


class TruncatedAnthropicServer(AnthropicServer):
    """Anthropic Messages API whose streams stop after `keep` events."""

    def __init__(self, keep: int = 4) -> None:
        super().__init__()
        self.keep = keep

    def _stream(
        self, reply: Reply, model: str, stop: str, usage: dict[str, Any]
    ) -> Iterator[bytes]:
        return itertools.islice(super()._stream(reply, model, stop, usage), self.keep)
