"""`edge-agent search`: ranked chunks from a retrieval index."""

from __future__ import annotations

import argparse
import json
import os
import sys

from agent.cli.common import positive_int, read_text_arg
from agent.progress import console_progress

# agent.retriever.SEARCH_MODES, without importing the retriever (numpy, SQLite) for
# `--help` (tests/test_cli_help.py checks that the two agree).
SEARCH_MODES = ("bm25", "dense", "hybrid")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a retrieval index built by `ingest`")
    p.add_argument("query", nargs="?", help="the query ('-' or omitted: read stdin)")
    p.add_argument(
        "--index", default=None, metavar="DIR", help="index directory (default: user data dir)"
    )
    p.add_argument("-k", type=positive_int, default=5, help="number of results (default: 5)")
    p.add_argument(
        "--mode",
        choices=SEARCH_MODES,
        default="bm25",
        help="bm25 keywords (default), dense embeddings, or hybrid (reciprocal rank fusion)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of hits")
    p.set_defaults(func=run)


def _display_path(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def run(args: argparse.Namespace) -> int:
    from agent.retriever.index import open_index

    query = read_text_arg(args.query, "query").strip()
    with console_progress() as progress:
        index = open_index(args.index, args.mode, progress=progress)
        with index:
            hits = index.search(query, args.k)
    if args.json:
        json.dump([hit.to_dict() for hit in hits], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    if not hits:
        print("no matches", file=sys.stderr)
        return 0
    for n, hit in enumerate(hits, start=1):
        print(f"[{n}] {_display_path(hit.path)}:{hit.start}-{hit.end}  score {hit.score:.4f}")
        for line in hit.text.strip().splitlines():
            print(f"    {line}")
        print()
    return 0
