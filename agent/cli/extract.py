"""`edge-agent extract`: text in, output of the requested type out (stats on stderr).

`--schema` prints JSON; `--regex`, `--grammar` (a Lark file) and `--choice` print the
matched text as it was generated, so a shell pipeline gets exactly what matched.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import agent.limits as limits
from agent.cli.common import (
    add_model_arg,
    add_sampling_args,
    add_trace_args,
    finite_float,
    load_engine,
    positive_int,
    read_file_arg,
    read_text_arg,
    sampling_from_args,
    tracing_from_args,
)
from agent.errors import UserError

# agent.constrained.compile.DEFAULT_COMPILE_TIMEOUT, without importing the grammar
# machinery for `--help` (tests/test_cli_help.py checks that the two agree).
COMPILE_TIMEOUT_S = 30.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="extract structured data from text into a JSON Schema, a regex, a grammar or "
        "a choice (output always valid)",
    )
    p.add_argument("input", nargs="?", help="a text file to read ('-' or omitted: read stdin)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--schema",
        "-s",
        help="a JSON Schema file, or the name of a shipped schema "
        "(contact, invoice, event, product_review); prints JSON",
    )
    what.add_argument(
        "--regex",
        metavar="PATTERN",
        help="a regular expression the whole output matches (Rust regex syntax); "
        "prints the matched text",
    )
    what.add_argument(
        "--grammar",
        metavar="FILE.lark",
        help="a context-free grammar in Lark syntax (compiled by llguidance); prints the text",
    )
    what.add_argument(
        "--choice",
        metavar="A,B,C",
        help="comma-separated choices; prints the chosen one",
    )
    p.add_argument("--text", default=None, help="the text itself, instead of INPUT")
    add_model_arg(p)
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=512,
        help="tokens the JSON may take at most (default 512)",
    )
    p.add_argument(
        "--compile-timeout",
        type=finite_float,
        default=COMPILE_TIMEOUT_S,
        help=f"seconds allowed for compiling the schema (default {COMPILE_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--indent", type=int, default=None, metavar="N", help="pretty-print the JSON, N spaces"
    )
    add_sampling_args(p)
    add_trace_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with tracing_from_args(args) as tracing:
        return _run(args, tracing)


def _run(args: argparse.Namespace, tracing: Any) -> int:
    from agent.extraction import extract_with_stats
    from agent.structured import resolve_schema_early

    if args.compile_timeout <= 0:
        raise UserError(f"--compile-timeout must be positive, got {args.compile_timeout:g}")
    if args.text is not None and args.input is not None:
        raise UserError("pass either INPUT or --text, not both")
    if args.indent is not None and args.schema is None:
        raise UserError("--indent applies to --schema output (JSON) only")
    # Schema, regex and grammar problems are the user's to fix before a model loads.
    schema = _output_type(args)
    resolve_schema_early(schema)
    if args.text is not None:
        limits.check_text(args.text, "the --text")
        text = args.text
    elif args.input in (None, "-"):
        text = read_text_arg(args.input, "input text")
    else:
        text = read_file_arg(args.input, "input file")
    if not text.strip():
        raise UserError("the input text is empty")
    model = load_engine(args)
    result = extract_with_stats(
        text,
        schema,
        model,
        max_tokens=args.max_tokens,
        sampling=sampling_from_args(args, model),
        compile_timeout=args.compile_timeout,
        tracing=tracing,
    )
    if args.schema is not None:
        print(json.dumps(result.value, indent=args.indent, ensure_ascii=False))
    else:
        print(result.text)
    print(f"[{model.name}] {result.stats.summary()}", file=sys.stderr)
    return 0


def _output_type(args: argparse.Namespace) -> object:
    """The output type the flags ask for (read and checked, no model needed)."""
    from agent.constrained.output_types import CFG, Regex
    from agent.structured import load_schema

    if args.schema is not None:
        return load_schema(args.schema)
    if args.regex is not None:
        if not args.regex:
            raise UserError("--regex is empty")
        return Regex(args.regex)
    if args.grammar is not None:
        grammar = read_file_arg(args.grammar, "grammar file")
        if not grammar.strip():
            raise UserError(f"grammar file '{args.grammar}' is empty")
        return CFG(grammar)
    choices = [c.strip() for c in args.choice.split(",")]
    if not any(choices) or not all(choices):
        raise UserError(f"--choice needs comma-separated non-empty choices, got {args.choice!r}")
    if len(set(choices)) != len(choices):
        raise UserError(f"--choice lists a choice twice: {args.choice!r}")
    return choices
