"""Schema compile time and peak memory as schemas grow, per grammar engine.

    python benchmarks/schema_growth.py [--model tiny-large-vocab] [--timeout 10]
        [--out benchmarks/schema_growth.jsonl] [--plot benchmarks/schema_growth.svg]

Four families of generated schemas, each at growing sizes: an object of N optional
string properties (10 to 10,000), arrays nested N deep (10 to 1,000), an enum of N
strings (10 to 100,000), an anyOf of N one-property objects (10 to 1,000). Each
(family, size, engine) is compiled cold (no grammar cache) with `compile_output` and
the compile deadline `--timeout`, in its own child process, killed after
`--timeout` x 3 + 60 s, so that a blow-up cannot hang the run or spill its memory into
the next measurement. The child reports the compile time (from the schema to a grammar
with its first plan, or to the refusal), the outcome (the route, or the error class),
and its peak RSS above its baseline after loading the model, including the automaton
worker process of the regex engine. Engines: `llguidance` alone, `regex` (the regex
compiler and an outlines-core automaton) alone, and `auto` (the default: llguidance,
then the fallbacks). A log-log plot is written when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
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

FAMILIES: dict[str, tuple[int, ...]] = {
    "properties": (10, 100, 1_000, 3_000, 10_000),
    "depth": (10, 30, 100, 1_000),
    "enum": (10, 1_000, 10_000, 100_000),
    "anyOf": (10, 100, 300, 1_000),
}
ENGINES = ("llguidance", "regex", "auto")


def make_schema(family: str, n: int) -> Any:
    if family == "properties":
        return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(n)}}
    if family == "depth":
        schema: dict[str, Any] = {"type": "string"}
        for _ in range(n):
            schema = {"type": "array", "items": schema, "maxItems": 2}
        return schema
    if family == "enum":
        return {"enum": [f"value-{i}" for i in range(n)]}
    if family == "anyOf":
        return {
            "anyOf": [
                {"type": "object", "properties": {f"k{i}": {"type": "integer"}},
                 "required": [f"k{i}"], "additionalProperties": False}
                for i in range(n)
            ]
        }  # fmt: skip
    raise ValueError(family)


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(model_name: str, family: str, n: int, engine: str, timeout: float) -> None:
    """One measurement; prints one JSON line."""
    os.environ["EDGE_AGENT_GRAMMAR_CACHE"] = "off"
    sys.setrecursionlimit(20_000)  # json.dumps of the 1,000-deep schema (its size)
    from agent import load_model
    from agent.constrained import compile_output, resolve_output_type, target_for
    from agent.constrained.compile import shutdown_worker
    from agent.errors import UserError

    target = target_for(load_model(model_name))
    target.llg_tokenizer  # built once per model, outside any compile  # noqa: B018
    target.regex_vocabulary(target.eos_ids)  # the regex engine's view, likewise
    schema = make_schema(family, n)
    base = _rss_kib()
    t0 = time.perf_counter()
    try:
        compiled = compile_output(
            resolve_output_type(schema),
            target,
            engine=engine,  # type: ignore[arg-type]
            timeout=timeout,
        )
        outcome = compiled.route
    except UserError as exc:
        outcome = f"refused: {type(exc).__name__}: {str(exc)[:160]}"
    seconds = time.perf_counter() - t0
    shutdown_worker()  # so its peak is counted in RUSAGE_CHILDREN
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({
        "family": family, "n": n, "engine": engine, "seconds": seconds, "outcome": outcome,
        "peak_mb": max(own - base, 0) / 1024, "worker_peak_mb": worker / 1024,
        "schema_kb": len(json.dumps(schema)) / 1024,
    }))  # fmt: skip


def measure(model: str, family: str, n: int, engine: str, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", family, str(n), engine, "--model", model,
           "--timeout", str(timeout)]  # fmt: skip
    limit = timeout * 3 + 60
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"family": family, "n": n, "engine": engine, "seconds": limit,
                "outcome": f"killed after {limit:g} s", "peak_mb": None}  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        outcome = f"crashed (exit {proc.returncode}): {last[:160]}"
        return {"family": family, "n": n, "engine": engine, "seconds": None,
                "outcome": outcome, "peak_mb": None}  # fmt: skip
    return json.loads(lines[-1])


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return False
    fig, axes = plt.subplots(2, len(FAMILIES), figsize=(4 * len(FAMILIES), 7))
    for col, family in enumerate(FAMILIES):
        for engine, marker in zip(ENGINES, "os^", strict=True):
            pts = [r for r in rows if r["family"] == family and r["engine"] == engine
                   and r.get("seconds") is not None]  # fmt: skip
            ok = [r for r in pts if not str(r["outcome"]).startswith(("refused", "killed"))]
            bad = [r for r in pts if r not in ok]
            for row, metric in ((0, "seconds"), (1, "peak_mb")):
                ax = axes[row][col]
                line = ax.plot([r["n"] for r in ok], [max(r[metric] or 0, 1e-3) for r in ok],
                               marker=marker, label=engine)  # fmt: skip
                ax.scatter([r["n"] for r in bad], [max(r[metric] or 0, 1e-3) for r in bad],
                           marker="x", color=line[0].get_color())  # fmt: skip
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlabel(f"{family} (n)")
                ax.set_ylabel("compile seconds" if row == 0 else "peak MB above baseline")
        axes[0][col].set_title(family)
    axes[0][0].legend(title="engine (x: refused)")
    fig.tight_layout()
    fig.savefig(path)
    return True


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| family | n | engine | seconds | peak MB | outcome |", "|---|---:|---|---:|---:|---|"]
    for r in rows:
        secs = "-" if r.get("seconds") is None else f"{r['seconds']:.3f}"
        peak = r.get("peak_mb")
        worker = r.get("worker_peak_mb") or 0
        mem = "-" if peak is None else f"{peak:.0f}"
        if worker:
            mem += f" (+{worker:.0f} worker)"
        outcome = str(r["outcome"]).replace("|", "/")
        out.append(f"| {r['family']} | {r['n']:,} | {r['engine']} | {secs} | {mem} | {outcome} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-large-vocab")
    parser.add_argument("--timeout", type=float, default=10.0, help="compile deadline, seconds")
    parser.add_argument("--out", type=Path, default=_HERE / "schema_growth.jsonl")
    parser.add_argument("--plot", type=Path, default=_HERE / "schema_growth.svg")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--sizes", type=int, nargs="*", default=None, help="only these sizes")
    parser.add_argument(
        "--append", action="store_true", help="add to --out (a row measured again replaces it)"
    )
    parser.add_argument("--child", nargs=3, metavar=("FAMILY", "N", "ENGINE"))
    args = parser.parse_args()
    if args.child:
        family, n, engine = args.child
        child(args.model, family, int(n), engine, args.timeout)
        return

    from _machine import machine_description

    print(f"# {machine_description()}; model {args.model}", flush=True)
    rows: list[dict[str, Any]] = []
    with args.out.open("a" if args.append else "w", encoding="utf-8") as out:
        for family in args.families:
            for n in FAMILIES[family]:
                if args.sizes and n not in args.sizes:
                    continue
                for engine in ENGINES:
                    row = measure(args.model, family, n, engine, args.timeout)
                    rows.append(row)
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    secs = row.get("seconds")
                    print(f"{family:>10} {n:>7,} {engine:>10} "
                          f"{'-' if secs is None else f'{secs:8.3f} s'} "
                          f"{row.get('peak_mb') or 0:7.0f} MB  {row['outcome'][:70]}",
                          flush=True)  # fmt: skip
    if args.append:  # every row in the file, the latest measurement of each
        latest: dict[tuple[str, int, str], dict[str, Any]] = {}
        for line in args.out.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            latest[(row["family"], row["n"], row["engine"])] = row
        order = {f: i for i, f in enumerate(FAMILIES)}
        rows = sorted(latest.values(), key=lambda r: (order[r["family"]], r["n"],
                                                      ENGINES.index(r["engine"])))  # fmt: skip
    print(table(rows))
    if plot(rows, args.plot):
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
