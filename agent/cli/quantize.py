"""`edge-agent quantize SRC OUT`: build a quant (uniform, mlx-lm mixed, or per role).

The recipe and OUT are checked before a model loads, so a typo answers at once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.quant.recipes import GROUP_SIZES, UNIFORM_BITS, parse_recipe, recipe_help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize",
        help="build a quantized copy of a model (uniform, mixed or per-role precision)",
        description="Quantize SRC (a built-in, an MLX model directory, a Hugging Face repo id "
        "or a GGUF file) into the new directory OUT with mlx-lm's quantizer. A quantized "
        "source is dequantized first. OUT loads like any model: --model OUT.",
    )
    p.add_argument("source", metavar="SRC", help="the model to quantize")
    p.add_argument("out", metavar="OUT", help="the directory to create (must not exist)")
    p.add_argument(
        "--bits",
        type=int,
        default=4,
        choices=UNIFORM_BITS,
        help="bits per weight of every quantized layer (default 4; with --recipe: the "
        "precision of the layers a recipe leaves at the default)",
    )
    p.add_argument(
        "--group-size",
        type=int,
        default=64,
        choices=GROUP_SIZES,
        help="weights sharing one scale and bias (default 64; smaller is more precise)",
    )
    p.add_argument(
        "--recipe", default=None, metavar="RECIPE", help=f"mixed precision: {recipe_help()}"
    )
    p.add_argument("--json", action="store_true", help="print what was built as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.progress import console_progress
    from agent.quant.local import record_quant
    from agent.quant.quantize import check_output, quantize
    from agent.quant.report import size_text

    recipe = parse_recipe(args.recipe, args.bits, args.group_size)
    out = Path(args.out).expanduser()
    check_output(out)
    with console_progress() as progress:
        result = quantize(args.source, out, recipe, progress)
    record_quant(out, recipe.name)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    layers = ", ".join(f"{n} at {b} bits" for b, n in result.layer_bits.items())
    print(
        f"{result.path}: {result.description}; {result.bits_per_weight:.2f} bits per weight, "
        f"{size_text(result.size_bytes)} ({layers}"
        + (
            f", {result.unquantized_layers} kept in {result.dtype}"
            if result.unquantized_layers
            else ""
        )
        + ")"
    )
    if result.source_quantization:
        print(
            f"note: {args.source} was already quantized ({result.source_quantization}); it was "
            "dequantized first, and no quant of it can be more precise than it"
        )
    print(f'use it with: edge-agent generate --model {result.path} "..."')
    return 0
