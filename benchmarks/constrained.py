"""Constrained-decoding cost: masks, decode speed, extraction, compile of a tool registry.

    python benchmarks/constrained.py [--model tiny-large-vocab] [--tokens 256] [--runs 5]
                                     [--extract-model smollm2]

1. Mask and apply, per token, at the model's vocabulary: the engine's packed bitmask
   (llguidance) over walks of real JSON texts; the numpy expansion of the bits into a
   logit bias (done while the forward pass runs); and applying it (add and clamp) as the
   marginal cost of sampling with the model's own sampler.
2. Decode speed: the same model and prompt, unconstrained versus constrained by a
   grammar that leaves nearly every token free (a JSON array of free strings), so the
   difference is the whole constraint (mask, budget check, bookkeeping). Interleaved
   runs, medians.
3. Extraction: the wall time of a JSON extraction into the shipped `invoice` schema
   (forced runs fast-forwarded) versus unconstrained generation of exactly the same
   number of tokens from the same prompt, with a real model (`--extract-model`, default
   smollm2: random weights write long random strings, which a real model does not).
4. Compile, cold: the call grammar of a 50-tool registry of BFCL definitions, and a
   hold-out extraction schema of the kind users write (refs, tagged unions, patterns,
   formats, counts), on the default engine and on the regex engine.
Per-token costs grow with vocabulary size, so the 100k vocabulary is the honest case;
ratios hold on any machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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

# `agent` first: it loads the fast BLAS (agent/fastpath.py) before `mlx.core`, as the
# CLI does; imported the other way round, a small model runs its quantized kernels.
from agent import SamplingParams, load_model  # isort: skip

import mlx.core as mx
from _machine import machine_description

from agent.constrained import llg, masks
from agent.constrained.compile import clear_memory_cache
from agent.structured import compile_output_type, extraction_messages, generate_structured
from schemas import shipped_schema
from schemas.compiler import clear_check_cache

FREE_STRINGS = {"type": "array", "items": {"type": "string"}}
# One source text per shipped schema, for the extraction timing.
TEXTS = {
    "invoice": (
        "Invoice INV-2024-0042 from Northwind Traders, 12 Harbour Road, Bristol, to Ann Lee, "
        "dated 2024-05-01, due 2024-05-31. Two items: 3 x desk lamp at 24.50 EUR and 1 x "
        "office chair at 189.00 EUR. Total 262.50 EUR. Paid by bank transfer."
    ),
    "contact": (
        "Hi, this is Maria Gomez, head of procurement at Acme Robotics. Reach me at "
        "maria.gomez@acme-robotics.example or +44 20 7946 0958; I am in the London office."
    ),
    "event": (
        "The Bristol Python meetup is on 14 March 2025 from 18:30 to 21:00 at the Engine "
        "Shed, Station Approach. Two talks on packaging and typing; free entry, register "
        "on the website."
    ),
    "product_review": (
        "I have used the Aeropress Go for a month. Great coffee, quick to clean and light "
        "for travel, but the cup is small and the lid rattles. Four stars; I would buy it "
        "again."
    ),
}
SHARED = Path(os.environ.get("EDGE_AGENT_SHARED_DATA", _HERE.parents[1] / "shared" / "data"))
# A schema of the kind users write, not in the shared data: refs, a tagged union,
# patterns, formats, counts.
HOLDOUT = {
    "$defs": {
        "money": {
            "type": "object",
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
            "required": ["amount", "currency"],
            "additionalProperties": False,
        },
        "card": {
            "type": "object",
            "properties": {
                "method": {"const": "card"},
                "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
            },
            "required": ["method", "last4"],
        },
        "transfer": {
            "type": "object",
            "properties": {
                "method": {"const": "transfer"},
                "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$"},
            },
            "required": ["method", "iban"],
        },
    },
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "issued": {"type": "string", "format": "date"},
        "seller": {"type": "string", "minLength": 1, "maxLength": 80},
        "email": {"type": "string", "format": "email"},
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}$"},
                    "qty": {"type": "integer", "minimum": 1, "maximum": 999},
                    "price": {"$ref": "#/$defs/money"},
                },
                "required": ["sku", "qty", "price"],
            },
        },
        "total": {"$ref": "#/$defs/money"},
        "payment": {"anyOf": [{"$ref": "#/$defs/card"}, {"$ref": "#/$defs/transfer"}]},
        "tags": {"type": "array", "items": {"enum": ["urgent", "disputed", "paid"]}},
    },
    "required": ["id", "issued", "seller", "lines", "total"],
    "additionalProperties": False,
}


# Set from the command line: the extraction's sampling and prompt-lookup draft length.
TEMPERATURE = 1.0
LOOKUP = 0


def sampling_for(seed: int) -> SamplingParams:
    return SamplingParams(TEMPERATURE, seed=seed)


def _unconstrained(model, prompt, tokens: int, seed: int):
    """Generate exactly `tokens` tokens (retrying seeds if the model stops early); the
    first attempt starts from a cold cache, retries reuse the prompt where the cache
    allows (a long prompt would otherwise be prefilled again for every retry)."""
    model.reset_cache()
    for attempt in range(20):
        sampling = SamplingParams(temperature=1.0, seed=seed * 100 + attempt)
        result = model.generate(prompt, max_tokens=tokens, sampling=sampling)
        if attempt == 0:
            first_prefill_s = result.stats.ttft_s
        if result.stats.generated_tokens == tokens:
            return result, first_prefill_s
    raise RuntimeError(f"could not generate {tokens} tokens unconstrained")


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def mask_costs(model, texts: list[str], schema: dict) -> dict:
    """Engine mask time per token over walks of `texts`; bias expansion; apply."""
    from agent.runtime import apply_logit_bias

    compiled = compile_output_type(model, schema)
    width = len(model.vocabulary)
    engine_us: list[float] = []
    for text in texts:
        constraint = compiled.grammar.start()
        for token in model.tokenizer.encode(text, add_special_tokens=False):
            t0 = time.perf_counter()
            constraint.packed_mask(1 << 20)
            engine_us.append((time.perf_counter() - t0) * 1e6)
            constraint.advance(token)
    logits = mx.random.normal((1, width))
    mx.eval(logits)
    words = masks.pack(random.Random(0).sample(range(width), width // 2), width)
    sampler = model.default_sampling.sampler()
    bias = masks.bias(words, width)
    mx.eval(bias)

    def sample(masked: bool) -> None:
        x = apply_logit_bias(logits, bias) if masked else logits
        sampler(x - mx.logsumexp(x, axis=-1, keepdims=True)).item()

    plain, applied, expand = [], [], []
    for _ in range(300):
        for flag, bucket in ((False, plain), (True, applied)):
            t0 = time.perf_counter()
            sample(flag)
            bucket.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        masks.bias(words, width)
        expand.append((time.perf_counter() - t0) * 1e6)
    return {
        "engine_p50": _pct(engine_us, 0.5),
        "engine_p99": _pct(engine_us, 0.99),
        "tokens": len(engine_us),
        "expand_us": statistics.median(expand),
        "apply_us": statistics.median(applied) - statistics.median(plain),
    }


def decode_overhead(model, tokens: int, runs: int) -> dict:
    prompt = [{"role": "user", "content": "List some words as a JSON array of strings."}]
    compile_output_type(model, FREE_STRINGS)  # compile once; runs use the cache
    free, constrained, mask_us, forced = [], [], [], []
    for i in range(runs):
        free.append(_unconstrained(model, prompt, tokens, i)[0].stats.decode_tps)
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


def extraction_overhead(model, name: str, runs: int) -> dict:
    """Extraction into shipped schema `name` against unconstrained generation of as many
    tokens from the same prompt: whole wall (prefill included, the same in both) and the
    decode phase alone (after the first token), where forced runs save forward passes."""
    schema = shipped_schema(name)
    prompt = extraction_messages(TEXTS[name], schema)
    walls, free_walls, decodes, free_decodes, token_counts, forced = [], [], [], [], [], []
    passes: list[int] = []
    free_passes: list[int] = []
    for i in range(runs):
        model.reset_cache()
        t0 = time.perf_counter()
        result = generate_structured(
            model, prompt, schema, max_tokens=600, sampling=sampling_for(i), lookup=LOOKUP
        )
        walls.append(time.perf_counter() - t0)
        decodes.append(result.stats.total_s - result.stats.ttft_s)
        n = result.stats.generated_tokens
        token_counts.append(n)
        forced.append(result.stats.forced_fraction)
        passes.append(result.stats.decode_forward_passes)
        free, prefill_s = _unconstrained(model, prompt, n, i)
        free_decodes.append(free.stats.total_s - free.stats.ttft_s)
        free_passes.append(free.stats.decode_forward_passes)
        # A cold prefill, then the decode of the attempt that ran to `n` tokens.
        free_walls.append(prefill_s + free_decodes[-1])
    return {
        "tokens": statistics.median(token_counts),
        "forced": statistics.median(forced),
        "passes": statistics.median(passes),
        # Forward passes against unconstrained decoding's: the wall ratio where a pass of
        # a few tokens costs what a pass of one does (memory-bound decoding on a GPU).
        "pass_ratio": statistics.median(passes) / max(1, statistics.median(free_passes)),
        "constrained_s": statistics.median(walls),
        "free_s": statistics.median(free_walls),
        "ratio": statistics.median(walls) / statistics.median(free_walls),
        "decode_s": statistics.median(decodes),
        "free_decode_s": statistics.median(free_decodes),
        "decode_ratio": statistics.median(decodes) / statistics.median(free_decodes),
    }


def _cold_compile_ms(model, schema, engine: str) -> tuple[float, str]:
    """(ms, engine), or (inf, why) when the engine refuses or times out (30 s).

    `schema` may be an OutputSpec (the agent's call payload) or any output type."""
    from agent.constrained import compile_output, resolve_output_type, target_for
    from agent.constrained.output_types import OutputSpec
    from agent.errors import UserError

    clear_memory_cache()
    llg.clear_cache()
    clear_check_cache()
    spec = schema if isinstance(schema, OutputSpec) else resolve_output_type(schema)
    t0 = time.perf_counter()
    try:
        compiled = compile_output(spec, target_for(model), engine=engine)  # type: ignore[arg-type]
    except UserError as exc:
        return float("inf"), f"{engine}: {type(exc).__name__}"
    return (time.perf_counter() - t0) * 1000, compiled.engine


def registry_of_bfcl_tools(count: int):
    """`count` distinct BFCL function definitions in one registry."""
    from tools import ToolRegistry

    registry = ToolRegistry()
    seen: set[str] = set()
    for line in (SHARED / "bfcl" / "BFCL_v4_multiple.json").open(encoding="utf-8"):
        for definition in json.loads(line)["function"]:
            if definition["name"] not in seen and len(seen) < count:
                seen.add(definition["name"])
                registry.add_definitions([definition])
        if len(seen) >= count:
            break
    return registry


def compile_costs(model) -> list[tuple[str, str, float]]:
    from agent.call_constraint import call_output_spec

    rows = []
    if (SHARED / "bfcl").is_dir():
        registry = registry_of_bfcl_tools(50)
        schema = call_output_spec(registry.call_schema())  # as the agent loop compiles it
        for engine, repeats in (("auto", 5), ("regex", 1)):
            times = [_cold_compile_ms(model, schema, engine) for _ in range(repeats)]
            name = f"{len(registry)}-tool BFCL call grammar"
            rows.append((name, times[0][1], statistics.median(t for t, _ in times)))
    for engine, repeats in (("auto", 5), ("regex", 1)):
        times = [_cold_compile_ms(model, HOLDOUT, engine) for _ in range(repeats)]
        rows.append(
            ("hold-out extraction schema", times[0][1], statistics.median(t for t, _ in times))
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-large-vocab")
    parser.add_argument("--extract-model", default="smollm2")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--engine", default="auto", help="engine of --extract-model")
    parser.add_argument(
        "--temp", type=float, default=1.0, help="extraction temperature (0: greedy)"
    )
    parser.add_argument(
        "--lookup", type=int, default=0, help="extraction: prompt-lookup draft tokens (0: off)"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--only", choices=["masks", "decode", "compile", "extraction"], default=None,
        help="run one part only",
    )  # fmt: skip
    args = parser.parse_args()
    global TEMPERATURE, LOOKUP
    TEMPERATURE, LOOKUP = args.temp, args.lookup
    parts = {args.only} if args.only else {"masks", "decode", "compile", "extraction"}
    os.environ["EDGE_AGENT_GRAMMAR_CACHE"] = "off"  # cold compiles are cold

    model = load_model(args.model, engine="mlx")
    model.generate("warm up", max_tokens=8)
    from agent.fastpath import fast_blas

    print(f"Machine: {machine_description()}; fast BLAS: {fast_blas() or 'none'}")
    print(f"Model: {args.model} ({model.info.vocab_size:,} tokens, {model.info.quantization})\n")

    if "masks" in parts:
        _report_masks(model)
    if "decode" in parts:
        _report_decode(model, args.tokens, args.runs)
    if "compile" in parts:
        _report_compile(model)
    if "extraction" in parts:
        _report_extraction(model, args.model, args.extract_model, args.runs, args.engine)


def _report_masks(model) -> None:
    texts = [
        json.dumps(value, separators=(",", ":"))
        for value in (
            ["alpha", "a longer string with several words in it", "gamma ray"],
            {"invoice_number": "INV-2024-0042", "seller": "Northwind Traders"},
        )
    ]
    m = mask_costs(model, texts[:1], FREE_STRINGS)
    invoice = mask_costs(model, [json.dumps(_invoice_example(), separators=(",", ":"))],
                         shipped_schema("invoice"))  # fmt: skip
    print(
        "Mask and apply per token (llguidance bitmask; its numpy expansion to a logit "
        "bias, overlapped with the forward pass in decoding; add + clamp, marginal):\n"
    )
    print("| walk | tokens | mask p50 µs | mask p99 µs | expand µs | apply µs |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in (("array of free strings", m), ("invoice instance", invoice)):
        print(
            f"| {name} | {r['tokens']} | {r['engine_p50']:.1f} | {r['engine_p99']:.1f} "
            f"| {r['expand_us']:.0f} | {r['apply_us']:.0f} |"
        )


def _report_decode(model, tokens: int, runs: int) -> None:
    d = decode_overhead(model, tokens, runs)
    print(f"\nDecode speed, {tokens} tokens, median of {runs} interleaved runs:\n")
    print("| unconstrained tok/s | constrained tok/s | ratio | constraint µs/token | forced |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {d['free_tps']:.1f} | {d['constrained_tps']:.1f} | {d['ratio']:.2f} | "
        f"{d['mask_us']:.0f} | {d['forced']:.0%} |"
    )


def _report_compile(model) -> None:
    print("\nCold compile (the grammar's first use in a process, no disk cache):\n")
    print("| grammar | engine that served it | compile ms |")
    print("|---|---|---:|")
    for name, engine, ms in compile_costs(model):
        print(f"| {name} | {engine} | {'did not compile' if ms == float('inf') else f'{ms:.1f}'} |")


def _report_extraction(
    model, model_name: str, extract_model: str, runs: int, engine: str = "auto"
) -> None:
    for name in dict.fromkeys([model_name, extract_model]):
        same = name == model_name and engine in ("auto", model.engine)
        extractor = model if same else load_model(name, engine=engine)
        print(
            f"\nJSON extraction ({name}, {extractor.engine}, temperature {TEMPERATURE}, "
            f"lookup {LOOKUP}) vs unconstrained generation of as many tokens "
            f"from the same prompt, median of {runs}:\n"
        )
        print(
            "| schema | tokens | forced | passes | pass ratio | extraction wall (s) "
            "| unconstrained wall (s) | ratio | extraction decode (s) | unconstrained decode (s) "
            "| decode ratio |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for schema_name in TEXTS:
            e = extraction_overhead(extractor, schema_name, runs)
            print(
                f"| {schema_name} | {e['tokens']:.0f} | {e['forced']:.0%} | {e['passes']:.0f} | "
                f"{e['pass_ratio']:.2f} | "
                f"{e['constrained_s']:.2f} | {e['free_s']:.2f} | {e['ratio']:.2f} | "
                f"{e['decode_s']:.2f} | {e['free_decode_s']:.2f} | {e['decode_ratio']:.2f} |"
            )


def _invoice_example() -> dict:
    return {
        "invoice_number": "INV-2024-0042",
        "issue_date": "2024-05-01",
        "due_date": "2024-05-31",
        "seller": "Northwind Traders",
        "buyer": "Ann Lee",
        "currency": "EUR",
        "line_items": [
            {"description": "desk lamp", "quantity": 3, "unit_price": 24.5},
            {"description": "office chair", "quantity": 1, "unit_price": 189.0},
        ],
        "total": 262.5,
    }


if __name__ == "__main__":
    main()
