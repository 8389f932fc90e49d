"""`edge-agent ingest`: add files and folders to a retrieval index."""

from __future__ import annotations

import argparse
import sys

from agent.cli.common import positive_int
from agent.progress import console_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="index files and folders for retrieval (txt, md, html, pdf, source code)",
        description="Add, update or drop documents so the index matches the given files and "
        "folders. Unchanged files are skipped; files deleted from an ingested folder are "
        "dropped from the index.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and folders to ingest")
    p.add_argument(
        "--index", default=None, metavar="DIR", help="index directory (default: user data dir)"
    )
    p.add_argument(
        "--embed",
        action="store_true",
        help="also compute dense embeddings (all-MiniLM-L6-v2 in MLX) for --mode dense/hybrid; "
        "kept up to date by later ingests",
    )
    p.add_argument("--chunk-tokens", type=positive_int, default=None, help="tokens per chunk")
    p.add_argument("--overlap", type=int, default=None, help="tokens shared by adjacent chunks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.retriever.ingest import ingest

    def warn(message: str) -> None:
        print(f"edge-agent: warning: {message}", file=sys.stderr)

    with console_progress() as progress:
        summary = ingest(
            args.paths,
            args.index,
            chunk_tokens=args.chunk_tokens,
            overlap=args.overlap,
            embed=args.embed,
            progress=progress,
            warn=warn,
        )
    print(summary.line())
    return 0
