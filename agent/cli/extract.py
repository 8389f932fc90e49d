"""`edge-agent extract`: text in, output of the requested type out (stats on stderr).

`--schema` prints JSON; `--regex`, `--grammar` (a Lark file) and `--choice` print the
matched text as it was generated, so a shell pipeline gets exactly what matched.

With several paths, a folder, `--out` or `--html`, `--schema` runs over every document
(`agent.docextract`): one JSON line per document with the span of each value, errors
per document (the others go on), progress with an ETA on stderr, resumable `--out`.
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
from agent.prompt_lookup import EXTRACTION_LOOKUP

# agent.constrained.compile.DEFAULT_COMPILE_TIMEOUT, without importing the grammar
# machinery for `--help` (tests/test_cli_help.py checks that the two agree).
COMPILE_TIMEOUT_S = 30.0
# agent.docextract.batch.DEFAULT_BATCH_SIZES, for the same reason (and the same test).
DEFAULT_BATCHES = {"mlx": 8, "llama.cpp": 1}
MAX_BATCH = 64  # each row holds a cache of its prompt: a bound on memory, not a tuning


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract",
        help="extract structured data from text into a JSON Schema, a regex, a grammar or "
        "a choice (output always valid)",
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="PATH",
        help="files or folders to read (text, Markdown, HTML, PDF, code); '-' or none: read stdin",
    )
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
    p.add_argument("--text", default=None, help="the text itself, instead of PATH")
    p.add_argument(
        "--out",
        metavar="FILE.jsonl",
        default=None,
        help="write one JSON line per document (source, value, spans, error); a rerun "
        "with the same file skips the documents already done",
    )
    p.add_argument(
        "--grounded",
        action="store_true",
        help="every plain string value is a verbatim quote of its document, by grammar "
        '(or mark single string properties with "x-grounded": true)',
    )
    p.add_argument(
        "--html",
        metavar="FILE",
        default=None,
        help="write a self-contained review page highlighting each value in its text",
    )
    p.add_argument(
        "--passes",
        type=positive_int,
        default=1,
        help="go over each document N times, telling the model what was found (recall)",
    )
    p.add_argument(
        "--chunk-tokens",
        type=positive_int,
        default=None,
        help="split documents into parts of about N tokens (default 512, fewer when the "
        "context needs it)",
    )
    p.add_argument(
        "--overlap", type=int, default=None, help="tokens shared by adjacent parts (default N/8)"
    )
    p.add_argument(
        "--batch",
        type=positive_int,
        default=None,
        metavar="N",
        help="decode N parts (of one document or several) at once on a local model "
        f"(default {DEFAULT_BATCHES['mlx']} on MLX, {DEFAULT_BATCHES['llama.cpp']} on "
        f"llama.cpp, where it measured no faster; 1: one at a time; at most {MAX_BATCH})",
    )
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
        "--lookup",
        type=int,
        default=EXTRACTION_LOOKUP,
        metavar="N",
        help="on MLX, feed up to N tokens copied from the document with each sampled one "
        "and keep those the model would have chosen anyway: the same JSON in fewer "
        f"forward passes (default {EXTRACTION_LOOKUP}; 0: off)",
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
    from agent.structured import resolve_schema_early

    if args.batch is not None and args.batch > MAX_BATCH:
        raise UserError(f"--batch must be at most {MAX_BATCH}, got {args.batch}")
    if args.lookup < 0:
        raise UserError(f"--lookup must be 0 or more, got {args.lookup}")
    if args.compile_timeout <= 0:
        raise UserError(f"--compile-timeout must be positive, got {args.compile_timeout:g}")
    if args.text is not None and args.inputs:
        raise UserError("pass either PATH or --text, not both")
    if args.indent is not None and args.schema is None:
        raise UserError("--indent applies to --schema output (JSON) only")
    batch = _is_batch(args)
    _check_chunking(args)
    if batch and args.indent is not None:
        raise UserError("--indent applies to one document printed on stdout, not to JSONL")
    if args.schema is None and (batch or args.grounded or args.passes > 1):
        raise UserError("several documents, --out, --html, --grounded and --passes need --schema")
    # Schema, regex and grammar problems are the user's to fix before a model loads.
    schema = _output_type(args)
    resolve_schema_early(schema)
    grounded = False
    if args.schema is not None:
        from agent.constrained.grounded import has_grounded_strings
        from agent.constrained.output_types import resolve_output_type

        json_schema = resolve_output_type(schema).json_schema
        grounded = has_grounded_strings(json_schema, ground_all=args.grounded)
    if batch:
        from agent.cli.extract_batch import run_batch

        return run_batch(args, schema, tracing)
    text = _single_text(args)
    model = load_engine(args)
    if args.schema is not None and (grounded or args.passes > 1 or _needs_parts(args, text)):
        return _single_document(args, schema, text, model, tracing)
    from agent.extraction import extract_with_stats

    result = extract_with_stats(
        text,
        schema,
        model,
        max_tokens=args.max_tokens,
        sampling=sampling_from_args(args, model),
        compile_timeout=args.compile_timeout,
        tracing=tracing,
        lookup=args.lookup,
    )
    if args.schema is not None:
        print(json.dumps(result.value, indent=args.indent, ensure_ascii=False))
    else:
        print(result.text)
    print(f"[{model.name}] {result.stats.summary()}", file=sys.stderr)
    return 0


def _needs_parts(args: argparse.Namespace, text: str) -> bool:
    """Whether one document is longer than one part (then it is split and merged; a
    short one is extracted in one call, traced as before)."""
    from agent.retriever.chunking import count_tokens

    return count_tokens(text) > (args.chunk_tokens or 512)


def _check_chunking(args: argparse.Namespace) -> None:
    """--chunk-tokens and --overlap, checked before a model loads."""
    size = args.chunk_tokens or 512  # agent.docextract.chunks.DEFAULT_CHUNK_TOKENS
    if size < 16:
        raise UserError(f"--chunk-tokens must be at least 16, got {size}")
    if args.overlap is not None and not 0 <= args.overlap <= size // 2:
        raise UserError(
            f"--overlap must be between 0 and half of --chunk-tokens ({size // 2}), "
            f"got {args.overlap}"
        )


def _is_batch(args: argparse.Namespace) -> bool:
    """Several documents (or a folder), or a results file or page asked for."""
    from pathlib import Path

    if args.out is not None or args.html is not None or len(args.inputs) > 1:
        return True
    return bool(args.inputs) and args.inputs[0] != "-" and Path(args.inputs[0]).is_dir()


def _single_text(args: argparse.Namespace) -> str:
    """The one document's text: --text, stdin or the file (through its loader)."""
    from pathlib import Path

    if args.text is not None:
        limits.check_text(args.text, "the --text")
        text = args.text
    elif not args.inputs or args.inputs[0] == "-":
        text = read_text_arg(args.inputs[0] if args.inputs else None, "input text")
    else:
        from agent.docextract.sources import load_file
        from agent.retriever.loaders import kind_of

        path = Path(args.inputs[0]).expanduser()
        kind = kind_of(path) or "text"
        if kind == "text" or kind == "code":
            text = read_file_arg(args.inputs[0], "input file")
        else:
            document = load_file(path, kind)
            if document.error is not None:
                raise UserError(f"input file '{args.inputs[0]}': {document.error}")
            text = document.text
    if not text.strip():
        raise UserError("the input text is empty")
    return text


