"""`edge-agent compare MODEL...`: quants side by side (size, bits per weight, perplexity,
speed, peak memory, RAM plan per context), as a table, bars, a chart file or JSON.

Everything that can be checked without a model (the text files, the chart path) is
checked before the first model loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.cli.common import positive_int, read_file_arg
from agent.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare models or quants: size, bits/weight, perplexity, tok/s, memory",
        description="Measure each MODEL on the same tokens: size on disk, bits per weight, "
        "perplexity with its standard error (mlx-lm's), prefill and decode tokens/s, peak "
        "memory, and the RAM plan at each --context. Models are measured one at a time.",
    )
    p.add_argument(
        "models", nargs="+", metavar="MODEL", help="models to compare (specs or directories)"
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--text", nargs="+", metavar="FILE", help="UTF-8 text file(s) to measure perplexity on"
    )
    source.add_argument(
        "--dataset",
        metavar="NAME",
        help="a dataset in mlx-lm's format: a directory with test/valid/train.jsonl, or a "
        "Hugging Face dataset id (needs the `datasets` package and the hub)",
    )
    p.add_argument(
        "--context",
        nargs="+",
        type=positive_int,
        default=[4096, 8192, 16384],
        metavar="N",
        help="context lengths to plan RAM for (default 4096 8192 16384)",
    )
    p.add_argument(
        "--tokens",
        type=positive_int,
        default=4096,
        help="evaluate perplexity on at most this many tokens of the text (default 4096)",
    )
    p.add_argument(
        "--sequence-length",
        type=positive_int,
        default=512,
        help="tokens per perplexity window (default 512)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=2, help="windows per forward pass (default 2)"
    )
    p.add_argument(
        "--prompt-tokens",
        type=positive_int,
        default=128,
        help="prompt length of the speed run (default 128, taken from the text)",
    )
    p.add_argument(
        "--generation-tokens",
        type=positive_int,
        default=32,
        help="tokens generated in the speed run (default 32)",
    )
    p.add_argument(
        "--plot",
        metavar="FILE",
        default=None,
        help="also draw perplexity against size and speed into FILE (.svg, .png or .pdf; "
        "needs matplotlib: the plot extra)",
    )
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.progress import console_progress
    from agent.quant.compare import CompareSettings, compare
    from agent.quant.corpus import Corpus
    from agent.quant.report import bars, check_chart_path, table, write_chart

    if args.text:
        texts = [read_file_arg(path, "text file") for path in args.text]
        if not any(t.strip() for t in texts):
            raise UserError("the --text files are empty; perplexity needs some text")
        corpus = Corpus(", ".join(Path(t).name for t in args.text), text="\n\n".join(texts))
    else:
        corpus = Corpus(f"dataset {args.dataset}", dataset=args.dataset)
    chart = Path(args.plot).expanduser() if args.plot else None
    if chart is not None:
        check_chart_path(chart)
    settings = CompareSettings(
        contexts=tuple(dict.fromkeys(args.context)),
        max_tokens=args.tokens,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        prompt_tokens=args.prompt_tokens,
        generation_tokens=args.generation_tokens,
    )
    with console_progress() as progress:
        comparison = compare(args.models, corpus, settings, progress)
    if chart is not None:
        write_chart(comparison, chart)
        print(f"chart: {chart}", file=sys.stderr)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print(table(comparison))
        print()
        print(bars(comparison))
    return 0
