"""The PostHog exporter: $ai_generation mapping, sent by the real client to a local receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from export_helpers import Capture

from agent_usage.exporters import PostHogExporter
from agent_usage.exporters.posthog import generation_properties

BASE: dict[str, Any] = {
    "type": "llm_usage",
    "schema": 1,
    "event_id": "e-1",
    "invoke_id": "inv-1",
    "timestamp": "2026-11-22T23:14:09.123456+00:00",
    "session_id": "sess-1",
    "status": "ok",
    "duration_ms": 2500.0,
    "metadata": {"user_id": "u-7", "app": "support"},
}


def event(models: dict[str, dict[str, Any]], **over: Any) -> dict[str, Any]:
    return {
        **BASE,
        "model": next(iter(models)) if len(models) == 1 else "mixed",
        "models": models,
        **over,
    }


def row(provider: str | None, inp: int, out: int, **details: Any) -> dict[str, Any]:
    r = {"provider": provider, "input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
    r.update(
        {"cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "reasoning_tokens": 0}
    )
    r.update({"llm_calls": 1, "cost_usd": None})
    r.update(details)
    return r


# (model, provider, our row) -> the token properties PostHog must receive
MAPPINGS = [
    (
        "claude-sonnet-4-5",
        row("anthropic", 1000, 200, cache_read_input_tokens=600, cache_creation_input_tokens=300),
        {
            "$ai_input_tokens": 100,  # Anthropic convention: input without cache reads/writes
            "$ai_output_tokens": 200,
            "$ai_cache_read_input_tokens": 600,
            "$ai_cache_creation_input_tokens": 300,
        },
    ),
    (
        "anthropic.claude-3-7-sonnet",
        row("amazon_bedrock", 500, 50, cache_read_input_tokens=400),
        {"$ai_input_tokens": 100, "$ai_output_tokens": 50, "$ai_cache_read_input_tokens": 400},
    ),
    (
        "claude-opus-4-1",
        row("google_vertexai", 300, 10, cache_creation_input_tokens=300),
        {"$ai_input_tokens": 0, "$ai_output_tokens": 10, "$ai_cache_creation_input_tokens": 300},
    ),
    (
        "gpt-5-mini",
        row("openai", 1000, 300, cache_read_input_tokens=600, reasoning_tokens=120),
        {
            "$ai_input_tokens": 1000,  # OpenAI convention: input includes cache reads (like ours)
            "$ai_output_tokens": 300,
            "$ai_cache_read_input_tokens": 600,
            "$ai_reasoning_tokens": 120,
        },
    ),
    (
        "gpt-4o",
        row("openai", 50, 5),
        {"$ai_input_tokens": 50, "$ai_output_tokens": 5},  # no zero cache/reasoning keys
    ),
    (
        "claude-haiku-4-5",
        row(
            "anthropic",
            1000,
            20,
            cache_creation_input_tokens=400,
            cache_creation_1h_input_tokens=100,
        ),
        {
            "$ai_input_tokens": 600,
            "$ai_output_tokens": 20,
            "$ai_cache_creation_input_tokens": 400,
            "$ai_cache_creation_1h_input_tokens": 100,
            "$ai_cache_creation_5m_input_tokens": 300,
        },
    ),
]
TOKEN_KEYS = {
    "$ai_input_tokens",
    "$ai_output_tokens",
    "$ai_cache_read_input_tokens",
    "$ai_cache_creation_input_tokens",
    "$ai_cache_creation_1h_input_tokens",
    "$ai_cache_creation_5m_input_tokens",
    "$ai_reasoning_tokens",
}


@pytest.mark.parametrize(
    ("model", "usage", "expected"), MAPPINGS, ids=[f"{m}-{r['provider']}" for m, r, _ in MAPPINGS]
)
def test_token_properties_follow_posthog_convention(
    model: str, usage: dict[str, Any], expected: dict[str, int]
) -> None:
    """Token properties use PostHog's per-provider input convention and omit zero details."""
    ((name, props),) = generation_properties(event({model: usage}))
    assert name == props["$ai_model"] == model
    assert {k: v for k, v in props.items() if k in TOKEN_KEYS} == expected


