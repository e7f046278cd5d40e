"""Rates and the money formula: the cache-aware cost of one call at flat rates.

The formula, per call, with rates in USD per million tokens::

    uncached = input - cache_read - cache_write            (clamped at 0)
    cost = uncached                   x input
         + cache_read                 x cache_read
         + (cache_write - write_1h)   x cache_write        (5-minute TTL)
         + write_1h                   x cache_write_1h
         + (output - reasoning)       x output
         + reasoning                  x reasoning          (= output unless the data differs)
         + per-request fee, if the data has one

- Long-context tiers: where a rate is tiered, the call's total input tokens pick
  the tier and that rate applies to all its tokens (the providers' "cliff"
  model, as genai-prices computes it), so calls are priced one by one.
- A missing cache read or write rate bills those tokens at the input rate (what
  genai-prices does). A missing 1-hour write rate is 2x the input rate:
  Anthropic's documented 1h multiplier (5m writes are 1.25x), and only Claude
  models report 1h writes (Anthropic API, Bedrock, Vertex).
- Service tiers: "priority"/"flex" use the data's variants for that tier where
  it has them (OpenAI, some Gemini models); otherwise standard rates, with one
  warning per model.
- Savings = cache_read x (input - cache_read rate) minus the write premium,
  cache_write x (write rate - input rate) for each TTL; negative when writes
  were not repaid by reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._usage import Usage

__all__ = ["WRITE_1H_MULTIPLIER", "Rates", "money"]

# Anthropic: a 1h cache write costs 2x the base input rate (a 5m write 1.25x).
WRITE_1H_MULTIPLIER = 2.0


@dataclass(frozen=True, slots=True)
class Rates:
    """Flat USD-per-million rates for one model, with the tiers above thresholds."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    reasoning: float
    per_request: float = 0.0
    # (threshold, rates) by descending threshold: rates when input tokens > threshold.
    tiers: tuple[tuple[int, Rates], ...] = ()
    source: str = ""

    def at(self, input_tokens: int) -> Rates:
        """The rates that apply to a call with this many input tokens."""
        for threshold, rates in self.tiers:
            if input_tokens > threshold:
                return rates
        return self


def money(rates: Rates, u: Usage, requests: int) -> tuple[float, float]:
    """(cost, savings) in USD of `u` at `rates` (already tier-selected).

    Written with locals and plain comparisons rather than min/max: this runs for
    every call of every invoke.
    """
    inp = u.input_tokens or 0
    read = u.cache_read_input_tokens or 0
    write = u.cache_creation_input_tokens or 0
    write_1h = u.cache_creation_1h_input_tokens or 0
    if write_1h > write:
        write_1h = write
    out = u.output_tokens or 0
    reasoning = u.reasoning_tokens or 0
    if reasoning > out:
        reasoning = out
    # A detail larger than its total is flagged upstream; never bill negative tokens.
    uncached = inp - read - write
    if uncached < 0:
        uncached = 0
    write_5m = write - write_1h
    r_in = rates.input
    r_read = rates.cache_read
    r_5m = rates.cache_write
    r_1h = rates.cache_write_1h
    cost = (
        uncached * r_in
        + read * r_read
        + write_5m * r_5m
        + write_1h * r_1h
        + (out - reasoning) * rates.output
        + reasoning * rates.reasoning
    ) / 1e6 + requests * rates.per_request
    savings = (read * (r_in - r_read) - write_5m * (r_5m - r_in) - write_1h * (r_1h - r_in)) / 1e6
    return cost, savings
