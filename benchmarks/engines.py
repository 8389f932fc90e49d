"""Agent-loop overhead per step, in-process versus a remote engine over HTTP.

    python benchmarks/engines.py [--steps 20] [--runs 5] [--serve-model tiny]

1. Loop overhead with no model time: the same scripted run (a tool call per step, then
   an answer) in process (`ScriptedModel`) and through `RemoteChatModel` against a local
   OpenAI-compatible server that replays the same script at once (`tests/openai_stub.py`
   under uvicorn). The difference is what HTTP, SSE parsing and validation on arrival
   add to each step.
2. With a real model: the same agent run on `--serve-model` in process and through
   `edge-agent serve` on the same machine (when the command exists), ms per step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

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

from agent import Agent
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
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


if __name__ == "__main__":
    main()
