"""Provider shapes: the real langchain-openai / langchain-anthropic against loopback servers.

Each server speaks its provider's wire format (JSON and SSE streaming) with a
scripted `usage` object, the integration parses it as it would in production,
and the `llm_usage` event must hold exactly what the provider billed. See
tests/providers/servers.py for the wire formats.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import anthropic
import openai
import pytest
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tracers.context import register_configure_hook
from langchain_openai import ChatOpenAI
from langgraph.graph import START, StateGraph
from logs import usage_events as events
from providers import AnthropicServer, OpenAIServer, Reply, ToolCall
from providers.expect import MODES as ENTRY_POINTS
from providers.expect import (
    Mode,
    State,
    add,
    drive,
    expected,
    numbers,
    one_node_graph,
    only_event,
)
from pydantic import SecretStr

from agent_usage import EventLog, track_usage

pytest_plugins = ["providers.fixtures"]

OPENAI_REQUESTED = "gpt-5-mini"
OPENAI_ANSWERED = "gpt-5-mini-2025-08-07"  # the API answers with the dated snapshot
ANTHROPIC_MODEL = "claude-sonnet-4-6"

# -- How a model is driven ---------------------------------------------------


async def _graph_stream_messages(model: BaseChatModel, log: EventLog) -> None:
    agent = track_usage(one_node_graph(model), log)
    for _ in agent.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"):
        pass


# The entry points every provider's shape tests share, and LangGraph's sync "messages" stream.
MODES = [*ENTRY_POINTS, Mode("graph.stream-messages", True, _graph_stream_messages)]
MODE_IDS = [m.name for m in MODES]
MODE = {m.name: m for m in MODES}


def openai_model(server: OpenAIServer, **kwargs: Any) -> ChatOpenAI:
    # A custom base_url turns langchain-openai's stream_usage default off; the
    # no-usage tests below rely on that, the others ask for usage explicitly.
    options: dict[str, Any] = {"stream_usage": True, **kwargs}
    return ChatOpenAI(
        model=OPENAI_REQUESTED,
        base_url=server.url,
        api_key=SecretStr("test"),
        max_retries=0,
        **options,
    )


def anthropic_model(server: AnthropicServer, **kwargs: Any) -> ChatAnthropic:
    return ChatAnthropic(
        model_name=ANTHROPIC_MODEL,
        base_url=server.url,
        api_key=SecretStr("test"),
        max_retries=0,
        **kwargs,
    )


# -- langchain-anthropic -----------------------------------------------------

# Anthropic's `input_tokens` excludes cache reads and writes; the event's includes them.
ANTHROPIC_SHAPES = [
    pytest.param(
        {"input_tokens": 120, "output_tokens": 30},
        expected(120, 30),
        id="plain",
    ),
    pytest.param(
        {
            "input_tokens": 20,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 0,
            "output_tokens": 45,
        },
        expected(1020, 45, read=1000),
        id="cache-read",
    ),
    pytest.param(
        {
            "input_tokens": 15,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 800,
            "output_tokens": 60,
        },
        expected(815, 60, creation=800),
        id="cache-creation-no-ttl-split",
    ),
    pytest.param(
        {
            "input_tokens": 20,
            "cache_read_input_tokens": 500,
            "cache_creation_input_tokens": 90,
            "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 60},
            "output_tokens": 77,
            "service_tier": "standard",
        },
        expected(610, 77, read=500, creation=90, creation_1h=60),
        id="ttl-5m-1h-split",
    ),
    # The API now always sends the TTL object; the integration then zeroes the
    # generic cache_creation whenever the split is non-zero.
    pytest.param(
        {
            "input_tokens": 8,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 2048,
            "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 16,
        },
        expected(2056, 16, creation=2048, creation_1h=0),
        id="ttl-5m-only",
    ),
    pytest.param(
        {
            "input_tokens": 8,
            "cache_read_input_tokens": 2048,
            "cache_creation_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 16,
        },
        expected(2056, 16, read=2048, creation_1h=0),
        id="ttl-object-all-zero-with-read",
    ),
    pytest.param(
        {
            "input_tokens": 40,
            "cache_read_input_tokens": 300,
            "cache_creation_input_tokens": 0,
            "output_tokens": 250,
            "output_tokens_details": {"thinking_tokens": 180},
        },
        expected(340, 250, read=300, reasoning=180),
        id="thinking",
    ),
]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize(("usage", "want"), ANTHROPIC_SHAPES)
async def test_anthropic_usage_shapes(
    anthropic_server: AnthropicServer,
    tmp_path: Path,
    mode: Mode,
    usage: dict[str, Any],
    want: dict[str, int],
) -> None:
    """Each Anthropic usage shape is logged exactly, invoked or streamed."""
    anthropic_server.script(Reply(text="The answer is 42.", usage=usage))
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await mode.run(anthropic_model(anthropic_server), log)

    assert bool(anthropic_server.requests[0].get("stream")) is mode.streams
    event = only_event(path)
    if mode.streams and "cache_creation_1h_input_tokens" in want:
        # Known limit of langchain-anthropic: when streaming it reads usage from
        # message_delta only, which carries no TTL split; the split sent in
        # message_start never reaches the callbacks. The full writes still count.
        want = {k: v for k, v in want.items() if k != "cache_creation_1h_input_tokens"}
    assert numbers(event) == want
    assert event["status"] == "ok"
    assert event["llm_calls"] == 1
    assert event["llm_calls_without_usage"] == 0
    assert event["model"] == ANTHROPIC_MODEL
    assert list(event["models"]) == [ANTHROPIC_MODEL]
    row = event["models"][ANTHROPIC_MODEL]
    assert numbers(row) == want
    assert row["llm_calls"] == 1
    assert row["provider"] == "anthropic"


# -- langchain-openai --------------------------------------------------------


def openai_usage(
    prompt: int,
    completion: int,
    *,
    cached: int = 0,
    reasoning: int = 0,
    cache_write: int | None = None,
) -> dict[str, Any]:
    """A Chat Completions `usage` object as the API sends it (totals inclusive).

    `cache_write` adds `prompt_tokens_details.cache_write_tokens`, which OpenAI-compatible
    gateways send and langchain-openai maps to `cache_creation`.
    """
    prompt_details = {"cached_tokens": cached, "audio_tokens": 0}
    if cache_write is not None:
        prompt_details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# (service tier asked for, usage sent, event expected). For "priority" and "flex"
# langchain-openai renames the detail keys (`priority_cache_read`, `flex_reasoning`)
# and adds `priority`/`flex` totals; the event must not change.
OPENAI_SHAPES = [
    pytest.param(
        None,
        {"prompt_tokens": 90, "completion_tokens": 12, "total_tokens": 102},
        expected(90, 12),
        id="default-no-details",
    ),
    pytest.param(
        None,
        openai_usage(1500, 80, cached=1280),
        expected(1500, 80, read=1280),
        id="default-cached",
    ),
    pytest.param(
        None,
        openai_usage(300, 900, reasoning=640),
        expected(300, 900, reasoning=640),
        id="default-reasoning",
    ),
    pytest.param(
        "default",
        openai_usage(1200, 300, cached=1000, reasoning=200),
        expected(1200, 300, read=1000, reasoning=200),
        id="default-cached-reasoning",
    ),
    pytest.param(
        "priority",
        openai_usage(1200, 300, cached=1000, reasoning=200),
        expected(1200, 300, read=1000, reasoning=200),
        id="priority-cached-reasoning",
    ),
    pytest.param("priority", openai_usage(700, 50), expected(700, 50), id="priority-no-cache"),
    pytest.param(
        "priority",
        openai_usage(1600, 40, cached=200, cache_write=1024),
        expected(1600, 40, read=200, creation=1024),
        id="priority-cache-write",
    ),
    pytest.param(
        None,
        openai_usage(1600, 40, cached=200, cache_write=1024),
        expected(1600, 40, read=200, creation=1024),
        id="default-cache-write",
    ),
    pytest.param(
        "flex",
        openai_usage(2048, 512, cached=1024, reasoning=384),
        expected(2048, 512, read=1024, reasoning=384),
        id="flex-cached-reasoning",
    ),
]

OPENAI_APIS = [
    pytest.param(False, id="chat-completions"),
    pytest.param(True, id="responses"),
]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("responses_api", OPENAI_APIS)
@pytest.mark.parametrize(("tier", "usage", "want"), OPENAI_SHAPES)
async def test_openai_usage_shapes(
    openai_server: OpenAIServer,
    tmp_path: Path,
    mode: Mode,
    responses_api: bool,
    tier: str | None,
    usage: dict[str, Any],
    want: dict[str, int],
) -> None:
    """Each OpenAI usage shape and service tier is logged exactly, on both APIs."""
    openai_server.script(Reply(text="The answer is 42.", usage=usage, model=OPENAI_ANSWERED))
    model = openai_model(openai_server, service_tier=tier, use_responses_api=responses_api)
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await mode.run(model, log)

    request = openai_server.requests[0]
    assert bool(request.get("stream")) is mode.streams
    assert request.get("service_tier") == tier
    if mode.streams and not responses_api:
        # The usage comes from the final choices-less chunk, sent only on request.
        assert request["stream_options"] == {"include_usage": True}
    event = only_event(path)
    assert numbers(event) == want
    assert "cache_creation_1h_input_tokens" not in event
    assert event["status"] == "ok"
    assert event["llm_calls"] == 1
    assert event["llm_calls_without_usage"] == 0
    assert event["model"] == OPENAI_ANSWERED
    assert list(event["models"]) == [OPENAI_ANSWERED]
    row = event["models"][OPENAI_ANSWERED]
    assert numbers(row) == want
    assert row["llm_calls"] == 1
    assert row["provider"] == "openai"


# -- No usage at all -----------------------------------------------------------

NO_USAGE = [
    # langchain-openai does not ask for usage when streaming from a custom base_url
    # unless stream_usage=True; the stream then carries none.
    pytest.param(
        {"stream_usage": False},
        Reply(text="hi", usage=None),
        MODE["stream"],
        id="openai-stream-without-include-usage",
    ),
    pytest.param(
        {"stream_usage": False},
        Reply(text="hi", usage=None),
        MODE["graph.astream-messages"],
        id="openai-graph-astream-without-include-usage",
    ),
    # Some OpenAI-compatible servers send no usage object at all.
    pytest.param({}, Reply(text="hi", usage=None), MODE["invoke"], id="openai-compatible-no-usage"),
]


@pytest.mark.parametrize(("options", "reply", "mode"), NO_USAGE)
async def test_no_usage_writes_no_event(
    openai_server: OpenAIServer,
    tmp_path: Path,
    options: dict[str, Any],
    reply: Reply,
    mode: Mode,
) -> None:
    """A call that reports no usage writes no event (the has_usage guard)."""
    openai_server.script(reply)
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await mode.run(openai_model(openai_server, **options), log)
    assert openai_server.pending == 0
    assert "stream_options" not in openai_server.requests[0]
    assert events(path) == []


@pytest.mark.parametrize("how", ["ainvoke", "astream-messages"])
async def test_call_without_usage_is_counted_beside_one_with(
    openai_server: OpenAIServer, tmp_path: Path, how: str
) -> None:
    """A call without usage is counted in `llm_calls_without_usage` next to one with usage."""
    openai_server.script(
        Reply(text="first", usage=openai_usage(400, 40, cached=256), model=OPENAI_ANSWERED),
        Reply(text="second", usage=None, model=OPENAI_ANSWERED),
    )
    reporting = openai_model(openai_server)
    # The second response carries no usage object (and, streamed, asks for none).
    silent = openai_model(openai_server, stream_usage=False)

    def first(state: State) -> dict[str, Any]:
        return {"messages": [reporting.invoke(state["messages"])]}

    def second(state: State) -> dict[str, Any]:
        return {"messages": [silent.invoke(state["messages"])]}

    graph = (
        StateGraph(State)
        .add_node("first", first)
        .add_node("second", second)
        .add_edge(START, "first")
        .add_edge("first", "second")
        .compile()
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await drive(track_usage(graph, log), how, {"messages": [HumanMessage("hi")]})

    event = only_event(path)
    assert numbers(event) == expected(400, 40, read=256)
    assert event["llm_calls"] == 1
    assert event["llm_calls_without_usage"] == 1


# -- Agents: two calls in one invoke, and a failing second call ----------------


ADD_CALL = ToolCall(name="add", args={"a": 2, "b": 3}, id="call_add_1")


@dataclass(frozen=True)
class Provider:
    """One integration behind a fake server, with two billed calls in its own shape."""

    name: str
    model: str
    first: Mapping[str, Any]
    second: Mapping[str, Any]
    total: dict[str, int]
    first_only: dict[str, int]
    error: type[BaseException]


PROVIDERS = [
    Provider(
        "openai",
        OPENAI_ANSWERED,
        openai_usage(1000, 60, cached=768, reasoning=32),
        openai_usage(1100, 25, cached=1024),
        expected(2100, 85, read=1792, reasoning=32),
        expected(1000, 60, read=768, reasoning=32),
        openai.InternalServerError,
    ),
    Provider(
        "openai-responses",
        OPENAI_ANSWERED,
        openai_usage(1000, 60, cached=768, reasoning=32),
        openai_usage(1100, 25, cached=1024),
        expected(2100, 85, read=1792, reasoning=32),
        expected(1000, 60, read=768, reasoning=32),
        openai.InternalServerError,
    ),
    Provider(
        "anthropic",
        ANTHROPIC_MODEL,
        {
            "input_tokens": 12,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 900,
            "output_tokens": 70,
        },
        {
            "input_tokens": 30,
            "cache_read_input_tokens": 900,
            "cache_creation_input_tokens": 0,
            "output_tokens": 20,
        },
        expected(1842, 90, read=900, creation=900),
        expected(912, 70, creation=900),
        anthropic.InternalServerError,
    ),
]


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> Provider:
    """Each integration in turn."""
    found: Provider = request.param
    return found


def chat_model(provider: Provider, request: pytest.FixtureRequest) -> tuple[Any, BaseChatModel]:
    """The provider's fake server (started for this test) and a chat model on it."""
    if provider.name == "anthropic":
        server: Any = request.getfixturevalue("anthropic_server")
        return server, anthropic_model(server)
    server = request.getfixturevalue("openai_server")
    return server, openai_model(server, use_responses_api=provider.name == "openai-responses")


