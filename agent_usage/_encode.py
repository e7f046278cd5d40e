"""Events to JSON lines: orjson fast, and never failing on a value JSON cannot hold.

Odd values are converted (Decimal to float, sets to sorted lists, datetimes to ISO
strings, pydantic models to their JSON form) or written as their `str`; an event
orjson refuses outright (non-str keys, huge ints, cycles) takes a careful slow path.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any

import orjson

_OPTS = orjson.OPT_APPEND_NEWLINE


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:
        return f"<unprintable {type(obj).__name__}>"


def _default(obj: Any) -> Any:
    """orjson's fallback for types it does not know: a sensible JSON value, else str."""
    if isinstance(obj, Decimal):
        # Money arrives as Decimal from price tables; readers sum numbers, not strings.
        return float(obj) if obj.is_finite() else str(obj)
    if isinstance(obj, (set, frozenset)):
        items = list(obj)
        with contextlib.suppress(TypeError):  # mixed types keep their order
            items.sort()
        return items
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (datetime, date, dtime)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, BaseException):
        return f"{type(obj).__name__}: {_safe_str(obj)}"
    if isinstance(obj, (Sequence, range)) and not isinstance(obj, str):
        return list(obj)
    dump = getattr(obj, "model_dump", None)  # pydantic models
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    return _safe_str(obj)


def _sanitize(obj: Any, depth: int, seen: set[int]) -> Any:
    """A plain, acyclic, JSON-safe copy for the rare event orjson refuses outright."""
    if isinstance(obj, str):
        try:
            obj.encode()
        except UnicodeEncodeError:  # lone surrogates, which JSON text cannot carry
            return obj.encode("utf-8", "replace").decode()
        return obj
    if obj is None or isinstance(obj, (bool, float)):
        return obj
    if isinstance(obj, int):
        return obj if -(2**63) <= obj < 2**64 else str(obj)
    if depth > 64 or id(obj) in seen:
        return f"<{type(obj).__name__} cycle or too deep>"
    seen.add(id(obj))
    try:
        if isinstance(obj, Mapping):
            return {
                _sanitize(_safe_str(k), depth, seen): _sanitize(v, depth + 1, seen)
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return [_sanitize(v, depth + 1, seen) for v in obj]
        converted = _default(obj)
        if isinstance(converted, str):
            return converted
        return _sanitize(converted, depth + 1, seen)
    finally:
        seen.discard(id(obj))


def _encode(event: Mapping[str, Any]) -> bytes:
    """One JSON line; never fails on odd values (they are converted or stringified)."""
    try:
        return orjson.dumps(event, default=_default, option=_OPTS)
    except TypeError:
        # Non-str keys, ints past 64 bits, cycles: rare, so the slow careful path.
        return orjson.dumps(_sanitize(event, 0, set()), option=_OPTS)
