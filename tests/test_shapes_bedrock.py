"""Bedrock Converse and ConverseStream through langchain-aws, against a loopback Bedrock.

`ChatBedrockConverse` signs and sends real boto3 requests to `BedrockServer`,
which answers in Bedrock's JSON and binary event-stream formats with a scripted
`usage`. Bedrock's `inputTokens` excludes cache reads and writes; langchain-aws
adds them back and, when `cacheDetails` splits the writes by TTL, reports them
under `ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens` with the generic
`cache_creation` set to 0 (it also drops a TTL whose count is 0). The event must
hold what Bedrock billed either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config  # type: ignore[import-untyped]
from langchain.agents import create_agent
from langchain_aws import ChatBedrockConverse
from langchain_core.messages import HumanMessage
from providers import Reply, ToolCall
from providers.bedrock import BedrockServer
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
from pydantic import SecretStr

from agent_usage import EventLog, track_usage

MODEL_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture(scope="module")
def _bedrock_api() -> Iterator[BedrockServer]:
    with BedrockServer() as server:
        yield server


@pytest.fixture
def bedrock(_bedrock_api: BedrockServer) -> BedrockServer:
    """A fake Bedrock Runtime on a loopback port, with an empty script."""
    _bedrock_api.reset()
    return _bedrock_api


@pytest.fixture(scope="module", name="model")
def _model(_bedrock_api: BedrockServer) -> ChatBedrockConverse:
    """One model for the module: building boto3 clients costs a quarter second each."""
    return bedrock_model(_bedrock_api)


def bedrock_model(server: BedrockServer, *, attempts: int = 1) -> ChatBedrockConverse:
    """`ChatBedrockConverse` on the fake endpoint with dummy credentials."""
    return ChatBedrockConverse(
        model=MODEL_ID,
        base_url=server.url,  # the alias of endpoint_url
        region_name="us-east-1",
        aws_access_key_id=SecretStr("AKIDEXAMPLE"),
        aws_secret_access_key=SecretStr("not-a-secret"),
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=10,
        ),
    )


def usage(
    inp: int,
    out: int,
    *,
    read: int | None = None,
    write: int | None = None,
    ttl: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A Bedrock `usage` object as the API sends it: inputTokens excludes the cache."""
    body: dict[str, Any] = {
        "inputTokens": inp,
        "outputTokens": out,
        "totalTokens": inp + (read or 0) + (write or 0) + out,
    }
    if read is not None:
        body["cacheReadInputTokens"] = read
    if write is not None:
        body["cacheWriteInputTokens"] = write
    if ttl is not None:
        # The API sorts the split 1h before 5m.
        body["cacheDetails"] = [
            {"ttl": name, "inputTokens": ttl[name]} for name in ("1h", "5m") if name in ttl
        ]
    return body


SHAPES = [
    pytest.param(usage(120, 30), expected(120, 30), id="plain"),
    pytest.param(usage(20, 45, read=1000, write=0), expected(1020, 45, read=1000), id="cache-read"),
    pytest.param(
        usage(15, 60, read=0, write=800), expected(815, 60, creation=800), id="write-no-details"
    ),
    pytest.param(
        usage(20, 77, read=500, write=90, ttl={"1h": 60, "5m": 30}),
        expected(610, 77, read=500, creation=90, creation_1h=60),
        id="write-5m-1h",
    ),
    # langchain-aws drops the TTL entries that are 0, so a 5m-only write reports no
    # 1h part at all: the event then carries no 1h field (not reported), and the
    # full write still counts.
    pytest.param(
        usage(8, 16, read=0, write=2048, ttl={"5m": 2048}),
        expected(2056, 16, creation=2048),
        id="write-5m-only",
    ),
    pytest.param(
        usage(8, 16, read=1024, write=4096, ttl={"1h": 4096}),
        expected(5128, 16, read=1024, creation=4096, creation_1h=4096),
        id="write-1h-only-with-read",
    ),
]


