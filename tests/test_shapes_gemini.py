"""Gemini through langchain-google-genai, against a loopback Gemini API.

`ChatGoogleGenerativeAI` talks to `GeminiServer` through the google-genai
client, JSON (generateContent) and SSE (streamGenerateContent). Gemini reports
`promptTokenCount` with the cached content inside it, and `candidatesTokenCount`
WITHOUT the thoughts; the event's output must include the thoughts. When
streaming, every chunk carries the usage so far and the integration subtracts:
the event must still hold the final counts, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_google_genai import ChatGoogleGenerativeAI
from providers import Reply, ToolCall
from providers.expect import (
    MODES,
    WIRE,
    Mode,
    add,
    assert_one_call,
    drive,
    expected,
    numbers,
    only_event,
    serve_one_call,
)
from providers.gemini import GeminiReply, GeminiServer
from pydantic import SecretStr

from agent_usage import EventLog, track_usage

MODEL = "gemini-2.5-flash"

# google-genai's async client subclasses aiohttp's ClientSession, which aiohttp
# deprecates; that warning is theirs, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession from ClientSession:DeprecationWarning"
)


@pytest.fixture(scope="module")
def _gemini_api() -> Iterator[GeminiServer]:
    with GeminiServer() as server:
        yield server


@pytest.fixture
def gemini(_gemini_api: GeminiServer) -> GeminiServer:
    """A fake Gemini API on a loopback port, with an empty script."""
    _gemini_api.reset()
    return _gemini_api


@pytest.fixture(scope="module", name="model")
def _model(_gemini_api: GeminiServer) -> ChatGoogleGenerativeAI:
    """`ChatGoogleGenerativeAI` on the fake server, without client retries."""
    return ChatGoogleGenerativeAI(
        model=MODEL,
        base_url=_gemini_api.url,
        api_key=SecretStr("test"),
        max_retries=0,
        timeout=10,
    )


def usage(
    prompt: int, candidates: int, *, cached: int | None = None, thoughts: int | None = None
) -> dict[str, Any]:
    """A Gemini `usageMetadata` as the API sends it: thoughts outside the candidates."""
    body: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + (thoughts or 0),
    }
    if cached is not None:
        body["cachedContentTokenCount"] = cached
    if thoughts is not None:
        body["thoughtsTokenCount"] = thoughts
    return body


SHAPES = [
    pytest.param(usage(120, 30), expected(120, 30), id="plain"),
    pytest.param(usage(1200, 40, cached=1024), expected(1200, 40, read=1024), id="cached"),
    pytest.param(usage(300, 50, thoughts=600), expected(300, 650, reasoning=600), id="thoughts"),
    pytest.param(
        usage(2400, 75, cached=2048, thoughts=333),
        expected(2400, 408, read=2048, reasoning=333),
        id="cached-thoughts",
    ),
]


async def check_one_call(
    gemini: GeminiServer,
    model: ChatGoogleGenerativeAI,
    tmp_path: Path,
    mode: Mode,
    served: Any,
    want: Any,
) -> None:
    """Run one scripted call the way `mode` says; the event must hold `want`."""
    path = tmp_path / "events.jsonl"
    reply = Reply(text="The answer is 42, said the model.", usage=served)
    request = await serve_one_call(gemini, model, path, mode, reply)
    assert (request["method"] == "streamGenerateContent") is mode.streams
    assert_one_call(only_event(path), MODEL, want)


@pytest.mark.parametrize("mode", WIRE, ids=["generateContent", "streamGenerateContent"])
@pytest.mark.parametrize(("served", "want"), SHAPES)
async def test_gemini_usage_shapes(
    gemini: GeminiServer,
    model: ChatGoogleGenerativeAI,
    tmp_path: Path,
    mode: Mode,
    served: dict[str, Any],
    want: dict[str, int],
) -> None:
    """Each Gemini usage shape is logged exactly, on generateContent and streamed."""
    await check_one_call(gemini, model, tmp_path, mode, served, want)


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
async def test_gemini_every_entry_point(
    gemini: GeminiServer, model: ChatGoogleGenerativeAI, tmp_path: Path, mode: Mode
) -> None:
    """Cached content and thoughts are logged exactly however the model is driven."""
    [(served, want)] = [p.values for p in SHAPES if p.id == "cached-thoughts"]
    await check_one_call(gemini, model, tmp_path, mode, served, want)


@pytest.mark.parametrize("how", ["ainvoke", "stream-updates", "astream-messages"])
async def test_gemini_agent_function_call_then_answer(
    gemini: GeminiServer, model: ChatGoogleGenerativeAI, tmp_path: Path, how: str
) -> None:
    """A `create_agent` agent on Gemini: a function call, then an answer; one event, the sum."""
    gemini.script(
        Reply(
            tool_calls=(ToolCall("add", {"a": 2, "b": 3}, "fc-1"),),
            usage=usage(500, 20, thoughts=180),
        ),
        Reply(text="2 + 3 is 5", usage=usage(560, 9, cached=512, thoughts=40)),
    )
    path = tmp_path / "events.jsonl"
    inputs = {"messages": [HumanMessage("what is 2 + 3?")]}
    with EventLog(path) as log:
        result = await drive(track_usage(create_agent(model, tools=[add]), log), how, inputs)
    if how == "ainvoke":
        assert result["messages"][-1].text == "2 + 3 is 5"

    assert gemini.pending == 0
    # The tool's result went back as a functionResponse part.
    parts = [p for c in gemini.requests[1]["contents"] for p in c["parts"]]
    assert any("functionResponse" in p for p in parts)
    event = only_event(path)
    want = expected(1060, 249, read=512, reasoning=220)
    assert numbers(event) == want
    assert event["llm_calls"] == 2
    assert numbers(event["models"][MODEL]) == want


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("mode", WIRE, ids=["generateContent", "streamGenerateContent"])
async def test_gemini_client_retry_bills_only_the_answer(
    gemini: GeminiServer, tmp_path: Path, mode: Mode, status: int
) -> None:
    """google-genai retries a 429 / 503 inside the same model call: one call, billed once."""
    gemini.script(Reply(status=status), Reply(text="ok then", usage=usage(640, 12, cached=512)))
    # langchain-google-genai passes max_retries as the client's total attempts.
    model = ChatGoogleGenerativeAI(
        model=MODEL, base_url=gemini.url, api_key=SecretStr("test"), max_retries=2, timeout=10
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await mode.run(model, log)

    assert len(gemini.requests) == 2
    event = only_event(path)
    assert numbers(event) == expected(640, 12, read=512)
    assert event["status"] == "ok"
    assert (event["llm_calls"], event["llm_calls_without_usage"]) == (1, 0)


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
async def test_gemini_lower_final_prompt_count(
    gemini: GeminiServer, model: ChatGoogleGenerativeAI, tmp_path: Path, mode: Mode
) -> None:
    """Gemini 2.0 streams a higher prompt count first; the final, lower one is what is billed."""
    gemini.script(
        GeminiReply(
            text="one two three four",
            usage=usage(1000, 40, cached=768, thoughts=100),
            early_prompt_tokens=1100,
        )
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await mode.run(model, log)

    event = only_event(path)
    assert numbers(event) == expected(1000, 140, read=768, reasoning=100)
    assert event["llm_calls"] == 1
