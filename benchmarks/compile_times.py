"""Cold compile times of every JSONSchemaBench schema, alone in one process.

    python benchmarks/compile_times.py [--model tiny-large-vocab] [--results coverage.jsonl]
        [--timeout 10]

`schema_coverage.py` times each compile too, but beside a generation and a maskbench
walk in two workers, so on a 2-core machine its compile times carry the load of the
other worker. This script only compiles: each schema cold (no memory or disk cache, the
meta-schema check forgotten), one after another, on the default path, and reports
p50 / p90 / p99 / max per subset, and how long the schemas no route serves take to be
refused (a refusal is an answer too: it should come as fast as a compile). With
`--results` (a `schema_coverage.py` results file), schemas that did not compile there
are left out (the count is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

from _machine import machine_description
from schema_coverage import DATA, SUBSETS, _pct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-large-vocab")
    parser.add_argument("--results", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per compile")
    args = parser.parse_args()
    os.environ["EDGE_AGENT_GRAMMAR_CACHE"] = "off"

    from agent import load_model
    from agent.constrained import llg, target_for
    from agent.constrained.compile import clear_memory_cache
    from agent.errors import UserError
    from agent.structured import compile_output_type
    from schemas.compiler import clear_check_cache

    skip: set[tuple[str, str]] = set()
    if args.results is not None:
        for line in args.results.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if not r.get("compiled"):
                skip.add((r["subset"], r["id"]))
    model = load_model(args.model)
    target_for(model).llg_tokenizer  # built once per model, not per compile  # noqa: B018
    compile_output_type(model, {"type": "object"})  # imports, warm-up

    rows: list[str] = []
    everything: list[float] = []
    slowest: list[tuple[float, str, str, str]] = []  # (ms, subset, id, route)
    refusals: list[tuple[float, str, str, str]] = []  # (ms, subset, id, why)
    t_start = time.time()
    for subset in SUBSETS:
        times: list[float] = []
        for line in (DATA / f"{subset}.jsonl").open(encoding="utf-8"):
            row: dict[str, Any] = json.loads(line)
            if (subset, row["id"]) in skip:
                continue
            clear_memory_cache()
            llg.clear_cache()
            clear_check_cache()
            t0 = time.perf_counter()
            try:
                compiled = compile_output_type(model, row["schema"], compile_timeout=args.timeout)
            except UserError as exc:
                ms = (time.perf_counter() - t0) * 1000
                refusals.append((ms, subset, row["id"], str(exc).split(":")[0][:60]))
                continue
            times.append((time.perf_counter() - t0) * 1000)
            slowest = sorted([*slowest, (times[-1], subset, row["id"], compiled.route)])[-10:]
        everything += times
        rows.append(_row(subset, times))
        print(f"  {subset}: {len(times)} compiled, {time.time() - t_start:.0f} s", file=sys.stderr)
    print(f"Machine: {machine_description()}")
    print(
        f"Model: {args.model}; {len(everything)} schemas compiled cold, one at a time; "
        f"{len(skip)} left out (did not compile in {args.results}); {len(refusals)} refused "
        f"or over {args.timeout:g} s here\n"
    )
    print("| subset | compiled | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join([*rows, _row("all", everything)]))
    print("\nThe ten slowest:\n\n| subset | schema | route | ms |\n|---|---|---|---:|")
    for ms, subset, schema_id, route in reversed(slowest):
        print(f"| {subset} | {schema_id} | {route} | {ms:.0f} |")
    if refusals:
        times = [ms for ms, *_ in refusals]
        print(
            f"\nRefused: {len(refusals)}; time to the refusal p50 {_pct(times, 0.5):.1f} ms, "
            f"p90 {_pct(times, 0.9):.1f} ms, max {max(times):.0f} ms. The five slowest:\n"
        )
        print("| subset | schema | refusal | ms |\n|---|---|---|---:|")
        for ms, subset, schema_id, why in sorted(refusals, reverse=True)[:5]:
            print(f"| {subset} | {schema_id} | {why} | {ms:.0f} |")


def _row(name: str, times: list[float]) -> str:
    if not times:
        return f"| {name} | 0 | | | | |"
    return (
        f"| {name} | {len(times)} | {_pct(times, 0.5):.1f} | {_pct(times, 0.9):.1f} | "
        f"{_pct(times, 0.99):.1f} | {max(times):.0f} |"
    )


if __name__ == "__main__":
    main()
