"""PostHog exporter: `llm_usage` events as PostHog LLM-analytics `$ai_generation` events.

Install with ``pip install 'langchain-agent-usage[posthog]'``. Events go through the real
`posthog` client: its queue, batching, gzip, retries and fork handling are the
only ones on this path.

One `$ai_generation` per model in the event's `models` breakdown (one event when
one model answered): PostHog prices and groups generations by `$ai_model`, so a
"mixed" event could be neither priced nor broken down. All generations of an
invoke share `$ai_trace_id` (the invoke id), so PostHog shows them as one trace.
Each carries the invoke's latency (`$ai_latency`, seconds): we do not know
per-model wall time.

Token convention: our `input_tokens` includes cache reads and cache writes
(LangChain's contract). PostHog reads `$ai_input_tokens` the same way except
for Anthropic models (provider ``anthropic``, or a model name containing
``anthropic`` or starting with ``claude``, e.g. on Bedrock or Vertex), where it
expects the Anthropic API's convention: input WITHOUT cache reads and writes,
which it adds back from `$ai_cache_read_input_tokens` /
`$ai_cache_creation_input_tokens` when pricing. We subtract them for those
models, with the same rule, so PostHog's token totals and costs come out right.
Cache and reasoning keys are sent only when non-zero.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._extras import missing_extra
from ._common import Counters, models_of, positive_int, within

__all__ = ["PostHogExporter", "generation_properties", "is_anthropic"]

# Namespace of the deterministic `$ai_generation` uuids: a replayed event keeps
# its uuid, so a back-fill sent twice is de-duplicated by PostHog.
_UUID_NAMESPACE: Final = uuid.UUID("6f1c1b52-3a63-4f3e-9a1e-7c1b9d2f4a10")

_DETAILS: Final = (
    ("cache_read_input_tokens", "$ai_cache_read_input_tokens"),
    ("cache_creation_input_tokens", "$ai_cache_creation_input_tokens"),
    ("reasoning_tokens", "$ai_reasoning_tokens"),
)


def is_anthropic(provider: str | None, model: str | None) -> bool:
    """Whether PostHog treats this model's `$ai_input_tokens` as exclusive of cache tokens.

    The same rule as PostHog's ingestion and its LangChain callback: provider
    ``anthropic``, or a model name containing ``anthropic`` or starting with ``claude``.
    """
    if provider and provider.lower() == "anthropic":
        return True
    name = (model or "").lower()
    return "anthropic" in name or name.startswith("claude")


def generation_properties(event: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The `$ai_generation` events for one `llm_usage` event: (model, properties) pairs."""
    status = str(event.get("status") or "ok")
    common: dict[str, Any] = {}
    metadata = event.get("metadata")
    if isinstance(metadata, Mapping):
        # The user's labels, as plain properties; `$` keys are PostHog's.
        common.update({str(k): v for k, v in metadata.items() if not str(k).startswith("$")})
    common["$ai_trace_id"] = str(event.get("invoke_id") or event.get("event_id") or "")
    if event.get("session_id") is not None:
        common["$ai_session_id"] = str(event["session_id"])
    duration = event.get("duration_ms")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        common["$ai_latency"] = duration / 1000.0
    common["$ai_is_error"] = status == "error"
    common["agent_usage_status"] = status
    if event.get("event_id"):
        common["agent_usage_event_id"] = str(event["event_id"])

    out: list[tuple[str, dict[str, Any]]] = []
    for model, row in models_of(event).items():
        provider = row.get("provider")
        provider = provider if isinstance(provider, str) else None
        props = dict(common)
        props["$ai_model"] = model
        if provider:
            props["$ai_provider"] = provider
        input_tokens = positive_int(row, "input_tokens")
        cache_read = positive_int(row, "cache_read_input_tokens")
        cache_creation = positive_int(row, "cache_creation_input_tokens")
        if is_anthropic(provider, model):
            input_tokens = max(0, input_tokens - cache_read - cache_creation)
        props["$ai_input_tokens"] = input_tokens
        props["$ai_output_tokens"] = positive_int(row, "output_tokens")
        for key, prop in _DETAILS:
            value = positive_int(row, key)
            if value:
                props[prop] = value
        one_hour = positive_int(row, "cache_creation_1h_input_tokens")
        if one_hour and cache_creation >= one_hour:
            props["$ai_cache_creation_1h_input_tokens"] = one_hour
            props["$ai_cache_creation_5m_input_tokens"] = cache_creation - one_hour
        cost = row.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            props["$ai_total_cost_usd"] = float(cost)
        props["agent_usage_llm_calls"] = positive_int(row, "llm_calls")
        out.append((model, props))
    return out


