"""LiteLLM's UsageLogger: the real litellm against loopback OpenAI and Anthropic servers.

Each server speaks its provider's wire format with a scripted `usage`; LiteLLM
parses it as in production and calls the logger back on its own threads and
loops, after the call has returned, so every test waits (bounded) for the event.
Expected numbers are the ones the servers served, written out by hand.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litellm
import pytest
from logs import usage_events
from providers import AnthropicServer, OpenAIServer, Reply
from providers.expect import numbers
from providers.litellm_support import (
    LITELLM_MARKS,
    PRICES,
    FailureSeen,
    call_kwargs,
    litellm_state,  # noqa: F401  (LITELLM_MARKS uses it)
    register,
    run_call,
    wait_for,
)
from providers.truncated import TruncatedAnthropicServer

from agent_usage import EventLog
from agent_usage.exporters.posthog import generation_properties
from agent_usage.integrations.litellm import UsageLogger

pytest_plugins = ["providers.fixtures"]
pytestmark = LITELLM_MARKS


@dataclass(frozen=True)
class Shape:
    """One provider usage report and the event fields it must give."""

    name: str
    provider: str  # which fake server
    model: str  # LiteLLM model string
    usage: Mapping[str, Any]  # what the server bills, in its own wire format
    expected: Mapping[str, int]
    cost: float


SHAPES = [
    Shape(
        "openai-cached-reasoning",
        "openai",
        "openai/gpt-5-mini",
        {
            "prompt_tokens": 1200,
            "completion_tokens": 400,
            "total_tokens": 1600,
            "prompt_tokens_details": {"cached_tokens": 1000},
            "completion_tokens_details": {"reasoning_tokens": 256},
        },
        {
            "input_tokens": 1200,
            "output_tokens": 400,
            "total_tokens": 1600,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 0,
            "reasoning_tokens": 256,
        },
        # 200 uncached x 0.25 + 1000 read x 0.025 + 400 out x 2.0
        (50 + 25 + 800) / 1e6,
    ),
    Shape(
        "anthropic-read-5m-1h",
        "anthropic",
        "anthropic/claude-sonnet-4-6",
        {
            "input_tokens": 100,  # Anthropic: excludes cache reads and writes
            "output_tokens": 50,
            "cache_read_input_tokens": 400,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        },
        {
            "input_tokens": 800,
            "output_tokens": 50,
            "total_tokens": 850,
            "cache_read_input_tokens": 400,
            "cache_creation_input_tokens": 300,
            "cache_creation_1h_input_tokens": 200,
            "reasoning_tokens": 0,
        },
        # 100 x 3 + 400 read x 0.3 + 100 5m-write x 3.75 + 200 1h-write x 6 + 50 out x 15
        (300 + 120 + 375 + 1200 + 750) / 1e6,
    ),
    Shape(
        "anthropic-5m-only",
        "anthropic",
        "anthropic/claude-sonnet-4-6",
        {
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 500,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
        },
        {
            "input_tokens": 600,
            "output_tokens": 20,
            "total_tokens": 620,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 500,
            "cache_creation_1h_input_tokens": 0,
            "reasoning_tokens": 0,
        },
        # 100 x 3 + 500 5m-write x 3.75 + 20 out x 15
        (300 + 1875 + 300) / 1e6,
    ),
]


@pytest.fixture(scope="module")
def truncated_anthropic() -> Iterator[TruncatedAnthropicServer]:
    with TruncatedAnthropicServer() as server:
        yield server


@pytest.fixture
def servers(openai_server: OpenAIServer, anthropic_server: AnthropicServer) -> dict[str, Any]:
    return {"openai": openai_server, "anthropic": anthropic_server}


# -- one event per call, every shape, every way of calling -----------------------


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_one_event_per_call(
    tmp_path: Path, servers: dict[str, Any], shape: Shape, stream: bool, is_async: bool
) -> None:
    """Each call writes one event holding exactly what the provider billed, priced."""
    server = servers[shape.provider]
    server.script(Reply(text="hello there", usage=shape.usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), prices=PRICES))

    run_call(
        call_kwargs(server, shape.model),
        stream=stream,
        is_async=is_async,
        until=lambda: len(usage_events(path)) >= 1,
        drain=True,  # then LiteLLM has nothing left to report: a second report is logged
    )

    [event] = usage_events(path)
    assert numbers(event) == shape.expected
    assert event["status"] == "ok"
    assert event["llm_calls"] == 1
    assert event["cost_usd"] == pytest.approx(shape.cost)
    bare = shape.model.split("/", 1)[1]
    assert event["model"] == bare
    assert event["models"][bare]["provider"] == shape.provider
    assert server.pending == 0


def test_session_from_call_metadata(tmp_path: Path, openai_server: OpenAIServer) -> None:
    """metadata["session_id"] of the call wins; else the logger's session_id."""
    usage = SHAPES[0].usage
    openai_server.script(Reply(text="a", usage=usage), Reply(text="b", usage=usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), session_id="default-session", prices=PRICES))

    kwargs = call_kwargs(openai_server, "openai/gpt-5-mini")
    litellm.completion(**kwargs, metadata={"session_id": "user-7"})
    litellm.completion(**kwargs)

    wait_for(lambda: len(usage_events(path)) == 2)
    assert sorted(e["session_id"] for e in usage_events(path)) == ["default-session", "user-7"]


