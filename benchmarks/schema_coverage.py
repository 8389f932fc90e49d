"""Coverage of real-world JSON Schemas (JSONSchemaBench) with a random-weight model.

    python benchmarks/schema_coverage.py [--model tiny-large-vocab] [--engine auto]
        [--sample N] [--workers 2] [--subsets a,b] [--results FILE.jsonl] [--summary-only]

For every schema of a subset (or a seeded sample of N per subset): compile it cold for the
model's vocabulary (compile timeout 40 s, as in the paper), generate one output
(generation timeout 40 s) with the random-weight model and validate it with
python-jsonschema, Draft 2020-12 semantics and format checks on, as the paper does.
Random weights are the worst case for a grammar: every output that validates was forced
to by the grammar alone. `tiny-large-vocab` has the 100k cl100k vocabulary (LFM2's is
65k); with `tiny`'s 1k vocabulary an automaton is ~100x smaller and hides compile costs.

`--engine auto` is the default path (llguidance, its rewrite of refused keywords, the regex
compiler masked by llguidance, the regex automaton); each record says which route served
it, so "llguidance alone" (the first route) is read off the same run. `--engine regex` is
today's compiler alone (schema -> regex -> outlines-core automaton).

Over `maskbench_tests.jsonl.gz`, each schema's known-valid and known-invalid instances are
serialised compactly (in their own key order, then in the schema's property order) and
walked token by token through the compiled grammar, timing every mask: a schema passes
when every valid instance is accepted and every invalid one rejected.

Each schema runs in a worker process watched by the parent: a worker that stops
answering is killed and the schema recorded as a hang, so no schema can stall the run.
Results go to a JSONL file, one line per schema, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import select
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(ROOT),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

DATA = Path(os.environ.get("EDGE_AGENT_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATA = DATA / "jsonschemabench"
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
# Guidance's coverage in the paper (Table 4, declared / empirical): the targets.
GUIDANCE = {
    "github_easy": (0.90, 0.86),
    "github_medium": (0.79, 0.69),
    "github_hard": (0.60, 0.41),
    "kubernetes": (0.98, 0.91),
    "snowplow": (0.87, 0.82),
    "washingtonpost": (0.96, 0.86),
    "glaiveai2k": (0.98, 0.96),
    "jsonschemastore": (0.40, 0.30),
}
COMPILE_TIMEOUT = 40.0
GENERATION_TIMEOUT = 40.0
HANG_SECONDS = 240.0  # no answer from a worker for this long: a hang
MAX_TOKENS = 1024
MASK_SAMPLES = 64  # mask timings kept per schema (a uniform sample)


def budget_for(min_tokens: int) -> int:
    """Tokens allowed for one output: twice the shortest plus 32, at most MAX_TOKENS.

    Random weights wander until the budget closes the value, so the budget sets the
    generation time; a larger one would measure this machine's speed, not the grammar.
    """
    return min(MAX_TOKENS, max(min_tokens, 2 * min_tokens + 32))


# ------------------------------------------------------------------ worker side
class Worker:
    """Runs schemas in this process (the model is loaded once)."""

    def __init__(self, model_name: str, engine: str) -> None:
        os.environ["EDGE_AGENT_GRAMMAR_CACHE"] = "off"  # every compile is cold
        from agent import load_model
        from agent.constrained import target_for
        from agent.structured import compile_output_type

        self.model = load_model(model_name)
        self.engine = engine
        target_for(self.model).llg_tokenizer  # built once per model, not per compile  # noqa: B018
        compile_output_type(self.model, {"type": "object"}, engine=engine)  # imports, warm-up

    def run(self, subset: str, schema_id: str, schema: Any, tests: list | None) -> dict:
        import jsonschema

        from agent import SamplingParams
        from agent.constrained import llg
        from agent.constrained.compile import clear_memory_cache
        from agent.errors import UserError
        from agent.structured import compile_output_type, stream_structured

        model = self.model
        record: dict[str, Any] = {"subset": subset, "id": schema_id}
        clear_memory_cache()
        llg.clear_cache()
        t0 = time.perf_counter()
        try:
            compiled = compile_output_type(
                model, schema, compile_timeout=COMPILE_TIMEOUT, engine=self.engine
            )
            min_tokens = compiled.grammar.min_tokens()
        except UserError as exc:
            record.update(compiled=False, error=f"{type(exc).__name__}: {str(exc)[:160]}")
            return record
        except Exception as exc:  # a crash is a finding, not a reason to stop the run
            record.update(compiled=False, error=f"crash {type(exc).__name__}: {str(exc)[:160]}")
            return record
        record.update(
            compiled=True,
            compile_ms=(time.perf_counter() - t0) * 1000,
            engine=compiled.engine,
            route=compiled.route,
            min_tokens=min_tokens,
        )
        deadline = time.monotonic() + GENERATION_TIMEOUT
        t1 = time.perf_counter()
        try:
            result = None
            for item in stream_structured(
                model,
                [{"role": "user", "content": "Output JSON."}],
                schema,
                max_tokens=budget_for(min_tokens),
                sampling=SamplingParams(temperature=1.0, seed=0),
                compile_timeout=COMPILE_TIMEOUT,
                engine=self.engine,
                should_stop=lambda: time.monotonic() > deadline,
            ):
                result = item
            text = result.text  # type: ignore[union-attr]
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
            value = json.loads(text)
            errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value))
            record.update(
                valid=not errors,
                tokens=result.stats.generated_tokens,  # type: ignore[union-attr]
                generation_s=time.perf_counter() - t1,
                constraint_us=result.stats.mask_us_per_token,  # type: ignore[union-attr]
            )
            if errors:
                record["invalid"] = errors[0].message[:200]
                record["output"] = text[:500]
        except UserError as exc:  # cancelled at the deadline, budget: not an invalid output
            record.update(valid=False, error=f"{type(exc).__name__}: {str(exc)[:160]}")
        except Exception as exc:  # an output that does not even parse is an invalid output
            record.update(valid=False, invalid=f"{type(exc).__name__}: {str(exc)[:160]}")
        if tests:
            record.update(self._maskbench(compiled.grammar, schema, tests))
        return record

    def _maskbench(self, grammar: Any, schema: Any, tests: list) -> dict[str, Any]:
        valid = [t["data"] for t in tests if t["valid"]]
        invalid = [t["data"] for t in tests if not t["valid"]]
        times: list[float] = []
        accepted = sum(
            1 for d in valid if any(self._walk(grammar, s, times) for s in _texts(d, schema))
        )
        rejected = sum(
            1 for d in invalid if not any(self._walk(grammar, s, times) for s in _texts(d, schema))
        )
        sample = random.Random(0).sample(times, min(MASK_SAMPLES, len(times)))
        return {
            "mask_valid": [len(valid), accepted],
            "mask_invalid": [len(invalid), rejected],
            "mask_us": [round(t * 1e6, 1) for t in sample],
        }

    def _walk(self, grammar: Any, text: str, times: list[float]) -> bool:
        """Whether the grammar accepts `text` token by token, timing each mask (the
        engine's packed bitmask, before it is expanded for the logits)."""
        constraint = grammar.start()
        budget = 1 << 20
        for token in self.model.tokenizer.encode(text, add_special_tokens=False):
            t0 = time.perf_counter()
            words = constraint.packed_mask(budget)
            times.append(time.perf_counter() - t0)
            if not (int(words[token >> 5]) >> (token & 31)) & 1:
                return False
            try:
                constraint.advance(token)
            except RuntimeError:
                return False
        words = constraint.packed_mask(budget)
        return any((int(words[e >> 5]) >> (e & 31)) & 1 for e in grammar.end_ids)


def _texts(instance: Any, schema: Any) -> list[str]:
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


def worker_main(model_name: str, engine: str) -> None:
    """Serve one JSON task a line on stdin, one JSON record a line on stdout."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr
    worker = Worker(model_name, engine)
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        out.write(json.dumps(worker.run(**task)) + "\n")


# ------------------------------------------------------------------ parent side
class Supervisor:
    """Worker processes fed one schema at a time; a silent worker is killed."""

    def __init__(self, workers: int, model: str, engine: str) -> None:
        self.args = [sys.executable, __file__, "--worker", "--model", model, "--engine", engine]
        self.failures: list[dict[str, Any]] = []
        self.procs: list[dict[str, Any]] = [self._start() for _ in range(workers)]

    def _start(self) -> dict[str, Any]:
        proc = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline()  # the model loads before the first task
        if not ready:
            raise RuntimeError("a benchmark worker failed to start")
        return {"proc": proc, "task": None, "since": 0.0}

    def run(self, tasks: list[dict[str, Any]], on_record) -> None:
        pending = list(reversed(tasks))
        while pending or any(w["task"] for w in self.procs):
            for w in self.procs:
                if w["task"] is None and pending:
                    w["task"] = pending.pop()
                    w["since"] = time.monotonic()
                    w["proc"].stdin.write(json.dumps(w["task"]) + "\n")
                    w["proc"].stdin.flush()
            busy = {w["proc"].stdout: w for w in self.procs if w["task"] is not None}
            ready, _, _ = select.select(list(busy), [], [], 5.0)
            for stream in ready:
                w = busy[stream]
                line = stream.readline()
                if line:
                    on_record(json.loads(line))
                    w["task"] = None
                else:  # the worker died (out of memory?)
                    self._replace(w, "crash: the worker process died")
            now = time.monotonic()
            for w in self.procs:
                if w["task"] is not None and now - w["since"] > HANG_SECONDS:
                    self._replace(w, f"hang: no answer in {HANG_SECONDS:.0f} s")

    def _replace(self, w: dict[str, Any], why: str) -> None:
        task = w["task"]
        self._on_failure(task, why)
        w["proc"].kill()
        w["proc"].wait()
        fresh = self._start()
        w.update(fresh)

    def _on_failure(self, task: dict[str, Any], why: str) -> None:
        self.failures.append(
            {"subset": task["subset"], "id": task["schema_id"], "compiled": False,
             "error": why, "hang": why.startswith("hang")}
        )  # fmt: skip

    def close(self) -> None:
        for w in self.procs:
            w["proc"].stdin.close()
            w["proc"].wait(timeout=30)


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


# ------------------------------------------------------------------ report
def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _rows(records: list[dict[str, Any]], first_route_only: bool) -> list[dict[str, Any]]:
    """Records as one engine saw them: with `first_route_only`, what llguidance alone
    compiled (anything served by a later route counts as not compiled)."""
    if not first_route_only:
        return records
    out = []
    for r in records:
        if r.get("compiled") and r.get("route") != "llguidance":
            r = {"subset": r["subset"], "id": r["id"], "compiled": False}
        out.append(r)
    return out


def summarise(records: list[dict[str, Any]], subsets: list[str], first_route_only: bool) -> str:
    records = _rows(records, first_route_only)
    by_subset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_subset[r["subset"]].append(r)
    lines = [
        "| subset | schemas | compiled | valid output | Guidance (paper) decl. / emp. "
        "| invalid outputs | hangs | compile p50 / p90 / max ms | mask p50 / p99 µs "
        "| maskbench all valid accepted | maskbench all invalid rejected |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    everything: dict[str, list] = defaultdict(list)
    for subset in [*subsets, "all"]:
        rows = records if subset == "all" else by_subset.get(subset, [])
        if not rows:
            continue
        n = len(rows)
        compiled = [r for r in rows if r.get("compiled")]
        valid = [r for r in compiled if r.get("valid")]
        invalid = [r for r in compiled if r.get("invalid")]
        hangs = [r for r in rows if r.get("hang")]
        times = [r["compile_ms"] for r in compiled]
        masks = [t for r in compiled for t in r.get("mask_us", [])]
        masked = [r for r in compiled if "mask_valid" in r]
        acc = sum(1 for r in masked if r["mask_valid"][0] == r["mask_valid"][1])
        rej = sum(1 for r in masked if r["mask_invalid"][0] == r["mask_invalid"][1])
        paper = GUIDANCE.get(subset)
        everything["n"].append(n)
        lines.append(
            f"| {subset} | {n} | {len(compiled) / n:.2f} | {len(valid) / n:.2f} "
            f"| {'' if paper is None else f'{paper[0]:.2f} / {paper[1]:.2f}'} "
            f"| {len(invalid)} | {len(hangs)} "
            f"| {_pct(times, 0.5):.1f} / {_pct(times, 0.9):.1f} / {max(times, default=0):.0f} "
            f"| {_pct(masks, 0.5):.0f} / {_pct(masks, 0.99):.0f} "
            f"| {acc}/{len(masked)} | {rej}/{len(masked)} |"
        )
    return "\n".join(lines)


def routes(records: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        counts[r.get("route") or ("hang" if r.get("hang") else "not compiled")] += 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-large-vocab")
    parser.add_argument("--engine", default="auto", choices=("auto", "llguidance", "regex"))
    parser.add_argument("--sample", type=int, default=None, help="schemas per subset (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--subsets", default=",".join(SUBSETS))
    parser.add_argument("--results", type=Path, default=Path("schema_coverage.jsonl"))
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.model, args.engine)
        return
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
        count = 0
        with args.results.open("a", encoding="utf-8") as out:

            def on_record(r: dict[str, Any]) -> None:
                nonlocal count
                done[(r["subset"], r["id"])] = r
                out.write(json.dumps(r) + "\n")
                out.flush()
                count += 1
                if count % 20 == 0 or count == len(todo):
                    rate = count / (time.time() - t0)
                    print(
                        f"  {count}/{len(todo)} ({rate:.2f} schemas/s, "
                        f"eta {(len(todo) - count) / rate / 60:.0f} min)",
                        file=sys.stderr,
                    )

            supervisor = Supervisor(args.workers, args.model, args.engine)
            supervisor.run(
                [
                    {"subset": s, "schema_id": i, "schema": schema, "tests": maskbench.get((s, i))}
                    for s, i, schema in todo
                ],
                on_record,
            )
            for r in supervisor.failures:
                on_record(r)
            supervisor.close()
    records = [r for key, r in done.items() if key in wanted]
    from _machine import machine_description

    print(f"Machine: {machine_description()}")
    sample = f"a seeded sample of {args.sample} per subset" if args.sample else "every schema"
    print(
        f"Schemas: {sample}; model: {args.model} (random weights); engine: {args.engine}; "
        f"max_tokens 2x the shortest output + 32 (at most {MAX_TOKENS}); compile and "
        f"generation timeouts 40 s each\n"
    )
    print(summarise(records, subsets, first_route_only=False))
    if args.engine == "auto":
        print(f"\nRoutes: {routes(records)}\n")
        print("llguidance alone (the first route of the same run):\n")
        print(summarise(records, subsets, first_route_only=True))


if __name__ == "__main__":
    main()
