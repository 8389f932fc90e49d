"""`edge-agent extract --schema S PATH...` over many documents.

Records go to `--out` (or stdout) one JSON line per document as each one finishes;
progress with an ETA goes to stderr; `--html` writes the review page at the end (and
on Ctrl+C, with what is done). The exit code is 0 when every document was extracted,
2 when some could not be (their records say why; the others were still done).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import IO, Any

from agent.cli.common import load_engine, sampling_from_args
from agent.cli.extract import batch_size
from agent.errors import UserError

EXIT_SOME_FAILED = 2


def run_batch(args: argparse.Namespace, schema: object, tracing: Any = None) -> int:
    from agent.docextract import BatchProgress, Text, extract_many
    from agent.docextract.jsonl import read_done, results_file, write_record

    out = Path(args.out).expanduser() if args.out is not None else None
    html_path = Path(args.html).expanduser() if args.html is not None else None
    if html_path is not None and html_path.is_dir():
        raise UserError(f"--html '{args.html}' is a directory; give a file name")
    for given, path in (("--out", out), ("--html", html_path)):
        if path is not None and not path.parent.is_dir():
            raise UserError(f"{given} '{path}': the folder {path.parent} does not exist")
    kept = read_done(out) if out is not None else []
    done = {str(r["source"]) for r in kept}
    sources: list[Any] = []
    if args.text is not None:
        sources.append(Text(args.text, "<text>"))
    for item in args.inputs:
        if item == "-":
            from agent.cli.common import read_text_arg

            sources.append(Text(read_text_arg("-", "input text"), "<stdin>"))
        else:
            sources.append(item)
    if not sources:
        raise UserError("no documents: give files or folders, '-' for stdin, or --text")
    model = load_engine(args)
    texts: dict[str, str] = {}
    results: list[Any] = []
    failed = 0
    started = time.perf_counter()

    def show(p: BatchProgress) -> None:
        if p.finished is None:
            if p.chunks > 1:
                print(f"  {p.source}: part {p.chunk}/{p.chunks}", file=sys.stderr, flush=True)
            return
        r = p.finished
        status = f"error: {r.error}" if r.error else _ok_line(r)
        eta = "" if p.eta_s is None or p.done == p.total else f", ETA {_clock(p.eta_s)}"
        print(f"[{p.done}/{p.total}] {r.source}: {status}{eta}", file=sys.stderr, flush=True)

    if kept:
        print(f"resuming: {len(kept)} documents already in {out}", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        handle: IO[str] = stack.enter_context(results_file(out, kept)) if out else sys.stdout
        if html_path is not None:  # also on Ctrl+C: the page shows what is done
            stack.callback(lambda: _write_page(html_path, kept + results, texts))
        for result in extract_many(
            schema,
            sources,
            model,
            grounded=args.grounded,
            passes=args.passes,
            chunk_tokens=args.chunk_tokens,
            overlap=args.overlap,
            max_tokens=args.max_tokens,
            sampling=sampling_from_args(args, model),
            compile_timeout=args.compile_timeout,
            skip=done,
            progress=show,
            batch_size=batch_size(args, model),
            tracing=tracing,
            lookup=args.lookup,
        ):
            write_record(handle, result.to_json())
            texts[result.source] = result.text
            results.append(result.to_json())
            failed += result.error is not None
    elapsed = time.perf_counter() - started
    rate = len(results) / elapsed * 60 if elapsed > 0 else 0.0
    print(
        f"{len(results)} documents in {elapsed:.1f} s ({rate:.1f}/min), {failed} failed"
        + (f", {len(kept)} skipped (already in {out})" if kept else ""),
        file=sys.stderr,
    )
    if failed:
        where = f"in {out}" if out is not None else "on stdout"
        print(
            f"edge-agent: error: {failed} of {len(results)} documents could not be extracted "
            f"(see the 'error' field of their records {where})",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    return 0


def _ok_line(result: Any) -> str:
    parts = f", {result.chunks} parts" if result.chunks > 1 else ""
    quoted = f", {len(result.grounded)} grounded" if result.grounded else ""
    return f"ok ({result.seconds:.1f} s{parts}{quoted})"


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _write_page(path: Path, records: list[dict[str, Any]], texts: dict[str, str]) -> None:
    """The review page for every record; documents of earlier runs are read again."""
    from agent.docextract.review import ReviewItem, render
    from agent.docextract.sources import load

    items = []
    for record in records:
        source = str(record["source"])
        text = texts.get(source)
        if text is None and not source.startswith("<"):
            text = load(Path(source)).text
        items.append(
            ReviewItem(
                source=source,
                text=text or "",
                value=record.get("value"),
                spans={k: v for k, v in (record.get("spans") or {}).items()},
                error=record.get("error"),
                notes=tuple(record.get("notes") or ()),
                grounded=tuple(record.get("grounded") or ()),
            )
        )
    try:
        path.write_text(render(items), encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write --html '{path}': {exc.strerror or exc}") from None
    print(f"review page: {path}", file=sys.stderr)
