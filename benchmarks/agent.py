"""Agent-loop benchmark: what the loop costs per step, and what each step prefills.

    python benchmarks/agent.py [--models tiny tiny-large-vocab] [--steps 6] [--runs 3]

1. Loop overhead per step. A run of `--steps` steps, each one forced tool call
   (tool_choice="required" on every step) to a trivial tool. Per step, everything
   outside model generation and tool execution (rendering the conversation, counting
   its tokens, building the step constraint, parsing calls, the hop to the model thread,
   event dispatch, SQLite writes when a session is attached) is reported next to the
   step's generation time.
2. Free text against raw generation. The same prompt and token count decoded by
   `Model.generate` with no constraint, and by an agent step in tool_choice="auto"
   (free text under the call constraint's mask, which keeps the call-start token
   available): decode tok/s of both.
3. Prefilled tokens per step. Step k's prompt is step k-1's prompt plus its output plus
   the new turn (the tool results and the assistant header); the table shows that only
   the new turn (and the last token of the previous output, never fed) is prefilled.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

# This file is named agent.py: its directory must not shadow the `agent` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from agent import Agent, SamplingParams, load_model
from agent.events import FinalEvent, StatsEvent, ToolResultEvent
from agent.prompting import render
from agent.sessions import SessionStore
from tools import tool

sys.path.insert(0, str(_HERE))
from _machine import machine_description

SAMPLING = SamplingParams(temperature=0.8, min_p=0.0, repetition_penalty=1.0, seed=0)
PROMPT = "Check the status of the three services, one at a time, then summarise."


@tool
def status(service: Literal["web", "db", "queue"]) -> str:
    """The status of a service."""
    return f"{service}: healthy, p99 42 ms"


def forced_agent(model, steps: int, session=None) -> Agent:
    return Agent(
        model,
        [status],
        tool_choice="required",
        reset_tool_choice=False,
        max_steps=steps,
        max_identical_calls=10_000,
        max_parallel_calls=1,
        max_tokens=100_000,
        session=session,
        sampling=SAMPLING,
    )


async def timed_run(agent: Agent) -> dict:
    generation = tools = 0.0
    step_stats = []
    t0 = time.perf_counter()
    async for event in agent.stream(PROMPT):
        if isinstance(event, StatsEvent):
            generation += event.stats.total_s
            step_stats.append(event.stats)
        elif isinstance(event, ToolResultEvent):
            tools += event.duration_s  # one call per step (max_parallel_calls=1)
        elif isinstance(event, FinalEvent):
            final = event
    wall = time.perf_counter() - t0
    steps = len(step_stats)
    return {
        "steps": steps,
        "wall": wall,
        "generation": generation,
        "tools": tools,
        "overhead_ms": (wall - generation - tools) / steps * 1000,
        "gen_ms": generation / steps * 1000,
        "mask_us": statistics.median(s.mask_us_per_token for s in step_stats),
        "stopped_by": final.stopped_by,
        "stats": step_stats,
    }


def loop_overhead(spec: str, steps: int, runs: int, store: SessionStore) -> list[dict]:
    model = load_model(spec)
    asyncio.run(timed_run(forced_agent(model, 2)))  # warm up: compile, caches
    rows = []
    for label, with_session in (("no session", False), ("SQLite session", True)):
        samples = []
        for _ in range(runs):
            model.reset_cache()
            session = store.create(model=spec) if with_session else None
            samples.append(asyncio.run(timed_run(forced_agent(model, steps, session))))
        rows.append(
            {
                "model": spec,
                "vocab": model.info.vocab_size,
                "variant": label,
                "steps": samples[0]["steps"],
                "gen_ms": statistics.median(s["gen_ms"] for s in samples),
                "overhead_ms": statistics.median(s["overhead_ms"] for s in samples),
                "mask_us": statistics.median(s["mask_us"] for s in samples),
            }
        )
    return rows


def free_text(spec: str, tokens: int, runs: int) -> dict:
    model = load_model(spec)
    raw, agent_rates = [], []
    model.generate(PROMPT, max_tokens=16, sampling=SAMPLING)  # warm up compiled samplers
    for i in range(runs):
        agent = Agent(
            model,
            [status],
            tool_choice="auto",
            max_tokens=tokens,
            sampling=SamplingParams(temperature=0.8, min_p=0.0, repetition_penalty=1.0, seed=i),
        )
        prompt = render(
            model, agent.system, [{"role": "user", "content": PROMPT}], [status.openai()]
        )
        model.reset_cache()
        result = model.generate(prompt, max_tokens=tokens, sampling=agent.sampling)
        raw.append(result.stats.decode_tps)
        model.reset_cache()
        run = agent.run(PROMPT)
        stats = run.of_type(StatsEvent)[0].stats
        if run.of_type(ToolResultEvent) or stats.generated_tokens < tokens // 2:
            continue  # the random model called a tool or stopped: not a free-text sample
        agent_rates.append(stats.decode_tps)
    # Best of the runs: other load on the machine only ever slows a run down.
    raw_tps = max(raw)
    agent_tps = max(agent_rates) if agent_rates else float("nan")
    return {"model": spec, "tokens": tokens, "raw": raw_tps, "agent": agent_tps}


def prefill_per_step(spec: str, steps: int) -> list[dict]:
    model = load_model(spec)
    model.reset_cache()
    agent = forced_agent(model, steps)
    result = agent.run(PROMPT)
    stats = [e.stats for e in result.of_type(StatsEvent)]
    tools = agent.registry.openai_tools()
    chat = [m.to_dict() for m in agent.messages]
    assistant_at = [i for i, m in enumerate(chat) if m["role"] == "assistant"]
    rows = []
    for k, s in enumerate(stats):
        if k == 0:
            new_turn = s.prompt_tokens
        else:
            prev = render(model, agent.system, chat[: assistant_at[k - 1]], tools)
            prev += chat[assistant_at[k - 1]]["content"]
            prompt = render(model, agent.system, chat[: assistant_at[k]], tools)
            new_turn = len(model.tokenizer.encode(prompt[len(prev) :], add_special_tokens=False))
        rows.append(
            {
                "step": k + 1,
                "prompt": s.prompt_tokens,
                "cached": s.cached_prompt_tokens,
                "prefilled": s.prefilled_tokens,
                "new_turn": new_turn,
                "generated": s.generated_tokens,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "tiny-large-vocab"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--free-tokens", type=int, default=128)
    args = parser.parse_args()

    print(f"Machine: {machine_description()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(Path(tmp) / "sessions.sqlite3")
        rows = [
            r for spec in args.models for r in loop_overhead(spec, args.steps, args.runs, store)
        ]
    print(f"### Loop overhead per step ({args.steps} forced-call steps, median of {args.runs})\n")
    print(
        "| model | vocab | variant | generation ms/step | loop overhead ms/step | overhead "
        "| mask µs/token |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        share = r["overhead_ms"] / r["gen_ms"] * 100
        print(
            f"| {r['model']} | {r['vocab']} | {r['variant']} | {r['gen_ms']:.1f} | "
            f"{r['overhead_ms']:.2f} | {share:.1f}% | {r['mask_us']:.0f} |"
        )

    print(
        f"\n### Free text: agent step vs raw generation ({args.free_tokens} tokens, best of runs)\n"
    )
    print("| model | raw decode tok/s | agent step decode tok/s | ratio |")
    print("|---|---:|---:|---:|")
    for spec in args.models:
        r = free_text(spec, args.free_tokens, args.runs)
        print(f"| {spec} | {r['raw']:.1f} | {r['agent']:.1f} | {r['agent'] / r['raw']:.2f} |")

    spec = args.models[0]
    print(f"\n### Prefilled tokens per step ({spec})\n")
    print("| step | prompt tokens | cached | prefilled | new turn tokens | generated |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in prefill_per_step(spec, args.steps):
        print(
            f"| {r['step']} | {r['prompt']} | {r['cached']} | {r['prefilled']} | "
            f"{r['new_turn']} | {r['generated']} |"
        )


if __name__ == "__main__":
    main()