AGENT_RUNS = ["ainvoke", "astream-updates", "astream-messages", "stream-messages"]


async def run_agent(agent: Any, how: str) -> None:
    """Run a tracked agent once on the question, the way `how` names."""
    await drive(agent, how, {"messages": [HumanMessage("what is 2 + 3?")]})


@pytest.mark.parametrize("how", AGENT_RUNS)
async def test_agent_tool_call_then_answer_is_one_summed_event(
    provider: Provider, request: pytest.FixtureRequest, tmp_path: Path, how: str
) -> None:
    """A `create_agent` agent calling a tool then answering logs one event, the sum."""
    server, model = chat_model(provider, request)
    server.script(
        Reply(tool_calls=(ADD_CALL,), usage=provider.first, model=provider.model),
        Reply(text="2 + 3 = 5", usage=provider.second, model=provider.model),
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await run_agent(track_usage(create_agent(model, tools=[add]), log), how)

    assert server.pending == 0
    assert len(server.requests) == 2
    event = only_event(path)
    assert numbers(event) == provider.total
    assert event["status"] == "ok"
    assert event["llm_calls"] == 2
    assert event["llm_calls_without_usage"] == 0
    assert event["model"] == provider.model
    assert numbers(event["models"][provider.model]) == provider.total
    assert event["models"][provider.model]["llm_calls"] == 2


class _Errors(BaseCallbackHandler):
    """Records the exception each model call failed with."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.errors.append(error)


# The test's own observer reaches every model call through the context, as
# agent_usage does: a config's callbacks do not reach async nodes before 3.11.
_observer: ContextVar[_Errors | None] = ContextVar("test_observer", default=None)
register_configure_hook(_observer, inheritable=True)


@contextmanager
def observing() -> Iterator[_Errors]:
    """Collect the errors of every model call made inside the block."""
    seen = _Errors()
    token = _observer.set(seen)
    try:
        yield seen
    finally:
        _observer.reset(token)


@pytest.mark.parametrize("how", AGENT_RUNS)
async def test_server_error_after_one_call_logs_that_call(
    provider: Provider, request: pytest.FixtureRequest, tmp_path: Path, how: str
) -> None:
    """An HTTP 500 on the second call reaches the caller unchanged; the event holds call one."""
    server, model = chat_model(provider, request)
    server.script(
        Reply(tool_calls=(ADD_CALL,), usage=provider.first, model=provider.model),
        Reply(status=500),
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log, observing() as seen:
        agent = track_usage(create_agent(model, tools=[add]), log)
        with pytest.raises(provider.error) as raised:
            await run_agent(agent, how)

    assert raised.value.status_code == 500  # type: ignore[attr-defined]
    # The very object the SDK raised inside the model call, not a wrapper or copy.
    assert seen.errors == [raised.value]
    assert seen.errors[0] is raised.value
    event = only_event(path)
    assert event["status"] == "error"
    assert numbers(event) == provider.first_only
    assert event["llm_calls"] == 1
    assert event["llm_calls_without_usage"] == 0


async def test_two_providers_in_one_invoke_break_down_by_model(
    openai_server: OpenAIServer, anthropic_server: AnthropicServer, tmp_path: Path
) -> None:
    """Calls to two providers in one invoke: model "mixed", one exact row per model."""
    openai_server.script(
        Reply(
            text="draft",
            usage=openai_usage(500, 100, cached=384, reasoning=64),
            model=OPENAI_ANSWERED,
        )
    )
    anthropic_server.script(
        Reply(
            text="review",
            usage={
                "input_tokens": 50,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 600,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 200,
                    "ephemeral_1h_input_tokens": 400,
                },
                "output_tokens": 30,
            },
        )
    )
    drafter = openai_model(openai_server)
    reviewer = anthropic_model(anthropic_server)

    def draft(state: State) -> dict[str, Any]:
        return {"messages": [drafter.invoke(state["messages"])]}

    def review(state: State) -> dict[str, Any]:
        return {"messages": [reviewer.invoke(state["messages"])]}

    graph = (
        StateGraph(State)
        .add_node("draft", draft)
        .add_node("review", review)
        .add_edge(START, "draft")
        .add_edge("draft", "review")
        .compile()
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await track_usage(graph, log).ainvoke({"messages": [HumanMessage("hi")]})

    event = only_event(path)
    openai_row = expected(500, 100, read=384, reasoning=64)
    anthropic_row = expected(650, 30, creation=600, creation_1h=400)
    assert event["model"] == "mixed"
    assert event["llm_calls"] == 2
    assert numbers(event) == expected(
        1150, 130, read=384, creation=600, creation_1h=400, reasoning=64
    )
    assert sorted(event["models"]) == sorted([OPENAI_ANSWERED, ANTHROPIC_MODEL])
    assert numbers(event["models"][OPENAI_ANSWERED]) == openai_row
    assert numbers(event["models"][ANTHROPIC_MODEL]) == anthropic_row
    assert event["models"][OPENAI_ANSWERED]["provider"] == "openai"
    assert event["models"][ANTHROPIC_MODEL]["provider"] == "anthropic"
