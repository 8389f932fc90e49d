"""Extract a contact from every document of a folder, each value with its place in the text.

    python examples/extract_batch.py [PATH ...] [--model tiny] [--grounded] [--html FILE]
                                     [--batch N]

PATH defaults to examples/documents (a text note, an HTML page and a Markdown file).
Each result is printed with the characters each string value came from; with
`--grounded` every plain string is a verbatim quote of its document, by grammar (so
even the random-weight `tiny` model cannot invent one). `--html` writes the review page.
`--batch N` decodes N documents side by side on a local model (MLX or llama.cpp);
results keep their order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent import extract_many, load_model
from agent.docextract.review import ReviewItem, render
from agent.docextract.spans import leaves
from agent.errors import UserError

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(HERE / "documents")])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--grounded", action="store_true")
    parser.add_argument("--html", type=Path, default=None)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)

    try:
        model = load_model(args.model)
        pages = []
        for result in extract_many(
            "contact",
            args.paths,
            model,
            grounded=args.grounded,
            max_tokens=args.max_tokens,
            batch_size=args.batch,
        ):
            print(f"== {result.source}")
            if result.error:
                print(f"   error: {result.error}")
            for pointer, value in leaves(result.value):
                span = result.spans.get(pointer)
                where = f"chars {span[0]}-{span[1]}" if span else "not in the text"
                print(f"   {pointer} = {value!r} ({where})")
            pages.append(
                ReviewItem(result.source, result.text, result.value, result.spans,
                           result.error, tuple(result.notes), tuple(result.grounded))
            )  # fmt: skip
        if args.html is not None:
            args.html.write_text(render(pages), encoding="utf-8")
            print(f"review page: {args.html}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
