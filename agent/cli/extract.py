"""`edge-agent extract`: text in, schema-valid JSON out (stats on stderr)."""

from __future__ import annotations

import argparse
import json
import sys

import agent.limits as limits
from agent.cli.common import (
    add_model_arg,
    add_sampling_args,
    finite_float,
    load_engine,
    positive_int,
    read_file_arg,
    read_text_arg,
    sampling_from_args,
)
from agent.errors import UserError

# agent.constrained.compile.DEFAULT_COMPILE_TIMEOUT, without importing the grammar
# machinery for `--help` (tests/test_cli_help.py checks that the two agree).
COMPILE_TIMEOUT_S = 30.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="extract structured data from text into a JSON Schema (output always valid)",
    )
    p.add_argument("input", nargs="?", help="a text file to read ('-' or omitted: read stdin)")
    p.add_argument(
        "--schema",
        "-s",
        required=True,
        help="a JSON Schema file, or the name of a shipped schema "
        "(contact, invoice, event, product_review)",
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.extraction import extract_with_stats
    from agent.structured import load_schema, resolve_schema_early

    if args.compile_timeout <= 0:
        raise UserError(f"--compile-timeout must be positive, got {args.compile_timeout:g}")
    if args.text is not None and args.input is not None:
        raise UserError("pass either INPUT or --text, not both")
    # Schema problems are the user's to fix before any model is loaded.
    schema = load_schema(args.schema)
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
    )
    print(json.dumps(result.value, indent=args.indent, ensure_ascii=False))
    print(f"[{model.name}] {result.stats.summary()}", file=sys.stderr)
    return 0
