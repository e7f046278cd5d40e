"""The user's own prices: a mapping, or a TOML/JSON file of one, checked when loaded."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._rates import WRITE_1H_MULTIPLIER, Rates

__all__ = ["Override", "load_file", "override_key", "parse_override"]

# User price keys (per million tokens) -> what they mean; "provider" is the one str key.
_USER_RATE_KEYS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
_USER_KEYS = (*_USER_RATE_KEYS, "provider")


@dataclass(frozen=True, slots=True)
class Override:
    """A user's rates for one model name, limited to `provider` when set."""

    rates: Rates
    provider: str | None


def override_key(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"prices: a model name must be a non-empty string; got {name!r}")
    return name.strip().lower()


def load_file(path: Path) -> Mapping[str, Any]:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ValueError(f"prices file {str(path)!r} must end in .toml or .json")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"prices file {str(path)!r} cannot be read: {exc.strerror}") from exc
    try:
        loaded = json.loads(data) if suffix == ".json" else _toml_loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"prices file {str(path)!r} is not valid {suffix[1:]}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ValueError(
            f"prices file {str(path)!r} must hold a table of models; got {type(loaded).__name__}"
        )
    return loaded


def _toml_loads(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10: the tomli backport, when installed
        try:
            import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
        except ModuleNotFoundError:
            raise ValueError(
                "reading TOML needs Python 3.11+ or the 'tomli' package; use a .json file"
            ) from None
    return tomllib.loads(text)


def parse_override(name: object, entry: object) -> Override:
    key = override_key(name)
    if not isinstance(entry, Mapping):
        raise ValueError(
            f"prices[{name!r}] must be a table of per-million USD prices; got {entry!r}"
        )
    unknown = sorted(str(k) for k in entry if k not in _USER_KEYS)
    if unknown:
        raise ValueError(
            f"prices[{name!r}]: unknown key {unknown[0]!r} (expected {', '.join(_USER_KEYS)})"
        )
    provider = entry.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise ValueError(
            f"prices[{name!r}]['provider'] must be a non-empty string; got {provider!r}"
        )
    rates: dict[str, float] = {}
    for rk in _USER_RATE_KEYS:
        if rk not in entry:
            continue
        value = entry[rk]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"prices[{name!r}][{rk!r}] must be a non-negative number of USD per "
                f"million tokens; got {value!r}"
            )
        rates[rk] = float(value)
    for required in ("input", "output"):
        if required not in rates:
            raise ValueError(f"prices[{name!r}] needs {required!r} (USD per million tokens)")
    inp = rates["input"]
    return Override(
        rates=Rates(
            input=inp,
            output=rates["output"],
            cache_read=rates.get("cache_read", inp),
            cache_write=rates.get("cache_write", inp),
            cache_write_1h=rates.get("cache_write_1h", inp * WRITE_1H_MULTIPLIER),
            reasoning=rates["output"],
            source=f"override:{key}",
        ),
        provider=provider.strip().lower() if provider else None,
    )
