"""`edge-agent eval`: benchmarks. `eval bfcl score` scores a BFCL results file.

Scoring needs no model, so nothing here imports MLX; the scorer itself is imported
when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys

from agent.eval.bfcl_data import CATEGORIES, DATA_ENV_VAR


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="benchmarks (BFCL function calling)")
    benchmarks = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    bfcl = benchmarks.add_parser(
        "bfcl", help="Berkeley Function Calling Leaderboard, single-turn categories"
    )
    actions = bfcl.add_subparsers(dest="bfcl_command", required=True, metavar="ACTION")
    register_bfcl_score(actions)


def add_data_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=None,
        metavar="DIR",
        help=f"BFCL data directory (default: ${DATA_ENV_VAR}, else ../shared/data/bfcl "
        "next to the checkout)",
    )


def register_bfcl_score(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "score",
        help="score a results file by BFCL's AST rules",
        description="Score a results file (one JSON object a line: id, calls, raw, "
        "latency_s, output_tokens) by the rules of BFCL's AST checker.",
    )
    p.add_argument("results", metavar="RESULTS.jsonl", help="the results file of a run")
    p.add_argument(
        "--category",
        required=True,
        choices=CATEGORIES,
        metavar="CAT",
        help=f"the category the results are for: {', '.join(CATEGORIES)}",
    )
    add_data_arg(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    from agent.eval.bfcl_score import score_file

    report = score_file(args.results, args.category, args.data)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.summary())
    return 0
