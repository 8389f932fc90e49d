"""What a new user waits for: `--help`, the demo, the first answer in the chat UI, the
model's speed with and without the CPU fast path, and every README code block.

    python benchmarks/first_run.py [--runs 3] [--skip readme]

Each figure is measured in a fresh process, as a user would start it:

- help: wall time of `edge-agent --help` and of every `edge-agent COMMAND --help`;
- demo: wall time of `edge-agent demo --headless` (index already built, model already
  converted), with the fast path (MKL, float32) and without it (`EDGE_AGENT_BLAS=off`:
  MLX's reference BLAS, quantized weights), and whether it printed the README's test
  command;
- ui: the chat UI of `edge-agent demo` (Textual's headless driver, the real backend):
  seconds from the process start to the first answer token on screen, and to the end
  of the answer, for the suggested first question;
- speed: SmolLM2-135M prefill and decode tokens/s on the demo's prompt (~330 tokens),
  cold (first call) and warm;
- readme: seconds per README code block (tests/readme_blocks.py runs them as
  tests/test_readme.py does).

Before/after figures in BENCHMARKS.md: "before" is this script's demo and help commands
run on commit 21ee61a (its `edge-agent demo --headless`), "after" is this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if p not in ("", str(_HERE))]
sys.path.insert(0, str(ROOT / "tests"))

import agent  # first: the fast BLAS must load before MLX

sys.path.insert(0, str(_HERE))
from _machine import machine_description

COMMANDS = ["", "demo", "chat", "generate", "extract", "run", "sessions", "plan", "models"]
COMMANDS += ["ingest", "search"]
MODES = {"fast path": {}, "no fast path": {"EDGE_AGENT_BLAS": "off"}}

_UI_PROBE = r"""
import time
t0 = time.perf_counter()
import asyncio, json, sys
from agent.cli.demo import DEMO_TASK, RAG_K, build_demo_index
from agent.progress import silent_progress
from agent.retriever import open_index
from tui.agent_backend import AgentBackend, ChatOptions
from tui.app import EdgeAgentApp

async def main():
    retriever = open_index(build_demo_index(silent_progress))
    options = ChatOptions(model="smollm2", retriever=retriever, max_tokens=96, rag_k=RAG_K,
                          document_qa=True)
    app = EdgeAgentApp(AgentBackend(options), suggestion=DEMO_TASK)
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.ready:
            await pilot.pause(0.01)
        t_ready = time.perf_counter() - t0
        await pilot.press("enter")
        while not app.chat.turns or app.chat.turns[-1].deltas == 0:
            await pilot.pause(0.01)
        t_first = time.perf_counter() - t0
        while app.generating:
            await pilot.pause(0.01)
        t_done = time.perf_counter() - t0
        final = app.chat.turns[-1].final
    print(json.dumps({"ready": t_ready, "first": t_first, "done": t_done,
                      "content": final.content if final else None}))

asyncio.run(main())
"""

_SPEED_PROBE = r"""
import json
from agent import load_model
from agent.cli.demo import DEMO_TASK, RAG_K, build_demo_index, display_path
from agent.docqa import DocumentQA, user_turn
from agent.progress import silent_progress
from agent.retriever import open_index

model = load_model("smollm2")
qa = DocumentQA(model, open_index(build_demo_index(silent_progress)), k=RAG_K)
_, citations = qa.retrieve(DEMO_TASK)
messages = [{"role": "user", "content": user_turn(DEMO_TASK, citations, display_path)}]
rows = []
for _ in range(3):
    model.reset_cache()
    s = model.generate(messages, max_tokens=48).stats
    rows.append([s.prompt_tokens, s.ttft_s, s.prefill_tps, s.decode_tps])