@pytest.mark.parametrize("mode", WIRE, ids=["converse", "converse-stream"])
@pytest.mark.parametrize(("served", "want"), SHAPES)
async def test_bedrock_usage_shapes(
    bedrock: BedrockServer,
    model: ChatBedrockConverse,
    tmp_path: Path,
    mode: Mode,
    served: dict[str, Any],
    want: dict[str, int],
) -> None:
    """Each Bedrock usage shape is logged exactly, on Converse and on ConverseStream."""
    await check_one_call(bedrock, model, tmp_path, mode, served, want)


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
async def test_bedrock_every_entry_point(
    bedrock: BedrockServer, model: ChatBedrockConverse, tmp_path: Path, mode: Mode
) -> None:
    """The 5m/1h split with a cache read is logged exactly however the model is driven."""
    [(served, want)] = [p.values for p in SHAPES if p.id == "write-5m-1h"]
    await check_one_call(bedrock, model, tmp_path, mode, served, want)


async def check_one_call(
    bedrock: BedrockServer,
    model: ChatBedrockConverse,
    tmp_path: Path,
    mode: Mode,
    served: Any,
    want: Any,
) -> None:
    """Run one scripted call the way `mode` says; the event must hold `want`."""
    path = tmp_path / "events.jsonl"
    reply = Reply(text="The answer is 42.", usage=served)
    request = await serve_one_call(bedrock, model, path, mode, reply)
    assert request["modelId"] == MODEL_ID
    assert (request["operation"] == "converse-stream") is mode.streams
    assert_one_call(only_event(path), MODEL_ID, want)


AGENT_RUNS = ["ainvoke", "stream-updates", "astream-messages"]


@pytest.mark.parametrize("how", AGENT_RUNS)
async def test_bedrock_agent_tool_call_then_answer(
    bedrock: BedrockServer, model: ChatBedrockConverse, tmp_path: Path, how: str
) -> None:
    """A `create_agent` agent on Bedrock: write the cache, call a tool, read it back; one sum."""
    bedrock.script(
        Reply(
            tool_calls=(ToolCall("add", {"a": 2, "b": 3}, "tooluse_1"),),
            usage=usage(40, 55, read=0, write=3000, ttl={"1h": 2000, "5m": 1000}),
        ),
        Reply(text="2 + 3 = 5", usage=usage(70, 12, read=3000, write=0)),
    )
    path = tmp_path / "events.jsonl"
    inputs = {"messages": [HumanMessage("what is 2 + 3?")]}
    with EventLog(path) as log:
        result = await drive(track_usage(create_agent(model, tools=[add]), log), how, inputs)
    if how == "ainvoke":
        assert result["messages"][-1].text == "2 + 3 = 5"

    assert bedrock.pending == 0
    # The tool result went back to Bedrock in its own wire shape.
    second = bedrock.requests[1]["messages"]
    assert any("toolResult" in block for block in second[-1]["content"])
    event = only_event(path)
    # 40 + 3000 written, then 70 + 3000 read.
    want = expected(6110, 67, read=3000, creation=3000, creation_1h=2000)
    assert numbers(event) == want
    assert event["llm_calls"] == 2
    assert numbers(event["models"][MODEL_ID]) == want


@pytest.mark.parametrize("status", [429, 500])
@pytest.mark.parametrize("mode", WIRE, ids=["converse", "converse-stream"])
async def test_bedrock_client_retry_counts_the_answer_once(
    bedrock: BedrockServer, tmp_path: Path, status: int, mode: Mode
) -> None:
    """botocore retries a throttled or failed request; only the answer that came is billed."""
    bedrock.script(
        Reply(status=status),
        Reply(text="ok", usage=usage(300, 20, read=200, write=0)),
    )
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        await mode.run(bedrock_model(bedrock, attempts=2), log)

    assert len(bedrock.requests) == 2
    event = only_event(path)
    assert numbers(event) == expected(500, 20, read=200)
    assert event["status"] == "ok"
    assert (event["llm_calls"], event["llm_calls_without_usage"]) == (1, 0)
