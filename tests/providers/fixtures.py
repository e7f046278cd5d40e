"""Pytest fixtures: fake provider servers, started once per session, reset per test.

Load with ``pytest_plugins = ["providers.fixtures"]`` in a test module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import AnthropicServer, OpenAIServer


@pytest.fixture(scope="session")
def _openai_api() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="session")
def _anthropic_api() -> Iterator[AnthropicServer]:
    with AnthropicServer() as server:
        yield server


@pytest.fixture
def openai_server(_openai_api: OpenAIServer) -> OpenAIServer:
    """A fake OpenAI API on a loopback port, with an empty script."""
    _openai_api.reset()
    return _openai_api


@pytest.fixture
def anthropic_server(_anthropic_api: AnthropicServer) -> AnthropicServer:
    """A fake Anthropic API on a loopback port, with an empty script."""
    _anthropic_api.reset()
    return _anthropic_api