def test_common_properties() -> None:
    """Trace, session, latency, error, cost, provider and metadata properties."""
    ((_, props),) = generation_properties(
        event({"gpt-4o": row("openai", 50, 5, cost_usd=0.002, llm_calls=3)}, status="error")
    )
    assert {k: v for k, v in props.items() if k not in TOKEN_KEYS} == {
        "$ai_model": "gpt-4o",
        "$ai_provider": "openai",
        "$ai_trace_id": "inv-1",
        "$ai_session_id": "sess-1",
        "$ai_latency": 2.5,
        "$ai_is_error": True,
        "$ai_total_cost_usd": 0.002,
        "agent_usage_status": "error",
        "agent_usage_event_id": "e-1",
        "agent_usage_llm_calls": 3,
        "user_id": "u-7",
        "app": "support",
    }


def test_unknown_cost_is_left_for_posthog() -> None:
    """cost_usd null sends no $ai_total_cost_usd (PostHog prices it), never 0."""
    ((_, props),) = generation_properties(event({"gpt-4o": row("openai", 50, 5)}))
    assert "$ai_total_cost_usd" not in props


def test_one_generation_per_model_sharing_the_trace() -> None:
    """A two-model invoke is two $ai_generation events with one $ai_trace_id."""
    gens = generation_properties(
        event({"gpt-4o": row("openai", 50, 5), "claude-haiku-4-5": row("anthropic", 70, 7)})
    )
    assert [m for m, _ in gens] == ["gpt-4o", "claude-haiku-4-5"]
    assert {p["$ai_trace_id"] for _, p in gens} == {"inv-1"}


@pytest.fixture
def receiver() -> Iterator[Capture]:
    r = Capture()
    yield r
    r.close()


def test_sent_through_the_posthog_client(receiver: Capture) -> None:
    """Events reach /batch/ with the api key, $ai_generation properties and distinct ids."""
    exporter = PostHogExporter("phc_key", host=receiver.url)
    two = event({"gpt-4o": row("openai", 50, 5), "claude-haiku-4-5": row("anthropic", 70, 7)})
    no_user = {**event({"gpt-4o": row("openai", 9, 1)}), "metadata": {}, "invoke_id": "inv-2"}
    anonymous = {**no_user, "session_id": None, "invoke_id": "inv-3", "event_id": "e-3"}
    for e in (two, no_user, anonymous):
        exporter.export(e)
    assert exporter.shutdown(10)
    assert {post["api_key"] for post in receiver.posts} == {"phc_key"}
    got = receiver.events
    assert [e["event"] for e in got] == ["$ai_generation"] * 4
    assert [(e["distinct_id"], e["properties"]["$ai_trace_id"]) for e in got] == [
        ("u-7", "inv-1"),  # metadata["user_id"]
        ("u-7", "inv-1"),
        ("sess-1", "inv-2"),  # else the session id
        ("inv-3", "inv-3"),  # else the invoke id, without a person profile
    ]
    assert got[3]["properties"]["$process_person_profile"] is False
    assert got[0]["properties"]["$ai_input_tokens"] == 50
    assert got[1]["properties"]["$ai_model"] == "claude-haiku-4-5"
    assert got[0]["timestamp"].startswith("2026-11-22T23:14:09.123456")
    # Counted in $ai_generation events, as the receiver got them.
    assert exporter.stats == {"handed": 4, "sent": 4, "failed": 0, "dropped": 0, "pending": 0}


def test_replayed_event_keeps_its_uuid(receiver: Capture) -> None:
    """The same llm_usage event sent twice has the same $ai_generation uuid (PostHog dedupes)."""
    exporter = PostHogExporter("k", host=receiver.url, distinct_id_key="app")
    e = event({"gpt-4o": row("openai", 50, 5)})
    exporter.export(e)
    exporter.export(e)
    assert exporter.shutdown(10)
    first, second = receiver.events
    assert first["uuid"] == second["uuid"]
    assert first["distinct_id"] == "support"


