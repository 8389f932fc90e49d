"""`edge-agent mcp-serve`: built-in tools, `rag_search` and `extract` as an MCP server.

On stdio (the default) an MCP client launches it as a subprocess; with `--http` it
serves streamable HTTP at http://HOST:PORT/mcp. Everything a user can get wrong (tool
names, the index, the bind address) is checked before it starts serving; the model
for `extract` loads on the first extraction, with its progress on stderr (stdout is
the MCP channel).
"""

from __future__ import annotations

import argparse
import os
import sys

from agent.cli.common import add_model_arg
from agent.cli.serve import _port


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mcp-serve",
        help="offer built-in tools, rag_search and extract to MCP clients (stdio or HTTP)",
    )
    p.add_argument("--index", default=None, metavar="DIR", help="offer rag_search over this index")
    p.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="NAME",
        help="offer only these tools (repeat): calculator, http_get, read_file, list_dir, "
        "now, rag_search, extract (default: all, rag_search with --index)",
    )
    add_model_arg(p, remote=False)  # the model of `extract`
    p.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="address to bind with --http")
    p.add_argument("--port", type=_port, default=8765, help="port with --http (0: any)")
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="with --http, clients must send 'Authorization: Bearer KEY' (needed beyond "
        "loopback; default: $EDGE_AGENT_API_KEY)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.cli.run import open_index_arg
    from agent.mcp_serve import Extractor, mcp_server, serve_http, serve_stdio, served_registry
    from agent.models.registry import check_model_spec
    from agent.server import serve as http_server

    check_model_spec(args.model)
    api_key = args.api_key or os.environ.get(http_server.API_KEY_ENV) or None
    if args.http:
        http_server.check_exposure(args.host, api_key)
    retriever = open_index_arg(args.index) if args.index else None
    extractor = Extractor(args.model, args.engine)
    sock = None
    try:
        registry = served_registry(args.tool, retriever=retriever, extractor=extractor)
        server = mcp_server(registry)
        listing = ", ".join(registry.names())
        if args.http:
            sock = http_server.bind(args.host, args.port)
        if "extract" in registry:
            extractor.preload()  # on its worker thread, while clients connect
        if sock is None:
            print(f"edge-agent mcp-serve: {listing} on stdio", file=sys.stderr, flush=True)
            serve_stdio(server)
            return 0

        def ready(url: str) -> None:
            print(f"edge-agent mcp-serve: {listing} at {url}; Ctrl+C stops",
                  file=sys.stderr, flush=True)  # fmt: skip

        serve_http(server, sock, args.host, api_key, on_ready=ready)
        print("edge-agent mcp-serve: stopped", file=sys.stderr)
        return 0
    finally:
        if sock is not None:
            sock.close()
        extractor.close()
        if retriever is not None:
            retriever.close()