def _single_document(
    args: argparse.Namespace, schema: object, text: str, model: object, tracing: Any
) -> int:
    """One long or grounded document: its value on stdout as JSON (spans are for --out),
    stats on stderr."""
    from agent.docextract import Text, extract_many

    name = args.inputs[0] if args.inputs and args.inputs[0] != "-" else "<text>"
    (result,) = extract_many(
        schema,
        [Text(text, name)],
        model,
        grounded=args.grounded,
        passes=args.passes,
        chunk_tokens=args.chunk_tokens,
        overlap=args.overlap,
        max_tokens=args.max_tokens,
        sampling=sampling_from_args(args, model),  # type: ignore[arg-type]
        compile_timeout=args.compile_timeout,
        batch_size=batch_size(args, model),
        tracing=tracing,
        lookup=args.lookup,
    )
    if result.error is not None:
        raise UserError(result.error)
    print(json.dumps(result.value, indent=args.indent, ensure_ascii=False))
    name_of_model = getattr(model, "name", "model")
    if result.chunks > 1:
        print(f"[{name_of_model}] {result.chunks} parts merged", file=sys.stderr)
        for note in result.notes:
            print(f"  {note}", file=sys.stderr)
    if result.stats is not None:
        print(f"[{name_of_model}] {result.stats.summary()}", file=sys.stderr)
    return 0


def batch_size(args: argparse.Namespace, model: object) -> int | None:
    """--batch (None: the engine's default); a note when the model takes pieces one at
    a time (a server model: batching is the server's business)."""
    from agent.engines.local import LocalChatModel

    local = isinstance(model, LocalChatModel)
    if args.batch is not None and args.batch > 1 and not local:
        name = getattr(model, "name", "this model")
        print(
            f"note: --batch applies to local models; {name} extracts one part at a time",
            file=sys.stderr,
        )
    return args.batch if local else 1


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
