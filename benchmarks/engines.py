"""Agent-loop overhead per step, in-process versus a remote engine over HTTP.

    python benchmarks/engines.py [--steps 20] [--runs 5] [--serve-models tiny tiny-large-vocab]

1. Loop overhead with no model time: the same scripted run (a tool call per step, then
   an answer) in process (`ScriptedModel`) and through `RemoteChatModel` against a local
   OpenAI-compatible server that replays the same script at once (`tests/openai_stub.py`
   under uvicorn). The difference is what HTTP, SSE parsing and validation on arrival
   add to each step.
2. With a real model: the same agent run (a forced call every step, same seed) on each
   of `--serve-models` in process (`LocalChatModel`) and through `RemoteChatModel` against
   an `edge-agent serve` process serving that model on the same machine, ms per step. The
   two runs generate the same tokens (checked), so the difference is what the wire adds:
   HTTP, SSE, validation on arrival, and the server's own parsing and checks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Literal

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    str(_HERE.parent / "tests"),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

from _machine import machine_description
from openai_stub import StubReply, StubServer, running
from serve import start_server

from agent import Agent, SamplingParams, load_model
from agent.engines.local import LocalChatModel
from agent.engines.remote import RemoteChatModel
from agent.engines.scripted import Reply, ScriptedModel
from tools import tool


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def _script(steps: int) -> list[Reply]:
    calls = [Reply(calls=[("lookup", {"key": f"k{i}"})]) for i in range(steps - 1)]
    return [*calls, Reply(text="All looked up: the values are known now.")]


def _stub_script(steps: int) -> list[StubReply]:
    calls = [StubReply(calls=[("lookup", json.dumps({"key": f"k{i}"}))]) for i in range(steps - 1)]
    return [*calls, StubReply(text="All looked up: the values are known now.")]


def _ms_per_step(agent: Agent, steps: int) -> float:
    t0 = time.perf_counter()
    result = agent.run("Look up every key, then answer.")
    elapsed = time.perf_counter() - t0
    assert result.stopped_by is None, result.final.reason
    assert result.stats.steps == steps
    return elapsed * 1000 / steps


def loop_overhead(steps: int, runs: int) -> tuple[float, float]:
    local, remote = [], []
    for _ in range(runs):
        model = ScriptedModel(_script(steps))
        local.append(_ms_per_step(Agent(model, [lookup], max_steps=steps + 1), steps))
        with running(StubServer(_stub_script(steps))) as stub:
            engine = RemoteChatModel(stub.url, "stub")
            remote.append(_ms_per_step(Agent(engine, [lookup], max_steps=steps + 1), steps))
    return statistics.median(local), statistics.median(remote)


@tool
def pick(item: Literal["apple", "pear", "plum"]) -> str:
    """Pick a fruit."""
    return f"picked {item}"


def _real_run(engine, steps: int) -> tuple[float, int]:
    """(ms per step, tokens generated) of a run of `steps` forced calls."""
    agent = Agent(
        engine,
        [pick],
        tool_choice="required",
        reset_tool_choice=False,
        max_steps=steps,
        max_identical_calls=steps + 1,
        max_tokens=100_000,
        sampling=SamplingParams(seed=7),
    )
    t0 = time.perf_counter()
    result = agent.run("Pick fruit, one at a time.")
    elapsed = time.perf_counter() - t0
    assert result.stopped_by == "max_steps", result.final.reason
    assert result.stats.steps == steps
    return elapsed * 1000 / steps, result.stats.generated_tokens


def real_model(spec: str, steps: int, runs: int) -> dict:
    local = LocalChatModel.for_model(load_model(spec))
    served = start_server(spec)
    try:
        remote = RemoteChatModel(served.url, spec)
        _real_run(local, 2)  # warm both: grammars compiled, weights settled
        _real_run(remote, 2)
        local_ms, remote_ms, tokens = [], [], set()
        for _ in range(runs):
            local.reset()
            ms, generated = _real_run(local, steps)
            local_ms.append(ms)
            tokens.add(generated)
            ms, generated = _real_run(remote, steps)
            remote_ms.append(ms)
            tokens.add(generated)
    finally:
        served.stop()
    return {
        "model": spec,
        "local": statistics.median(local_ms),
        "remote": statistics.median(remote_ms),
        "same_tokens": len(tokens) == 1,
        "tokens": sorted(tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve-models", nargs="*", default=["tiny", "tiny-large-vocab"])
    parser.add_argument("--serve-steps", type=int, default=6)
    args = parser.parse_args()
    print(f"Machine: {machine_description()}\n")
    local, remote = loop_overhead(args.steps, args.runs)
    print(
        f"Agent loop, {args.steps} steps (a tool call each, then an answer), no model time, "
        f"median of {args.runs} runs:\n"
    )
    print("| engine | ms per step |")
    print("|---|---:|")
    print(f"| in process (ScriptedModel) | {local:.2f} |")
    print(f"| remote (RemoteChatModel -> local OpenAI-compatible server) | {remote:.2f} |")
    print(f"\nHTTP + SSE + validation add {remote - local:.2f} ms per step.")
    if not args.serve_models:
        return
    print(
        f"\nThe same agent run on a real model, {args.serve_steps} steps (a forced call each), "
        f"median of {args.runs} alternating runs:\n"
    )
    print(
        "| model | in process ms/step | through edge-agent serve ms/step | added ms/step | "
        "same tokens |"
    )
    print("|---|---:|---:|---:|---|")
    for spec in args.serve_models:
        r = real_model(spec, args.serve_steps, args.runs)
        print(
            f"| {spec} | {r['local']:.1f} | {r['remote']:.1f} | {r['remote'] - r['local']:.1f} "
            f"| {'yes' if r['same_tokens'] else 'no: ' + str(r['tokens'])} |"
        )


if __name__ == "__main__":
    main()
