"""How numbers, money, rates and untrusted log strings are shown to people.

Shared by the report table, `tail` and the dashboard, so that one figure reads
the same everywhere. Nothing here knows about commands.
"""

from __future__ import annotations

__all__ = ["csv_safe", "format_money", "format_rate", "format_tokens", "printable"]


def format_tokens(n: float | None) -> str:
    """12, 12.3k, 4.5M, 1.2B; "-" when unknown."""
    if n is None:
        return "-"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            value = n / limit
            return f"{value:.0f}{suffix}" if abs(value) >= 100 else f"{value:.1f}{suffix}"
    return f"{n:.0f}"


def format_money(x: float | None) -> str:
    """$1.23, $0.0042, $12.3k, -$0.0001; "n/a" when unknown."""
    if x is None:
        return "n/a"
    sign, x = ("-", -x) if x < 0 else ("", x)
    if x >= 10_000:
        text = format_tokens(x)
    elif x >= 0.01 or x == 0:
        text = f"{x:,.2f}"
    else:
        text = f"{x:.4f}"
    if sign and text.strip("0.") == "":  # rounds to zero: no "-$0.0000"
        sign = ""
    return f"{sign}${text}"


def format_rate(x: float | None) -> str:
    """A share as a percentage: 42.1%; "-" when unknown."""
    return "-" if x is None else f"{x * 100:.1f}%"


def printable(value: object) -> str:
    """`value` as text safe for a terminal: control characters become visible escapes.

    Log strings are untrusted: ESC, CR, BEL, bidi overrides and the like would
    otherwise reach the terminal as commands (an OSC 52 clipboard write, a row
    overwritten with CR). Each non-printable character is shown as Python writes
    it in a string literal (`\\x1b`, `\\r`, `\\u202e`). None is "(none)".
    """
    text = "(none)" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """A CSV cell that no spreadsheet runs: text starting like a formula gets a leading '.

    Numbers pass unchanged (a negative number is data, not a formula).
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
