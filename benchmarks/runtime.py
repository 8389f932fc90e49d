"""Runtime benchmark: decode speed per model, and what prompt-cache reuse saves.

    python benchmarks/runtime.py [--models tiny tiny-large-vocab smollm2] [--tokens 128]

Reports decode tok/s and time to first token per model, and for a ~2,000-token
conversation the time to first token of the next turn with a cold cache versus with
the cache left by the previous turn (only the new turn is prefilled).
"""

from __future__ import annotations

import argparse
import statistics
import sys
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

SAMPLING = SamplingParams(temperature=0.8, min_p=0.0, repetition_penalty=1.0, seed=0)
PARAGRAPH = (
    "The expedition reached the northern ridge just before dusk. The guide pointed at the "
    "glacier below and explained how the ice had retreated over the last forty years, "
    "leaving behind moraines, meltwater lakes and a valley full of loose rock. "
)


def decode_speed(spec: str, tokens: int, runs: int) -> dict:
    model = load_model(spec)
    model.generate("warm up", max_tokens=8, sampling=SAMPLING)
    rates, ttfts = [], []
    for i in range(runs):
        model.reset_cache()
        result = model.generate(
            [{"role": "user", "content": f"Write a long story about a journey, part {i}."}],
            max_tokens=tokens,
            sampling=SAMPLING,
        )
        rates.append(result.stats.decode_tps)
        ttfts.append(result.stats.ttft_s)
    return {
        "model": spec,
        "quantization": model.info.quantization,
        "vocab": model.info.vocab_size,
        "decode_tps": statistics.median(rates),
        "ttft_ms": statistics.median(ttfts) * 1000,
        "tokens": tokens,
    }


def conversation(model, target_tokens: int) -> list[dict]:
    """Alternating turns until the rendered conversation is about `target_tokens` long."""
    messages: list[dict] = [{"role": "system", "content": "You are a helpful travel guide."}]
    turn = 0
    while model.count_tokens(model.chat_prompt(messages)) < target_tokens:
        messages.append({"role": "user", "content": f"Question {turn}: {PARAGRAPH}"})
        messages.append({"role": "assistant", "content": f"Answer {turn}: {PARAGRAPH}"})
        turn += 1
    return messages


def cache_reuse(spec: str, target_tokens: int, runs: int) -> dict:
    model = load_model(spec)
    history = conversation(model, target_tokens)
    cold, warm, cached, prompt = [], [], [], 0
    for i in range(runs):
        question = {"role": "user", "content": f"Follow-up {i}: how long is the hike back?"}
        # Warm: the previous call generated the last assistant turn of `history`.
        model.reset_cache()
        previous = model.generate(history[:-1], max_tokens=4, sampling=SAMPLING)
        convo = [*history[:-1], {"role": "assistant", "content": previous.text}, question]
        result = model.generate(convo, max_tokens=1, sampling=SAMPLING)
        warm.append(result.stats.ttft_s)
        cached.append(result.stats.cached_prompt_tokens)
        prompt = result.stats.prompt_tokens
        # Cold: the same prompt, empty cache.
        model.reset_cache()
        result = model.generate(convo, max_tokens=1, sampling=SAMPLING)
        cold.append(result.stats.ttft_s)
    return {
        "model": spec,
        "prompt_tokens": prompt,
        "cached_tokens": int(statistics.median(cached)),
        "cold_ttft_ms": statistics.median(cold) * 1000,
        "warm_ttft_ms": statistics.median(warm) * 1000,
        "ratio": statistics.median(cold) / statistics.median(warm),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "tiny-large-vocab", "smollm2"])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--context", type=int, default=2000)
    parser.add_argument(
        "--cache-models",
        nargs="+",
        default=None,
        help="models for the cache-reuse table (default: --models)",
    )
    args = parser.parse_args()

    print(f"Machine: {machine_description()}\n")
    print("| model | quantization | vocab | decode tok/s | TTFT (ms) |")
    print("|---|---|---:|---:|---:|")
    for spec in args.models:
        r = decode_speed(spec, args.tokens, args.runs)
        print(
            f"| {r['model']} | {r['quantization']} | {r['vocab']:,} | "
            f"{r['decode_tps']:.1f} | {r['ttft_ms']:.0f} |"
        )
    print(f"\nTime to first token of the next turn in a ~{args.context}-token conversation:\n")
    print("| model | prompt tokens | from cache | cold TTFT (ms) | warm TTFT (ms) | cold / warm |")
    print("|---|---:|---:|---:|---:|---:|")
    for spec in args.cache_models or args.models:
        r = cache_reuse(spec, args.context, args.runs)
        print(
            f"| {r['model']} | {r['prompt_tokens']} | {r['cached_tokens']} | "
            f"{r['cold_ttft_ms']:.0f} | {r['warm_ttft_ms']:.0f} | {r['ratio']:.1f}x |"
        )


if __name__ == "__main__":
    main()
