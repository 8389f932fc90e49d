"""Coverage of real-world JSON Schemas (JSONSchemaBench) with the random-weight `tiny` model.

    python benchmarks/schema_coverage.py [--sample N] [--workers W] [--subsets a,b]
                                         [--results FILE.jsonl]

For every schema of a subset (or a seeded sample of N per subset): compile it for
`tiny` (compile timeout 40 s, as in the paper), generate one output (generation
timeout 40 s) and validate it with python-jsonschema, Draft 2020-12 semantics and format
checks on, as the paper does. Random weights are the worst case for a grammar: every
output that validates was forced to by the grammar alone.

Over `maskbench_tests.jsonl.gz`, each schema's known-valid and known-invalid instances
are serialised compactly (in their own key order, then in the schema's property order)
and their tokens walked through the compiled automaton: a schema passes when every
valid instance is accepted and every invalid one rejected. The grammar is sound by
construction (it narrows long strings and large arrays rather than risk invalid
output), so "rejects every invalid instance" is the safety figure and "accepts every
valid instance" measures how much narrowing costs.

Results go to a JSONL file, one line per schema, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsonschemabench"
SUBSETS = (
    "github_trivial",
    "github_easy",
    "github_medium",
    "github_hard",
    "github_ultra",
    "kubernetes",
    "snowplow",
    "washingtonpost",
    "glaiveai2k",
    "jsonschemastore",
)
# Guidance's empirical coverage in the paper (Table 4): the targets.
GUIDANCE = {
    "github_easy": 0.86,
    "github_medium": 0.69,
    "github_hard": 0.41,
    "kubernetes": 0.91,
    "snowplow": 0.82,
    "washingtonpost": 0.86,
    "glaiveai2k": 0.96,
    "jsonschemastore": 0.30,
}
COMPILE_TIMEOUT = 40.0
GENERATION_TIMEOUT = 40.0
MAX_TOKENS = 4096  # the most any output may take; see _budget


def _budget(grammar) -> int:
    """Tokens allowed for one output: three times the shortest, 1024 to MAX_TOKENS.

    Random weights wander until the budget mask closes the value, so the budget sets
    the generation time; the paper's 40 s generation limit would otherwise measure this
    machine's speed rather than the grammar.
    """
    return min(MAX_TOKENS, max(1024, 3 * grammar.min_tokens()))


_MODEL = None


def _model():
    global _MODEL
    if _MODEL is None:
        from agent import load_model

        _MODEL = load_model("tiny")
    return _MODEL


def _serialisations(instance: Any, schema: Any) -> list[str]:
    """Compact JSON in the instance's key order, and in the schema's property order."""
    texts = [json.dumps(instance, separators=(",", ":"), ensure_ascii=False)]
    order = list((schema.get("properties") or {}) if isinstance(schema, dict) else ())

    def reorder(value: Any, top: bool) -> Any:
        if isinstance(value, dict):
            keys = sorted(value, key=lambda k: order.index(k) if top and k in order else 10**6)
            return {k: reorder(value[k], False) for k in keys}
        if isinstance(value, list):
            return [reorder(v, False) for v in value]
        return value

    other = json.dumps(reorder(instance, True), separators=(",", ":"), ensure_ascii=False)
    if other not in texts:
        texts.append(other)
    return texts


def _accepts(grammar, model, text: str) -> bool:
    state = grammar.initial_state
    for token in model.tokenizer.encode(text, add_special_tokens=False):
        state = grammar.next_state(state, token)
        if state is None:
            return False
    return grammar.next_state(state, grammar.vocab.eos_ids[0]) is not None


def run_one(subset: str, schema_id: str, schema: Any, tests: list | None) -> dict[str, Any]:
    """Compile, generate, validate; and walk maskbench instances when given."""
    import jsonschema

    from agent import SamplingParams
    from agent.constrained.compile import clear_memory_cache
    from agent.errors import UserError
    from agent.structured import compile_output_type, stream_structured
    from schemas.errors import SchemaCompileError

    model = _model()
    record: dict[str, Any] = {"subset": subset, "id": schema_id}
    clear_memory_cache()  # time every compile as the user's first would be (disk cache off)
    t0 = time.perf_counter()
    try:
        _, grammar, _, _ = compile_output_type(model, schema, compile_timeout=COMPILE_TIMEOUT)
    except SchemaCompileError as exc:
        record.update(compiled=False, error=f"{type(exc).__name__}: {str(exc)[:160]}")
        return record
    except Exception as exc:  # a crash is a finding, not a reason to stop the run
        record.update(compiled=False, error=f"crash {type(exc).__name__}: {str(exc)[:160]}")
        return record
    record.update(compiled=True, compile_ms=(time.perf_counter() - t0) * 1000)

    deadline = time.monotonic() + GENERATION_TIMEOUT
    t1 = time.perf_counter()
    try:
        result = None
        for item in stream_structured(
            model,
            [{"role": "user", "content": "Output JSON."}],
            schema,
            max_tokens=_budget(grammar),
            sampling=SamplingParams(temperature=1.0, seed=0),
            compile_timeout=COMPILE_TIMEOUT,
            should_stop=lambda: time.monotonic() > deadline,
        ):
            result = item
        text = result.text  # type: ignore[union-attr]
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(json.loads(text)))
        record.update(
            valid=not errors,
            tokens=result.stats.generated_tokens,  # type: ignore[union-attr]
            generation_s=time.perf_counter() - t1,
        )
        if errors:
            record["invalid"] = errors[0].message[:200]
    except UserError as exc:
        record.update(valid=False, error=f"{type(exc).__name__}: {str(exc)[:160]}")
    except Exception as exc:  # an output that does not even parse: counted as invalid
        record.update(valid=False, invalid=f"{type(exc).__name__}: {str(exc)[:160]}")

    if tests:
        valid = [t["data"] for t in tests if t["valid"]]
        invalid = [t["data"] for t in tests if not t["valid"]]
        record["mask_valid"] = [len(valid), 0]
        record["mask_invalid"] = [len(invalid), 0]
        for data in valid:
            if any(_accepts(grammar, model, s) for s in _serialisations(data, schema)):
                record["mask_valid"][1] += 1
        for data in invalid:
            if not any(_accepts(grammar, model, s) for s in _serialisations(data, schema)):
                record["mask_invalid"][1] += 1
    return record


def _load_maskbench() -> dict[tuple[str, str], list]:
    import ast

    tests: dict[tuple[str, str], list] = {}
    with gzip.open(DATA / "maskbench_tests.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            data = row["tests"]
            tests[(row["subset"], row["id"])] = (
                ast.literal_eval(data) if isinstance(data, str) else data
            )
    return tests


def _tasks(subsets: list[str], sample: int | None, seed: int) -> list[tuple[str, str, Any]]:
    tasks = []
    for subset in subsets:
        rows = [json.loads(line) for line in (DATA / f"{subset}.jsonl").open(encoding="utf-8")]
        if sample is not None and sample < len(rows):
            rows = random.Random(f"{seed}:{subset}").sample(rows, sample)
        tasks.extend((subset, row["id"], row["schema"]) for row in rows)
    return tasks


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summarise(records: list[dict[str, Any]], subsets: list[str]) -> str:
    by_subset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_subset[r["subset"]].append(r)
    lines = [
        "| subset | schemas | compile | valid output | invalid outputs | Guidance (paper) "
        "| compile p50 ms | compile p90 ms | maskbench: all valid accepted "
        "| maskbench: all invalid rejected |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for subset in subsets:
        rows = by_subset.get(subset, [])
        if not rows:
            continue
        n = len(rows)
        compiled = [r for r in rows if r.get("compiled")]
        valid = [r for r in compiled if r.get("valid")]
        invalid = [r for r in compiled if r.get("invalid")]
        times = [r["compile_ms"] for r in compiled]
        masked = [r for r in compiled if "mask_valid" in r]
        acc = sum(1 for r in masked if r["mask_valid"][0] == r["mask_valid"][1])
        rej = sum(1 for r in masked if r["mask_invalid"][0] == r["mask_invalid"][1])
        target = GUIDANCE.get(subset)
        lines.append(
            f"| {subset} | {n} | {len(compiled) / n:.2f} | {len(valid) / n:.2f} | {len(invalid)} "
            f"| {'' if target is None else f'{target:.2f}'} "
            f"| {_percentile(times, 0.5):.0f} | {_percentile(times, 0.9):.0f} "
            f"| {acc}/{len(masked)} | {rej}/{len(masked)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="schemas per subset (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--subsets", default=",".join(SUBSETS))
    parser.add_argument("--results", type=Path, default=Path("schema_coverage.jsonl"))
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    subsets = [s for s in args.subsets.split(",") if s]

    done: dict[tuple[str, str], dict[str, Any]] = {}
    if args.results.exists():
        for line in args.results.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            done[(r["subset"], r["id"])] = r
    tasks = _tasks(subsets, args.sample, args.seed)
    wanted = {(s, i) for s, i, _ in tasks}
    todo = [t for t in tasks if (t[0], t[1]) not in done]
    if not args.summary_only and todo:
        maskbench = _load_maskbench()
        print(f"{len(todo)} schemas to run ({len(done)} already done)", file=sys.stderr)
        t0 = time.time()
        with (
            args.results.open("a", encoding="utf-8") as out,
            ProcessPoolExecutor(args.workers) as pool,
        ):
            futures = [
                pool.submit(run_one, s, i, schema, maskbench.get((s, i))) for s, i, schema in todo
            ]
            for k, future in enumerate(as_completed(futures), 1):
                r = future.result()
                done[(r["subset"], r["id"])] = r
                out.write(json.dumps(r) + "\n")
                out.flush()
                if k % 10 == 0 or k == len(futures):
                    rate = k / (time.time() - t0)
                    print(
                        f"  {k}/{len(futures)} ({rate:.2f} schemas/s, "
                        f"eta {(len(futures) - k) / rate / 60:.0f} min)",
                        file=sys.stderr,
                    )
    records = [r for key, r in done.items() if key in wanted]
    from _machine import machine_description

    print(f"Machine: {machine_description()}")
    sample = f"a seeded sample of {args.sample} per subset" if args.sample else "every schema"
    print(
        f"Schemas: {sample}; model: tiny (random weights); max_tokens 3x the shortest "
        f"output, 1024 to {MAX_TOKENS}; compile and generation timeouts 40 s each\n"
    )
    print(summarise(records, subsets))


if __name__ == "__main__":
    main()