class PostHogExporter:
    """Sends `llm_usage` events to PostHog as `$ai_generation` events.

    Pass it to `track_usage(..., exporters=[exporter])` or `UsageCallbackHandler`.
    `export` hands each generation to the posthog client's queue on the calling
    thread; the client batches, gzips and posts on its own threads, retrying a
    failed post with exponential backoff (1 s, 2 s, 4 s ... capped at 30 s) up to
    `max_retries` times. Nothing waits on the network and nothing raises into
    the agent. The client is fork-aware: a child made by `fork()` gets its own
    queue and threads, and this exporter's counts start again at 0 there.

    `stats` counts `$ai_generation` events: `handed` to the client, `sent` (the
    endpoint took them), `failed` (still failing after the retries), `dropped`
    (the client refused them: queue full or shut down), `pending` (queued or in
    flight). With a `client` you pass, delivery is only visible to it: `sent`,
    `failed` and `pending` are then None.

    Args:
        api_key: the project API key (not needed when `client` is given).
        host: PostHog host URL, e.g. your instance or ``http://127.0.0.1:8000``.
        client: a configured `posthog.Client` to use instead (shared: `shutdown`
            only flushes it).
        distinct_id_key: the metadata key holding the distinct id; else the
            session id; else the invoke id, sent as a personless event.
        max_retries: retries of a failed post by the posthog client.
        gzip: compress posts.
        historical_migration: mark events as historical (for back-fills).
        client_options: more keyword arguments for `posthog.Client`.

    Raises:
        ImportError: the `posthog` extra is not installed.
        ValueError: neither `api_key` nor `client` given.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        host: str | None = None,
        client: Any = None,
        distinct_id_key: str = "user_id",
        max_retries: int = 6,
        gzip: bool = True,
        historical_migration: bool = False,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(distinct_id_key, str):
            raise TypeError(f"distinct_id_key must be a str; got {distinct_id_key!r}")
        self._counters = Counters(type(self).__name__)
        self._closed = False
        if client is None:
            if not api_key or not isinstance(api_key, str):
                raise ValueError(f"PostHogExporter needs api_key or client; got {api_key!r}")
            if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
                raise ValueError(f"max_retries must be an int >= 0; got {max_retries!r}")
            try:
                from posthog.client import Client
            except ImportError as exc:
                raise missing_extra("PostHogExporter", "posthog", exc) from None
            options: dict[str, Any] = {
                "host": host,
                "max_retries": max_retries,
                "gzip": gzip,
                "historical_migration": historical_migration,
                "on_error": self._on_error,
                **(client_options or {}),
            }
            client = Client(api_key, **options)
            self._owns_client = True
        else:
            if not callable(getattr(client, "capture", None)):
                raise TypeError(f"client must be a posthog.Client; got {client!r}")
            self._owns_client = False
        self.client = client
        self.distinct_id_key = distinct_id_key

    # -- the agent's side: any thread, never blocks, never raises ----------------

    def export(self, event: Mapping[str, Any]) -> None:
        """Hand one `llm_usage` event's `$ai_generation` events to the posthog client."""
        try:
            generations = generation_properties(event)
            distinct_id, person = self._distinct_id(event)
        except Exception as exc:  # exporters never break the agent
            self._counters.lost(f"mapping an event ({type(exc).__name__})", exc, dropped=1)
            return
        if self._closed:
            self._counters.lost("exporting after shutdown", dropped=len(generations))
            return
        event_id = str(event.get("event_id") or event.get("invoke_id") or "")
        for model, props in generations:
            if not person:
                props["$process_person_profile"] = False
            try:
                queued = self.client.capture(
                    "$ai_generation",
                    distinct_id=distinct_id,
                    properties=props,
                    timestamp=event.get("timestamp"),
                    uuid=str(uuid.uuid5(_UUID_NAMESPACE, f"{event_id}/{model}")),
                )
            except Exception as exc:
                self._counters.lost(f"capturing ({type(exc).__name__})", exc, dropped=1)
                continue
            if queued is None:
                self._counters.lost(
                    "the posthog client refused it (queue full or shut down)", dropped=1
                )
            else:
                self._counters.add(handed=1)

    # -- the application's side --------------------------------------------------

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Post what the client holds; False if anything failed since the last flush or is
        still pending when `timeout` runs out."""
        client = self.client
        within(timeout, lambda: client.flush(timeout_seconds=timeout) or True, name="posthog-flush")
        return self._delivered_since_last_flush()

    def shutdown(self, timeout: float | None = 10.0) -> bool:
        """Flush and, for a client this exporter built, shut it down; within `timeout` in all.

        Later events are dropped and counted. Returns what `flush` would.
        """
        if self._closed:
            return True
        self._closed = True
        if not self._owns_client:
            return self.flush(timeout)
        # The client's shutdown drains without a deadline and may sit in a retry
        # backoff: give it `timeout`, then leave its daemon threads to the interpreter.
        client = self.client
        within(timeout, lambda: client.shutdown() or True, name="posthog-shutdown")
        return self._delivered_since_last_flush()

    @property
    def stats(self) -> dict[str, int | None]:
        """The counters: handed, sent, failed, dropped, pending (None where unknowable)."""
        c = self._counters
        if not self._owns_client:
            return {"handed": c.handed, "sent": None, "failed": None, "dropped": c.dropped}
        # The client calls on_error for a failed batch before marking it done, so
        # sent never counts an item that is still in flight or failed.
        pending = self._pending()
        return {
            "handed": c.handed,
            "sent": max(0, c.handed - c.failed - pending),
            "failed": c.failed,
            "dropped": c.dropped,
            "pending": pending,
        }

    @property
    def failures(self) -> dict[str, int]:
        """How many times each cause of loss happened."""
        return dict(self._counters.failures)

    # -- internals -------------------------------------------------------------------

    def _pending(self) -> int:
        # The client's queue counts an item unfinished until its post succeeded or
        # failed for good (`client.queue` is its documented analytics-lane queue).
        try:
            return int(self.client.queue.unfinished_tasks)
        except Exception:
            return 0

    def _delivered_since_last_flush(self) -> bool:
        nothing_failed = self._counters.nothing_failed_since_last_call()
        return nothing_failed and (not self._owns_client or not self._pending())

    def _on_error(self, exc: Exception, batch: Sequence[Any]) -> None:
        # Called by a posthog consumer thread once a batch failed for good.
        self._counters.lost(f"posting to PostHog ({type(exc).__name__})", exc, failed=len(batch))

    def _distinct_id(self, event: Mapping[str, Any]) -> tuple[str, bool]:
        metadata = event.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get(self.distinct_id_key) is not None:
            return str(metadata[self.distinct_id_key]), True
        if event.get("session_id") is not None:
            return str(event["session_id"]), True
        return str(event.get("invoke_id") or event.get("event_id") or "agent-usage"), False
