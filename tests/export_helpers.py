"""Shared by the exporter tests: a two-model event, a loopback receiver, a dead collector."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
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


# OTLP/HTTP path -> the request message posted there.
_OTLP: dict[str, Any] = {
    "/v1/metrics": ExportMetricsServiceRequest,
    "/v1/traces": ExportTraceServiceRequest,
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
    """A local receiver for both wires: PostHog `/batch/` JSON and OTLP/HTTP protobuf.

    `posts` holds the PostHog batches as posted (`events` their generations),
    `requests` the decoded OTLP requests by path (`spans` their spans),
    `attempts` every POST. The first `fail_first` posts are answered 503.
    """

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.requests: dict[str, list[Any]] = {path: [] for path in _OTLP}
        self.attempts = 0
        self.fail_first = fail_first
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                capture.attempts += 1
                if capture.attempts <= capture.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/batch/":
                    capture.posts.append(json.loads(body))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"status": 1}')
                    return
                assert self.path in _OTLP, self.path
                message = _OTLP[self.path]()
                message.ParseFromString(body)
                capture.requests[self.path].append(message)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    @property
    def events(self) -> list[dict[str, Any]]:
        """The PostHog events received, in order."""
        return [e for post in self.posts for e in post["batch"]]

    @property
    def spans(self) -> list[Any]:
        """The OTLP spans received, in order."""
        return [
            s
            for request in self.requests["/v1/traces"]
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]

    def span_invoke_ids(self) -> list[str]:
        """The `agent_usage.invoke_id` of every span received."""
        return [
            next(a.value.string_value for a in s.attributes if a.key == "agent_usage.invoke_id")
            for s in self.spans
        ]