print(json.dumps({"quantization": model.info.quantization, "rows": rows}))
"""


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    if "EDGE_AGENT_BLAS" not in extra:
        env.pop("EDGE_AGENT_BLAS", None)
    return env


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def bench_help(runs: int) -> None:
    print("\n### `--help`\n\n| command | median (s) | max (s) |\n|---|---:|---:|")
    exe = [sys.executable, "-m", "agent.cli.main"]
    for command in COMMANDS:
        args = [*exe, *([command] if command else []), "--help"]
        times = [_timed(args, _env({}))[0] for _ in range(runs)]
        name = f"edge-agent {command} --help".replace("  ", " ")
        print(f"| `{name}` | {statistics.median(times):.2f} | {max(times):.2f} |")


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    line = next(s for s in text.splitlines() if s.startswith("pip install") and "pytest" in s)
    return line.split("&&")[-1].strip()


def bench_demo(runs: int) -> None:
    print("\n### `edge-agent demo --headless`\n")
    print("| mode | median wall (s) | runs | answer |\n|---|---:|---:|---|")
    command = [sys.executable, "-m", "agent.cli.main", "demo", "--headless"]
    _timed(command, _env({}))  # builds the index and converts smollm2 once
    for mode, extra in MODES.items():
        times, answers = [], set()
        for _ in range(runs):
            seconds, proc = _timed(command, _env(extra))
            times.append(seconds)
            final = json.loads(proc.stdout.splitlines()[-1]) if proc.stdout else {}
            answers.add(final.get("content", proc.stderr.strip()[-80:]))
        right = json.dumps({"command": readme_test_command(), "source": 1}, separators=(",", ":"))
        verdict = "right every run" if answers == {right} else f"{sorted(answers)}"
        print(f"| {mode} | {statistics.median(times):.1f} | {runs} | {verdict} |")


def bench_ui(runs: int) -> None:
    print("\n### Chat UI of `edge-agent demo`: the suggested first question\n")
    print(
        "| mode | model ready (s) | first answer token (s) | answer done (s) | answer |\n"
        "|---|---:|---:|---:|---|"
    )
    for mode, extra in MODES.items():
        rows = []
        for _ in range(runs):
            _, proc = _timed([sys.executable, "-c", _UI_PROBE], _env(extra))
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        med = {k: statistics.median(r[k] for r in rows) for k in ("ready", "first", "done")}
        contents = sorted({r["content"] for r in rows})
        print(
            f"| {mode} | {med['ready']:.1f} | {med['first']:.1f} | {med['done']:.1f} | "
            f"`{' / '.join(contents)}` |"
        )


def bench_speed() -> None:
    print("\n### SmolLM2-135M on the demo's prompt\n")
    print(
        "| mode | weights | prompt tokens | cold TTFT (s) | prefill tok/s | decode tok/s |\n"
        "|---|---|---:|---:|---:|---:|"
    )
    for mode, extra in MODES.items():
        _, proc = _timed([sys.executable, "-c", _SPEED_PROBE], _env(extra))
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        rows = data["rows"]
        warm = rows[1:]
        print(
            f"| {mode} | {data['quantization']} | {rows[0][0]} | {rows[0][1]:.2f} | "
            f"{statistics.median(r[2] for r in warm):.1f} | "
            f"{statistics.median(r[3] for r in warm):.1f} |"
        )


def bench_readme() -> None:
    from readme_blocks import readme_blocks, repo_state, run_block

    print("\n### README code blocks\n")
    print("| block | seconds | exit codes | lines |\n|---|---:|---|---|")
    before = repo_state()
    for block in readme_blocks():
        with tempfile.TemporaryDirectory() as home:
            t0 = time.perf_counter()
            outcomes = run_block(block, Path(home))
            seconds = time.perf_counter() - t0
        kinds = sorted({o.how.split(":")[0].split(" ")[0] for o in outcomes})
        codes = ",".join(str(o.code) for o in outcomes)
        print(f"| {block.id} | {seconds:.1f} | {codes} | {', '.join(kinds)} |")
    print(f"\nRepository unchanged by the blocks: {repo_state() == before}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["help", "demo", "ui", "speed", "readme"],
        help="parts to leave out",
    )
    args = parser.parse_args()
    print(f"Machine: {machine_description()}; BLAS: {agent.fastpath.fast_blas() or 'mlx'}")
    if "help" not in args.skip:
        bench_help(max(args.runs, 5))
    if "demo" not in args.skip:
        bench_demo(args.runs)
    if "ui" not in args.skip:
        bench_ui(args.runs)
    if "speed" not in args.skip:
        bench_speed()
    if "readme" not in args.skip:
        bench_readme()
    return 0


if __name__ == "__main__":
    sys.exit(main())