def test_failed_posts_are_retried_until_all_arrive() -> None:
    """The receiver fails the first two posts; the client backs off, retries, loses nothing."""
    receiver = Capture(fail_first=2)
    try:
        exporter = PostHogExporter("k", host=receiver.url, max_retries=3)
        for i in range(5):
            exporter.export({**event({"gpt-4o": row("openai", 10 + i, 1)}), "event_id": f"e{i}"})
        started = time.monotonic()
        assert exporter.flush(20)
        assert receiver.attempts >= 3
        assert sorted(e["properties"]["$ai_input_tokens"] for e in receiver.events) == [
            10,
            11,
            12,
            13,
            14,
        ]
        assert time.monotonic() - started >= 1.0  # backed off before retrying
        assert exporter.stats == {"handed": 5, "sent": 5, "failed": 0, "dropped": 0, "pending": 0}
        exporter.shutdown(5)
    finally:
        receiver.close()


def test_gives_up_after_max_retries_and_counts() -> None:
    """A post that keeps failing is counted in `failed`, never in `sent`."""
    receiver = Capture(fail_first=10**6)
    try:
        exporter = PostHogExporter("k", host=receiver.url, max_retries=0)
        exporter.export(event({"gpt-4o": row("openai", 10, 1)}))
        assert exporter.flush(10) is False  # flush says what it could not deliver
        assert exporter.stats == {"handed": 1, "sent": 0, "failed": 1, "dropped": 0, "pending": 0}
        assert exporter.failures == {"posting to PostHog (APIError)": 1}
        exporter.shutdown(5)
    finally:
        receiver.close()


def test_sent_is_what_the_endpoint_took() -> None:
    """Posts the receiver refused count as failed; `sent` equals what it stored."""
    receiver = Capture(fail_first=1)
    try:
        # One event per post: the first post fails for good, the others arrive.
        exporter = PostHogExporter(
            "k", host=receiver.url, max_retries=0, client_options={"flush_at": 1}
        )
        for i in range(6):
            exporter.export({**event({"gpt-4o": row("openai", i, 1)}), "event_id": f"e{i}"})
            assert exporter.flush(10) is (i > 0)
        stats = exporter.stats
        assert stats["sent"] == len(receiver.events) == 5
        assert (stats["failed"], stats["handed"]) == (1, 6)
        exporter.shutdown(5)
    finally:
        receiver.close()


def test_events_after_shutdown_are_dropped_not_sent(receiver: Capture) -> None:
    """After shutdown the client refuses events: counted dropped, nothing posted."""
    exporter = PostHogExporter("k", host=receiver.url)
    assert exporter.shutdown(5)
    exporter.export(event({"gpt-4o": row("openai", 1, 1), "o3": row("openai", 2, 2)}))
    assert exporter.stats == {"handed": 0, "sent": 0, "failed": 0, "dropped": 2, "pending": 0}
    assert receiver.events == []


def test_a_client_you_pass_is_flushed_not_shut_down(receiver: Capture) -> None:
    """With your own client, delivery is its business: sent/failed are None, not guesses."""
    from posthog import Posthog

    client = Posthog("k", host=receiver.url)
    exporter = PostHogExporter(client=client)
    exporter.export(event({"gpt-4o": row("openai", 1, 1)}))
    assert exporter.shutdown(5)
    assert exporter.stats == {"handed": 1, "sent": None, "failed": None, "dropped": 0}
    assert len(receiver.events) == 1
    assert client.capture("still-open", distinct_id="x") is not None  # not shut down
    client.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"api_key": ""}, ValueError),
        ({"api_key": "k", "max_retries": -1}, ValueError),
        ({"client": object()}, TypeError),
        ({"api_key": "k", "distinct_id_key": 3}, TypeError),
    ],
    ids=["no-key", "empty-key", "negative-retries", "not-a-client", "bad-id-key"],
)
def test_bad_options_fail_at_construction(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """A bad option raises when the exporter is built, naming the value."""
    with pytest.raises(error):
        PostHogExporter(**kwargs)
