"""Constrained-decoding overhead on `tiny-large-vocab` (49k-token vocabulary).

    python benchmarks/constrained.py [--model tiny-large-vocab] [--tokens 256] [--runs 5]

1. Decode speed: the same model and prompt, unconstrained versus constrained by a
   grammar that leaves nearly every token free (a JSON array of free strings), so
   the difference is the cost of the mask itself. Interleaved runs, medians.
2. Extraction: the wall time of a JSON extraction into the shipped `invoice` schema
   (forced runs fast-forwarded, grammar from the cache) versus unconstrained
   generation of exactly the same number of tokens from the same prompt.
Per-token mask cost grows with vocabulary size, so the large vocabulary is the
honest case; ratios hold on any machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

from _machine import machine_description

from agent import SamplingParams, load_model
from agent.structured import compile_output_type, extraction_messages, generate_structured
from schemas import shipped_schema

FREE_STRINGS = {"type": "array", "items": {"type": "string"}}
TEXT = (
    "Invoice INV-2024-0042 from Northwind Traders, 12 Harbour Road, Bristol, to Ann Lee, "
    "dated 2024-05-01, due 2024-05-31. Two items: 3 x desk lamp at 24.50 EUR and 1 x "
    "office chair at 189.00 EUR. Total 262.50 EUR. Paid by bank transfer."
)


def _unconstrained(model, prompt, tokens: int, seed: int):
    """Generate exactly `tokens` tokens (retrying seeds if the model stops early)."""
    for attempt in range(20):
        model.reset_cache()
        sampling = SamplingParams(temperature=1.0, seed=seed * 100 + attempt)
        result = model.generate(prompt, max_tokens=tokens, sampling=sampling)
        if result.stats.generated_tokens == tokens:
            return result
    raise RuntimeError(f"could not generate {tokens} tokens unconstrained")


def decode_overhead(model, tokens: int, runs: int) -> dict:
    prompt = [{"role": "user", "content": "List some words as a JSON array of strings."}]
    compile_output_type(model, FREE_STRINGS)  # compile once; runs use the cache
    free, constrained, mask_us, forced = [], [], [], []
    for i in range(runs):
        free.append(_unconstrained(model, prompt, tokens, i).stats.decode_tps)
        model.reset_cache()
        result = generate_structured(
            model,
            prompt,
            FREE_STRINGS,
            max_tokens=tokens,
            sampling=SamplingParams(temperature=1.0, seed=i),
        )
        constrained.append(result.stats.decode_tps)
        mask_us.append(result.stats.mask_us_per_token)
        forced.append(result.stats.forced_fraction)
    return {
        "free_tps": statistics.median(free),
        "constrained_tps": statistics.median(constrained),
        "ratio": statistics.median(constrained) / statistics.median(free),
        "mask_us": statistics.median(mask_us),
        "forced": statistics.median(forced),
    }


def extraction_overhead(model, runs: int) -> dict:
    schema = shipped_schema("invoice")
    prompt = extraction_messages(TEXT, schema)
    _, _, cold_ms, _ = compile_output_type(model, schema)
    walls, free_walls, token_counts, forced = [], [], [], []
    for i in range(runs):
        model.reset_cache()
        t0 = time.perf_counter()
        result = generate_structured(
            model, prompt, schema, max_tokens=600, sampling=SamplingParams(1.0, seed=i)
        )
        walls.append(time.perf_counter() - t0)
        n = result.stats.generated_tokens
        token_counts.append(n)
        forced.append(result.stats.forced_fraction)
        t0 = time.perf_counter()
        _unconstrained(model, prompt, n, i)
        free_walls.append(time.perf_counter() - t0)
    return {
        "tokens": statistics.median(token_counts),
        "forced": statistics.median(forced),
        "constrained_s": statistics.median(walls),
        "free_s": statistics.median(free_walls),
        "ratio": statistics.median(walls) / statistics.median(free_walls),
        "compile_ms": cold_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-large-vocab")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    model = load_model(args.model)
    model.generate("warm up", max_tokens=8)
    print(f"Machine: {machine_description()}")
    print(f"Model: {args.model} ({model.info.vocab_size:,} tokens, {model.info.quantization})\n")

    d = decode_overhead(model, args.tokens, args.runs)
    print(f"Decode speed, {args.tokens} tokens, median of {args.runs} interleaved runs:\n")
    print("| unconstrained tok/s | constrained tok/s | ratio | mask µs/token | forced |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {d['free_tps']:.1f} | {d['constrained_tps']:.1f} | {d['ratio']:.2f} | "
        f"{d['mask_us']:.0f} | {d['forced']:.0%} |"
    )

    e = extraction_overhead(model, args.runs)
    print("\nJSON extraction (`invoice` schema) vs unconstrained generation of as many tokens:\n")
    print("| tokens | forced | extraction wall (s) | unconstrained wall (s) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {e['tokens']:.0f} | {e['forced']:.0%} | {e['constrained_s']:.2f} | "
        f"{e['free_s']:.2f} | {e['ratio']:.2f} |"
    )
    print(f"\n(grammar compile for `invoice`, first in this process: {e['compile_ms']:.0f} ms)")


if __name__ == "__main__":
    main()
