"""Pricing cost per call: warm cache vs a cold lookup vs genai-prices' own calculator.

`Pricer.cost` looks a (model, provider, service tier) up once and keeps flat
rates, so a call is priced with a few float operations. This prints, in one
process, the median ns per call of:

- warm: `Pricer.cost` on a model already looked up (what every call after the
  first pays);
- cold: a fresh `Pricer` per call, so each call does the name resolution and
  rate extraction (the price data is already imported, and genai-prices keeps
  its own name cache, so this is mostly our resolution and rate extraction);
- baseline: `genai_prices.calc_price` per call (Decimal maths, no flat-rate cache),
  the obvious way to use the library;

and the ratios warm/baseline and cold/baseline. The first lookup of the process
(which imports the price data) is printed once on its own.

Usage: python bench/pricing.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import genai_prices

from agent_usage import Usage
from agent_usage._pricing import Pricer

MODELS = [
    ("claude-sonnet-4-5-20250929", "anthropic"),
    ("gpt-5-mini-2025-08-07", "openai"),
    ("gemini-2.5-pro", "google_genai"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock"),
]
USAGE = Usage(
    input_tokens=12_000,
    output_tokens=800,
    cache_read_input_tokens=8_000,
    cache_creation_input_tokens=3_000,
    cache_creation_1h_input_tokens=1_000,
    reasoning_tokens=200,
)
LIB_USAGE = genai_prices.Usage(
    input_tokens=12_000,
    output_tokens=800,
    cache_read_tokens=8_000,
    cache_write_tokens=3_000,
    cache_write_1h_tokens=1_000,
)


def ns_per_call(fn: Callable[[str, str], object], calls: int) -> float:
    start = time.perf_counter_ns()
    for i in range(calls):
        model, provider = MODELS[i % len(MODELS)]
        fn(model, provider)
    return (time.perf_counter_ns() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    start = time.perf_counter_ns()
    Pricer().cost(*MODELS[0], USAGE)
    first_ms = (time.perf_counter_ns() - start) / 1e6

    warm = Pricer()
    for model, provider in MODELS:
        assert warm.cost(model, provider, USAGE) is not None

    variants: dict[str, Callable[[str, str], object]] = {
        "warm": lambda m, p: warm.cost(m, p, USAGE),
        "cold": lambda m, p: Pricer().cost(m, p, USAGE),
        "baseline": lambda m, p: genai_prices.calc_price(LIB_USAGE, m, provider_id=p),
    }
    calls = {"warm": args.calls, "cold": max(args.calls // 20, 100), "baseline": args.calls // 5}
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        # Interleaved rounds: machine noise hits every variant alike.
        for name, fn in variants.items():
            results[name].append(ns_per_call(fn, calls[name]))
    med = {name: statistics.median(values) for name, values in results.items()}

    print(f"first lookup in process (imports price data): {first_ms:.1f} ms")
    print(f"warm cost():      {med['warm']:9.0f} ns/call")
    print(f"cold lookup:      {med['cold']:9.0f} ns/call")
    print(f"genai calc_price: {med['baseline']:9.0f} ns/call")
    print(f"ratio warm/calc_price: {med['warm'] / med['baseline']:.3f}")
    print(f"ratio cold/calc_price: {med['cold'] / med['baseline']:.3f}")


if __name__ == "__main__":
    main()
