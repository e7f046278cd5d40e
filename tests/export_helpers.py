"""Shared by the exporter tests: a two-model event, loopback receivers, a collector that is down."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["EVENT", "Capture", "black_hole", "closed_port"]

# A two-model invoke with cache and reasoning tokens, one model priced.
EVENT: dict[str, Any] = {
    "type": "llm_usage",
    "schema": 1,
    "event_id": "e-1",
    "invoke_id": "inv-1",
    "timestamp": "2026-11-22T23:14:09.123456+00:00",
    "session_id": "sess-1",
    "model": "mixed",
    "status": "ok",
    "duration_ms": 1500.0,
    "input_tokens": 1300,
    "output_tokens": 260,
    "total_tokens": 1560,
    "cache_read_input_tokens": 600,
    "cache_creation_input_tokens": 200,
    "reasoning_tokens": 40,
    "llm_calls": 3,
    "llm_calls_without_usage": 0,
    "cost_usd": None,
    "models": {
        "claude-sonnet-4-5": {
            "provider": "anthropic",
            "input_tokens": 1000,
            "output_tokens": 200,
            "total_tokens": 1200,
            "cache_read_input_tokens": 600,
            "cache_creation_input_tokens": 200,
            "reasoning_tokens": 0,
            "llm_calls": 2,
            "cost_usd": 0.0123,
        },
        "gpt-5-mini": {
            "provider": "openai",
            "input_tokens": 300,
            "output_tokens": 60,
            "total_tokens": 360,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "reasoning_tokens": 40,
            "llm_calls": 1,
            "cost_usd": None,
        },
    },
    "metadata": {"user_id": "u-7", "app": "support"},
}


def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def black_hole() -> Iterator[str]:
    """The URL of a listening socket that never answers: a collector that hangs."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(128)  # connections complete in the kernel, then nothing is ever read
    try:
        yield f"http://127.0.0.1:{hole.getsockname()[1]}"
    finally:
        hole.close()


class Capture:
    """A local receiver for both wires: PostHog `/batch/` JSON and OTLP `/v1/traces` protobuf.

    `posthog` holds the generations, `spans` the decoded spans, `metric_posts`
    how many OTLP metric requests arrived.
    """

    def __init__(self) -> None:
        self.posthog: list[dict[str, Any]] = []
        self.spans: list[Any] = []
        self.metric_posts = 0
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/batch/":
                    capture.posthog.extend(json.loads(body)["batch"])
                elif self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            capture.spans.extend(ss.spans)
                elif self.path == "/v1/metrics":
                    capture.metric_posts += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def span_invoke_ids(self) -> list[str]:
        """The `agent_usage.invoke_id` of every span received."""
        return [
            next(a.value.string_value for a in s.attributes if a.key == "agent_usage.invoke_id")
            for s in self.spans
        ]
