"""`Budget` and `BudgetExceeded`: validation at construction, messages, the `budget` field."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from agent_usage import Budget, BudgetExceeded


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({}, ValueError, "Budget needs at least one limit, e.g. Budget(session_usd=5.0)"),
        ({"session_usd": -1.0}, ValueError, "session_usd must be a finite number >= 0, got -1.0"),
        ({"day_usd": float("inf")}, ValueError, "day_usd must be a finite number >= 0, got inf"),
        ({"invoke_usd": "0.5"}, TypeError, "invoke_usd must be a number of USD or None, got '0.5'"),
        ({"invoke_usd": True}, TypeError, "invoke_usd must be a number of USD or None, got True"),
        ({"session_tokens": 1.5}, TypeError, "session_tokens must be an int number of tokens"),
        ({"day_tokens": -5}, ValueError, "Budget day_tokens must be >= 0, got -5"),
        ({"session_usd": 1, "day_key": "user_id"}, ValueError, "day_key='user_id' needs day_usd"),
        ({"day_usd": 1.0, "day_key": 7}, TypeError, "must be a metadata key, a str; got 7"),
        ({"day_usd": 1.0, "day_key": ""}, ValueError, "must be a non-empty metadata key"),
        ({"day_usd": 1.0, "unpriced": "no"}, ValueError, "'block' or 'allow', got 'no'"),
    ],
    ids=[
        "no-limit",
        "negative-usd",
        "infinite-usd",
        "usd-string",
        "usd-bool",
        "tokens-float",
        "negative-tokens",
        "day-key-without-day-limit",
        "day-key-not-str",
        "day-key-empty",
        "unpriced-value",
    ],
)  # fmt: skip
def test_bad_budget_names_the_value(
    kwargs: dict[str, Any], error: type[Exception], text: str
) -> None:
    """A bad limit raises at construction with a message naming the value."""
    with pytest.raises(error) as info:
        Budget(**kwargs)
    assert text in str(info.value)


def test_budget_is_a_frozen_value() -> None:
    """Budgets compare by value and cannot be changed after construction."""
    budget = Budget(invoke_usd=0.5, session_usd=5, day_tokens=0, day_key="user_id")
    assert budget == Budget(invoke_usd=0.5, session_usd=5, day_tokens=0, day_key="user_id")
    assert budget.unpriced == "block"
    with pytest.raises(AttributeError):
        budget.invoke_usd = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("exc", "text", "field"),
    [
        (
            BudgetExceeded("session", 5.0, 5.0125, "usd", "s1"),
            "session budget reached: spent $5.0125 of $5",
            {"scope": "session", "limit": 5.0, "spent": 5.0125, "unit": "usd"},
        ),
        (
            BudgetExceeded("day", 100000, 123456, "tokens"),
            "day budget reached: spent 123,456 of 100,000 tokens",
            {"scope": "day", "limit": 100000, "spent": 123456, "unit": "tokens"},
        ),
    ],
    ids=["usd", "tokens"],
)
def test_budget_exceeded(exc: BudgetExceeded, text: str, field: dict[str, Any]) -> None:
    """The message says which limit and what was spent; the event field; it pickles."""
    assert str(exc) == text
    assert exc.as_event_field() == field
    copy = pickle.loads(pickle.dumps(exc))
    assert (type(copy), str(copy), copy.session_id) == (BudgetExceeded, text, exc.session_id)
