"""Test logs, written and read back: the event builders, reader and writer children the
test files share.

Every figure here is typed by hand, not taken from the library, so a test that
compares against them checks the library rather than repeating it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent_usage import read_events

ROOT = Path(__file__).resolve().parent.parent

# The token counts every `llm_usage` event carries, at its top level and per model.
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
)


def usage_events(path: Path) -> list[dict[str, Any]]:
    """The `llm_usage` events in the log (none when nothing was ever written)."""
    return list(read_events(path, types={"llm_usage"})) if path.exists() else []


def usage_event(session: str = "s1", seq: int = 0, **extra: Any) -> dict[str, Any]:
    """An `llm_usage` event shaped like the ones `build_event` writes; `extra` overrides."""
    return {
        "type": "llm_usage",
        "schema": 1,
        "event_id": uuid.uuid4().hex,
        "invoke_id": str(uuid.uuid4()),
        "timestamp": f"2026-11-22T23:14:{seq % 60:02d}.123456+00:00",
        "session_id": session,
        "model": "claude-sonnet-4-5",
        "status": "ok",
        "duration_ms": 812.5,
        "input_tokens": 1200,
        "output_tokens": 80,
        "total_tokens": 1280,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 100,
        "reasoning_tokens": 20,
        "llm_calls": 1,
        "llm_calls_without_usage": 0,
        "cost_usd": 0.00186,
        "models": {
            "claude-sonnet-4-5-20250929": {
                "provider": "anthropic",
                "input_tokens": 1200,
                "output_tokens": 80,
                "total_tokens": 1280,
                "llm_calls": 1,
                "cost_usd": 0.00186,
            }
        },
        "seq": seq,
        **extra,
    }


def one_model_event(
    *,
    ts: str,
    session: Any,
    model: str,
    inp: int,
    out: int = 0,
    read: int = 0,
    reasoning: int = 0,
    calls: int = 1,
    without: int = 0,
    cost: float | None = None,
    saved: float | None = None,
    status: str = "ok",
    provider: str | None = None,
) -> dict[str, Any]:
    """An `llm_usage` event of one model whose row repeats the event's totals."""
    row = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": 0,
        "reasoning_tokens": reasoning,
        "llm_calls": calls,
        "cost_usd": cost,
        "cache_savings_usd": saved,
    }
    return {
        "type": "llm_usage",
        "schema": 1,
        "timestamp": ts,
        "session_id": session,
        "model": model,
        "status": status,
        **row,
        "llm_calls_without_usage": without,
        "models": {model: row if provider is None else {"provider": provider, **row}},
    }


def run_child(
    code: str, *args: str, prefix: Sequence[str] = (), **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a Python child running `code` with the package importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [*prefix, sys.executable, "-c", textwrap.dedent(code), *args]
    return subprocess.Popen(argv, env=env, **kwargs)
