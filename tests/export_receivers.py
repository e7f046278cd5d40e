"""Local receivers for the exporter tests: both wires on loopback, and a collector that is down."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["Capture", "black_hole", "closed_port"]


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
