"""Which function would a whole-name choice pick, against the grammar's token-by-token one?

    python benchmarks/bfcl_name_choice.py [--category multiple] [--limit 200]
        [--model smollm2] [--data DIR]

The call grammar lets a model pick the function's name one token at a time: greedy
decoding takes the likeliest first token among the names, then the likeliest next one
among the names still possible. A name whose first token is unlikely but whose whole
spelling is likely is then never taken. This script asks whether choosing the name by
the likelihood of the whole name (the sum of its tokens' log-probabilities, their mean,
or the first token alone) would pick the right function more often, before anyone
builds it into the decode loop: each case's prompt is the constrained mode's own
(`eval bfcl`), followed by `{"name": "`, and each function's name with its closing
quote is scored on the model (MLX, greedy). Counts of right picks per rule are printed
with the cases where the whole-name sum and the greedy walk disagree.
"""

from __future__ import annotations

import argparse
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

import mlx.core as mx
from _machine import machine_description
from mlx_lm.models.cache import make_prompt_cache, trim_prompt_cache

from agent.engines.local import LocalChatModel
from agent.eval.bfcl_data import BfclCase, load_cases
from agent.eval.bfcl_modes import build_request

RULES = ("greedy", "sum", "mean", "first")


def name_scores(model, prompt: str, names: list[str]) -> dict[str, list[tuple[int, float]]]:
    """Each name's tokens and their log-probabilities after `prompt`, the name spelled
    as the tokenizer spells `prompt + name + '"'`. Every list starts at the same
    position, the first where any spelling leaves the prompt's own tokens, so the
    greedy walk compares tokens at one position and the sums cover the same text."""
    prompt_tokens = model.encode(prompt)
    spelled = {name: model.encode(prompt + name + '"') for name in names}
    start = min(_shared(prompt_tokens, t) for t in spelled.values())
    cache = make_prompt_cache(model.module)
    # The prompt up to the token whose logits score the first differing one.
    mx.eval(model.module(mx.array(prompt_tokens[: start - 1])[None], cache=cache))
    scores = {}
    for name, tokens in spelled.items():
        rest = tokens[start - 1 :]
        logits = model.module(mx.array(rest)[None], cache=cache)[0].astype(mx.float32)
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        scores[name] = [(token, logprobs[i, token].item()) for i, token in enumerate(rest[1:])]
        trim_prompt_cache(cache, len(rest))
    return scores


def _shared(a: list[int], b: list[int]) -> int:
    """How many leading tokens `a` and `b` have in common."""
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def picks(scores: dict[str, list[tuple[int, float]]]) -> dict[str, str]:
    """The name each rule picks; `greedy` walks the names' tokens as decoding would."""
    alive, depth = list(scores), 0
    while len(alive) > 1:
        open_ = [n for n in alive if depth < len(scores[n])]
        if not open_:
            break
        token = max((scores[n][depth] for n in open_), key=lambda pair: pair[1])[0]
        alive = [n for n in open_ if scores[n][depth][0] == token]
        depth += 1

    def total(name: str) -> float:
        return sum(lp for _, lp in scores[name])

    return {
        "greedy": alive[0],
        "sum": max(scores, key=total),
        "mean": max(scores, key=lambda n: total(n) / len(scores[n])),
        "first": max(scores, key=lambda n: scores[n][0][1]),
    }


def run(case: BfclCase, model, engine: LocalChatModel) -> dict[str, bool]:
    request = build_request("constrained", case, SamplingParams.greedy(), "native")
    prompt, _plan = engine.prepare(request.request).state
    names = [f["name"] for f in case.functions]
    scores = name_scores(model, prompt + '{"name": "', names)
    chosen = picks(scores)
    right = {call.name for call in case.possible_answers}
    return {rule: chosen[rule] in right for rule in RULES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", default="multiple")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    model = load_model(args.model, engine="mlx")
    engine = LocalChatModel.for_model(model)
    cases = [c for c in load_cases(args.category, args.data) if len(c.functions) > 1]
    cases = cases[: args.limit]
    right = dict.fromkeys(RULES, 0)
    won, lost = [], []
    for case in cases:
        result = run(case, model, engine)
        for rule in RULES:
            right[rule] += result[rule]
        if result["sum"] != result["greedy"]:
            (won if result["sum"] else lost).append(case.id)
        print(case.id, result, file=sys.stderr, flush=True)
    print(machine_description())
    print(f"{args.category}: {len(cases)} cases with more than one function, {args.model}")
    print("| rule | right function |\n|---|---:|")
    for rule in RULES:
        print(f"| {rule} | {right[rule]}/{len(cases)} |")
    print(f"whole-name sum against greedy: won {len(won)} {won}, lost {len(lost)} {lost}")


if __name__ == "__main__":
    main()
