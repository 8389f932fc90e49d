"""BFCL's constrained mode with one thing changed, against the mode as shipped.

    python benchmarks/bfcl_variants.py --variant space --category multiple
    python benchmarks/bfcl_variants.py --variant bfcl-definitions --category multiple
        [--model smollm2] [--engine auto] [--limit N] [--out DIR] [--data DIR]

Variants of `edge-agent eval bfcl run --mode constrained --temp 0`, decoded exactly as
the CLI decodes (plainly greedy, `SamplingParams.greedy()`: no repetition penalty):

- `space`: the call grammar allows one optional space between JSON tokens, instead of
  llama.cpp's bounded newlines and indents (what a model without call tokens gets);
- `bfcl-definitions`: the prompt lists the functions as BFCL wrote them (`dict`,
  `float`), not as the tool registry normalises them (`object`, `number`); the grammar
  is unchanged. With it the prompt is the baseline's, byte for byte.

Writes OUT/<category>.<variant>.jsonl in the results-file format of `eval bfcl run`
(score it, or compare it with a run's file, with `edge-agent eval bfcl score`), and
prints the variant's score. Cases run one after another on one engine, as in a run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# benchmarks/agent.py would shadow the `agent` package: keep this folder last on the path.
sys.path[:] = [
    str(_HERE.parent),
    *(p for p in sys.path if Path(p or ".").resolve() != _HERE),
    str(_HERE),
]

# `agent` before `mlx.core`: it loads the fast BLAS (agent/fastpath.py).
from agent import SamplingParams, load_model  # isort: skip

from _machine import machine_description

from agent.engines.base import StepRequest
from agent.engines.local import LocalChatModel
from agent.eval import load_cases, score_records
from agent.eval.bfcl_data import BfclCase
from agent.eval.bfcl_modes import ModeRequest, build_request
from agent.eval.bfcl_run import BfclRunner, select_cases

VARIANTS = ("space", "bfcl-definitions")
ONE_SPACE = r"(?: )?"


def request_for(variant: str, case: BfclCase, sampling: SamplingParams) -> ModeRequest:
    """Constrained mode's request for `case`, with the variant's one change."""
    if variant == "space":
        return build_request("constrained", case, sampling, "native", call_whitespace=ONE_SPACE)
    mode_request = build_request("constrained", case, sampling, "native")
    tools = [{"type": "function", "function": f} for f in case.functions]
    request: StepRequest = dataclasses.replace(mode_request.request, tools=tools)
    return dataclasses.replace(mode_request, request=request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--category", default="multiple")
    parser.add_argument("--limit", type=int, default=None, help="sample seed 0, as the CLI")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--out", default="bfcl-variants")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    cases = select_cases(load_cases(args.category, args.data), args.limit)
    engine = LocalChatModel.for_model(load_model(args.model, engine=args.engine))
    greedy = SamplingParams.greedy()
    runner = BfclRunner(engine, sampling=greedy)  # its budget (256 tokens) and reading
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.category}.{args.variant}.jsonl"
    records = []
    with path.open("w", encoding="utf-8") as results:
        for n, case in enumerate(cases, start=1):
            request = request_for(args.variant, case, greedy)
            records.append(asyncio.run(runner.run_request(request, case)))
            results.write(records[-1].to_json() + "\n")
            results.flush()
            print(f"{n}/{len(cases)} {case.id}", file=sys.stderr, flush=True)
    report = score_records(records, load_cases(args.category, args.data), args.category)
    print(machine_description())
    print(f"{args.category}, {args.variant}, {args.model} ({engine.model.name}), greedy:")
    print(json.dumps({"correct": report.correct, "total": report.total, "file": str(path)}))


if __name__ == "__main__":
    main()
