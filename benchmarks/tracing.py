"""Tracing overhead: agent runs with OpenTelemetry spans written to a file vs tracing off.

    python benchmarks/tracing.py [--models tiny tiny-large-vocab] [--tokens 256] [--runs 9]

1. Decode speed and run time. The same two-step run (a forced call to a trivial tool,
   then free text until the run's `--tokens` budget ends it) with tracing off
   (OpenTelemetry's default no-op provider: what every user without the SDK gets) and
   with `--trace FILE`'s set-up (SDK tracer provider, every span written as one JSON
   line as it ends, content capture off), alternating (off, traced, traced, off, ...).
   Reported: the best decode tok/s over the run's steps and the best wall time per run
   (other load on a shared machine only slows a run down, so the best run is the least
   disturbed one), and the median CPU time of the process per run (all threads: what
   tracing itself costs, whatever else the machine runs); with ratios (the issue's
   target: >= 0.99x).
2. The cost of tracing when it is off. `trace_run` with the no-op provider passes the
   events on, recording only the (no-op) histograms: per event one more async-generator
   hop and an `isinstance`. Measured on a synthetic stream of events (no model), against
   iterating the stream directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

# benchmarks/agent.py must not shadow the `agent` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from agent import Agent, SamplingParams, load_model
from agent.events import FinalEvent, RunStats, StatsEvent, TextDelta
from agent.tracing import Tracing
from agent.tracing.export import build_tracing
from agent.tracing.run_spans import RunInfo, trace_run
from tools import tool

sys.path.insert(0, str(_HERE))
from _machine import machine_description

SAMPLING = SamplingParams(temperature=0.8, min_p=0.0, repetition_penalty=1.0, seed=0)
PROMPT = "Check the status of the services one at a time, then summarise."


@tool
def status(service: Literal["web", "db", "queue"]) -> str:
    """The status of a service."""
    return f"{service}: healthy, p99 42 ms"


def agent_for(model, tokens: int, tracing: Tracing) -> Agent:
    return Agent(
        model,
        [status],
        tool_choice="required",  # the first step; then "auto"
        max_steps=2,
        max_parallel_calls=1,
        max_tokens=tokens,
        sampling=SAMPLING,
        tracing=tracing,
    )


def one_run(model, tokens: int, tracing: Tracing) -> tuple[float, float, float]:
    """(decode tok/s over the run's steps, wall seconds, CPU seconds of the process)."""
    model.reset_cache()
    agent = agent_for(model, tokens, tracing)
    t0, c0 = time.perf_counter(), time.process_time()
    result = agent.run(PROMPT)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stats = [e.stats for e in result.of_type(StatsEvent)]
    decode_time = sum(s.generated_tokens / s.decode_tps for s in stats if s.decode_tps)
    decoded = sum(s.generated_tokens for s in stats if s.decode_tps)
    return decoded / decode_time, wall, cpu


def compare(spec: str, tokens: int, runs: int) -> dict:
    model = load_model(spec)
    with tempfile.TemporaryDirectory() as tmp:
        trace_file = Path(tmp) / "trace.jsonl"
        traced = build_tracing(file=trace_file)
        off = Tracing()
        one_run(model, tokens, off)  # warm-up: compile caches, first-call costs
        one_run(model, tokens, traced)
        results: dict[str, list[tuple[float, float, float]]] = {"off": [], "file": []}
        modes = [("off", off), ("file", traced)]
        for i in range(runs):  # ABBA order: neither mode always runs first
            for name, tracing in modes if i % 2 == 0 else modes[::-1]:
                results[name].append(one_run(model, tokens, tracing))
        traced.shutdown()
        lines = trace_file.read_text(encoding="utf-8").splitlines()
        span_names = {json.loads(line)["name"].split()[0] for line in lines}
    best = {
        k: (max(d for d, _, _ in v), min(w for _, w, _ in v), statistics.median(c for *_, c in v))
        for k, v in results.items()
    }
    return {
        "model": spec,
        "off_tps": best["off"][0],
        "file_tps": best["file"][0],
        "off_wall": best["off"][1],
        "file_wall": best["file"][1],
        "off_cpu": best["off"][2],
        "file_cpu": best["file"][2],
        "spans": len(lines),
        "span_kinds": sorted(span_names),
    }


async def _events(n: int):
    for i in range(n):
        yield TextDelta("x", 1 + i // 1000)
    yield FinalEvent("", RunStats())


async def _drain(stream) -> None:
    async for _ in stream:
        pass


def passthrough_ns(n: int = 200_000) -> tuple[float, float]:
    """(ns per event iterating directly, ns per event through trace_run with tracing off)."""
    info = RunInfo("bench", "m", "mlx", 1, 0.0, 1.0, None, "", "p")
    off = Tracing()
    best_direct = best_traced = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        asyncio.run(_drain(_events(n)))
        best_direct = min(best_direct, (time.perf_counter_ns() - t0) / n)
        t0 = time.perf_counter_ns()
        asyncio.run(_drain(trace_run(_events(n), off, info)))
        best_traced = min(best_traced, (time.perf_counter_ns() - t0) / n)
    return best_direct, best_traced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "tiny-large-vocab"])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    from importlib.metadata import version

    print(f"Machine: {machine_description()}, opentelemetry-sdk {version('opentelemetry-sdk')}\n")
    print(f"### Tracing to a file vs off ({args.tokens}-token runs, {args.runs} runs each)\n")
    print("| model | decode tok/s off | traced | ratio | run s off | traced | ratio "
          "| CPU s/run off | traced | ratio | spans a run |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in args.models:
        r = compare(spec, args.tokens, args.runs)
        per_run = r["spans"] / (args.runs + 1)
        kinds = ", ".join(r["span_kinds"])
        print(
            f"| {r['model']} | {r['off_tps']:.1f} | {r['file_tps']:.1f} | "
            f"{r['file_tps'] / r['off_tps']:.3f} | {r['off_wall']:.3f} | {r['file_wall']:.3f} | "
            f"{r['off_wall'] / r['file_wall']:.3f} | {r['off_cpu']:.3f} | {r['file_cpu']:.3f} | "
            f"{r['off_cpu'] / r['file_cpu']:.3f} | {per_run:.0f} ({kinds}) |",
            flush=True,
        )
    direct, traced = passthrough_ns()
    print("\n### Tracing off: the pass-through per event (no model, best of 5)\n")
    print("| direct ns/event | through trace_run ns/event | added ns/event |")
    print("|---:|---:|---:|")
    print(f"| {direct:.0f} | {traced:.0f} | {traced - direct:.0f} |")


if __name__ == "__main__":
    main()
