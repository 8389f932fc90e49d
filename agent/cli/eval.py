"""`edge-agent eval`: benchmarks. `eval bfcl run` puts BFCL's single-turn cases to a
model (constrained, free and baseline modes) and reports; `eval bfcl score` scores a
results file.

Nothing here imports MLX or the scorer at import time: `--help` stays instant, and the
run checks its input (categories, data, output directory) before a model loads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from agent.cli.common import add_model_arg, add_sampling_args, positive_int
from agent.errors import UserError
from agent.eval.bfcl_data import CATEGORIES, DATA_ENV_VAR


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="benchmarks (BFCL function calling)")
    benchmarks = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    bfcl = benchmarks.add_parser(
        "bfcl", help="Berkeley Function Calling Leaderboard, single-turn categories"
    )
    actions = bfcl.add_subparsers(dest="bfcl_command", required=True, metavar="ACTION")
    register_bfcl_run(actions)
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


# ----------------------------------------------------------------------------- run
MODE_CHOICES = ("constrained", "free", "baseline", "both", "all")


def register_bfcl_run(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "run",
        help="run a model on BFCL cases and report accuracy per category and mode",
        description="Put BFCL's single-turn cases to a model and score them by BFCL's AST "
        "rules. constrained: edge-agent's tool-call path under its grammar (tool choice "
        "required; auto in the irrelevance categories). free: no grammar, calls read by "
        "the model's own parser (BFCL's [func(param=value)] prompt for a model without "
        "call tokens). baseline: a naive prompt with the functions' JSON and a plain "
        "JSON-schema grammar. Writes OUT/<category>.<mode>.jsonl (one line per case, "
        "flushed as it ends; a rerun resumes), summary.json and accuracy.png.",
    )
    add_model_arg(p)
    p.add_argument(
        "--category",
        action="append",
        default=None,
        metavar="CATS",
        help="categories, comma-separated or repeated, or 'all' (default: all): "
        + ", ".join(CATEGORIES),
    )
    p.add_argument(
        "--mode",
        default="both",
        choices=MODE_CHOICES,
        help="constrained, free, baseline, both (constrained and free) or all three "
        "(default: both)",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="N cases per category, a fixed sample: random.Random(--sample-seed) picks "
        "the indices, kept in file order (default: every case)",
    )
    p.add_argument(
        "--sample-seed",
        type=int,
        default=0,
        metavar="S",
        help="the seed of the --limit sample (default 0)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="directory for results, summary and chart"
    )
    add_data_arg(p)
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=256,
        help="tokens a case may generate (default 256); a constrained call always fits",
    )
    p.add_argument(
        "--free-prompt",
        default="auto",
        choices=("auto", "native", "bfcl"),
        help="free mode's prompt: native (the model's own call format), bfcl (BFCL's "
        "[func(param=value)] prompt), or auto (native where the model has call tokens or "
        "is a server, else bfcl)",
    )
    add_sampling_args(p)
    p.add_argument(
        "--json", action="store_true", help="print the summary as JSON instead of the table"
    )
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    from agent.eval.bfcl_modes import MODE_SETS
    from agent.eval.bfcl_report import build_report
    from agent.eval.bfcl_run import BfclRunner, RunSettings, check_manifest, plan_run

    modes = MODE_SETS[args.mode]
    plan = plan_run(
        args.category or ["all"],
        modes,
        args.out,
        limit=args.limit,
        sample_seed=args.sample_seed,
        data_dir=args.data,
    )
    sampling = _sampling(args)
    settings = RunSettings(
        model=args.model if args.base_url is None else f"{args.model}@{args.base_url}",
        engine=args.engine,
        max_tokens=args.max_tokens,
        sampling=_sampling_dict(sampling),
        free_prompt=args.free_prompt,
    )
    check_manifest(plan.out_dir, settings)
    from agent.cli.common import load_engine

    model = load_engine(args)
    display = _ProgressLine()
    runner = BfclRunner(
        model,
        sampling=sampling,
        max_tokens=args.max_tokens,
        free_prompt=args.free_prompt,
        progress=display.show,
        warn=display.warn,
    )
    interrupted = False
    try:
        runner.run(plan)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        display.end()
        model.close()
    info = {**settings.to_dict(), "model_name": model.name, "free_prompt": runner.free_prompt}
    report = build_report(plan.jobs, plan.selected, info)
    report.write_summary(plan.out_dir)
    try:
        chart = report.write_chart(plan.out_dir)
    except ImportError as exc:
        print(f"edge-agent: chart skipped: {exc}", file=sys.stderr)
    else:
        print(f"chart: {chart}", file=sys.stderr)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.table())
    if interrupted:
        print(
            "edge-agent: interrupted; finished cases are kept, run again to resume",
            file=sys.stderr,
        )
        return 130
    return 0


def _sampling(args: argparse.Namespace) -> Any:
    """Greedy decoding unless a flag says otherwise: a benchmark must be repeatable."""
    from agent.sampling import SamplingParams

    try:
        return SamplingParams.greedy().with_overrides(
            temperature=args.temp,
            top_p=args.top_p,
            min_p=args.min_p,
            repetition_penalty=args.repetition_penalty,
            seed=args.seed,
        )
    except UserError:
        raise
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad sampling setting: {exc}") from None


def _sampling_dict(sampling: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(sampling)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class _ProgressLine:
    """Progress with ETA on stderr: one redrawn line on a terminal, else a line about
    every 5% (and the last)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.open = False
        self.last_step = -1
        self.started = time.perf_counter()

    def show(self, p: Any) -> None:
        if p.total == 0:
            if p.skipped:
                print(f"bfcl: all {p.skipped} cases already done", file=sys.stderr)
            return
        if p.done == 0:
            resumed = f", {p.skipped} already done" if p.skipped else ""
            print(f"bfcl: {p.total} cases to run{resumed}", file=sys.stderr)
            return
        where = f"{p.category} {p.mode}"
        line = (
            f"bfcl {p.done}/{p.total} ({100 * p.done / p.total:.0f}%) {where} "
            f"elapsed {_clock(p.elapsed_s)} ETA {_clock(p.eta_s)}"
        )
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
            self.open = True
            return
        step = p.done * 20 // p.total
        if step != self.last_step or p.done == p.total:
            self.last_step = step
            print(line, file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        self.end()
        print(f"edge-agent: warning: {message}", file=sys.stderr, flush=True)

    def end(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open = False