def test_metadata_and_invoke_id(tmp_path: Path, openai_server: OpenAIServer) -> None:
    """The logger's metadata is copied into each event; invoke_id is LiteLLM's call id."""
    openai_server.script(Reply(text="a", usage=SHAPES[0].usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), metadata={"app": "billing"}, prices=PRICES))

    response = litellm.completion(**call_kwargs(openai_server, "openai/gpt-5-mini"))

    wait_for(lambda: len(usage_events(path)) == 1)
    [event] = usage_events(path)
    assert event["metadata"] == {"app": "billing"}
    assert event["invoke_id"] == response._hidden_params["litellm_call_id"]
    assert event["session_id"] is None


# -- failures -----------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_http_error_reaches_caller_and_logs_nothing(
    tmp_path: Path, openai_server: OpenAIServer, is_async: bool
) -> None:
    """A refused call raises LiteLLM's own error, unchanged; no usage, so no event."""
    openai_server.script(Reply(status=500))
    path = tmp_path / "events.jsonl"
    logger = UsageLogger(EventLog(path), prices=PRICES)
    after = FailureSeen()  # LiteLLM calls its callbacks in order: ours has run before it
    litellm.callbacks = [logger, after]

    with pytest.raises(litellm.exceptions.InternalServerError):
        run_call(
            call_kwargs(openai_server, "openai/gpt-5-mini"),
            stream=False,
            is_async=is_async,
            until=lambda: after.calls > 0,
        )

    assert usage_events(path) == []
    assert logger.failures == {}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_interrupted_stream_logs_error_with_reported_usage(
    tmp_path: Path, truncated_anthropic: TruncatedAnthropicServer, is_async: bool
) -> None:
    """A stream cut after message_start: status "error" with the input side it reported."""
    truncated_anthropic.reset()
    truncated_anthropic.script(Reply(text="one two three four", usage=SHAPES[1].usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), prices=PRICES))

    with pytest.raises(litellm.exceptions.MidStreamFallbackError):
        run_call(
            call_kwargs(truncated_anthropic, "anthropic/claude-sonnet-4-6"),
            stream=True,
            is_async=is_async,
            until=lambda: len(usage_events(path)) == 1,
        )

    [event] = usage_events(path)
    assert event["status"] == "error"
    # The input side as message_start reported it; the output is LiteLLM's count of the
    # text delivered before the cut (the provider never sent a final count).
    served = SHAPES[1].expected
    for key in (
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "cache_creation_1h_input_tokens",
    ):
        assert event[key] == served[key], key
    assert 0 < event["output_tokens"] < served["output_tokens"]


# -- the PostHog mapping gets the whole picture ----------------------------------


def test_posthog_generation_has_cache_reasoning_and_cost(
    tmp_path: Path, servers: dict[str, Any]
) -> None:
    """$ai_generation from these events: cache read, cache creation (5m/1h), reasoning, cost."""
    servers["openai"].script(Reply(text="a", usage=SHAPES[0].usage))
    servers["anthropic"].script(Reply(text="b", usage=SHAPES[1].usage))
    path = tmp_path / "events.jsonl"
    register(UsageLogger(EventLog(path), session_id="s1", prices=PRICES))
    litellm.completion(**call_kwargs(servers["openai"], SHAPES[0].model))
    litellm.completion(**call_kwargs(servers["anthropic"], SHAPES[1].model))
    wait_for(lambda: len(usage_events(path)) == 2)

    props = {model: p for event in usage_events(path) for model, p in generation_properties(event)}
    openai = props["gpt-5-mini"]
    assert openai["$ai_input_tokens"] == 1200
    assert openai["$ai_output_tokens"] == 400
    assert openai["$ai_cache_read_input_tokens"] == 1000
    assert openai["$ai_reasoning_tokens"] == 256
    assert openai["$ai_total_cost_usd"] == pytest.approx(SHAPES[0].cost)
    anthropic = props["claude-sonnet-4-6"]
    # PostHog's Anthropic convention: input without cache reads and writes (100 served).
    assert anthropic["$ai_input_tokens"] == 100
    assert anthropic["$ai_cache_read_input_tokens"] == 400
    assert anthropic["$ai_cache_creation_input_tokens"] == 300
    assert anthropic["$ai_cache_creation_1h_input_tokens"] == 200
    assert anthropic["$ai_cache_creation_5m_input_tokens"] == 100
    assert anthropic["$ai_total_cost_usd"] == pytest.approx(SHAPES[1].cost)
    assert anthropic["$ai_session_id"] == "s1"


# -- construction and the optional extra ------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"session_id": 7}, TypeError),
        ({"metadata": ["app"]}, TypeError),
        ({"exporters": [object()]}, TypeError),
        ({"prices": {"m": {"input": -1, "output": 1}}}, ValueError),
    ],
    ids=["session", "metadata", "exporter", "prices"],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], error: type) -> None:
    """Configuration errors surface when the logger is built, naming the value."""
    with pytest.raises(error):
        UsageLogger(None, **kwargs)


def test_bad_log_fails_at_construction() -> None:
    """A log without append() is refused."""
    with pytest.raises(TypeError, match="append"):
        UsageLogger("events.jsonl")  # type: ignore[arg-type]


def test_litellm_imported_only_by_the_integration() -> None:
    """`import agent_usage` leaves litellm unimported; a missing extra names the install."""
    code = (
        "import sys, agent_usage, agent_usage.integrations\n"
        "assert 'litellm' not in sys.modules, 'litellm imported'\n"
        "sys.modules['litellm'] = None\n"
        "try:\n"
        "    import agent_usage.integrations.litellm\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'langchain-agent-usage[litellm]'" in out.stdout
