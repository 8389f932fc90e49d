"""`edge-agent serve`: the model behind an OpenAI-compatible HTTP API (agent.server).

The bind policy and the port are checked before the model loads, so a mistake costs no
wait: a non-loopback address without an API key, or a port in use, is one line on
stderr and exit 2. Then the model loads with its progress on stderr, the URL is shown,
and a line per request follows (queue wait, TTFT, prefill and decode rates). Ctrl+C
stops it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

from agent.cli.common import (
    add_model_arg,
    add_trace_args,
    load_with_progress,
    positive_int,
    tracing_from_args,
)
from agent.cli.mcp import add_mcp_args, mcp_servers_from_args, start_mcp
from agent.server.config import DEFAULT_HOST, DEFAULT_MAX_QUEUE, DEFAULT_PORT
from agent.server.serve import API_KEY_ENV

if TYPE_CHECKING:
    from tools import ToolRegistry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the model over an OpenAI-compatible HTTP API (valid tool calls and JSON)",
    )
    add_model_arg(p, remote=False)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}; any other needs an API key)",
    )
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    p.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help=f"clients must send 'Authorization: Bearer KEY' (default: ${API_KEY_ENV})",
    )
    p.add_argument(
        "--max-queue",
        type=_non_negative,
        default=DEFAULT_MAX_QUEUE,
        metavar="N",
        help=f"requests that may wait for the model; more get 429 (default {DEFAULT_MAX_QUEUE})",
    )
    p.add_argument(
        "--prompt-caches",
        type=_non_negative,
        default=4,
        metavar="N",
        help="prompt caches kept for other conversations, least recently used dropped "
        "first (default 4)",
    )
    p.add_argument(
        "--prompt-cache-mib",
        type=_non_negative,
        default=1024,
        metavar="MIB",
        help="memory those caches may take (default 1024)",
    )
    p.add_argument(
        "--served-name",
        default=None,
        metavar="NAME",
        help="the model id clients send and /v1/models lists (default: the model's name)",
    )
    p.add_argument(
        "--max-tokens-default",
        type=positive_int,
        default=None,
        metavar="N",
        help="tokens a request without max_tokens may generate (default: the context left)",
    )
    add_mcp_args(p)
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="run the --mcp servers' tools without approval (nobody is asked when serving: "
        "without --yes only servers marked trusted in --mcp-config run)",
    )
    add_trace_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.server import serve as server

    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    server.check_exposure(args.host, api_key)
    servers = mcp_servers_from_args(args)
    sock = server.bind(args.host, args.port)
    try:
        # The servers' tools run here, for every request (before the model loads: a
        # server that does not start costs no wait).
        registry = start_mcp(servers)
    except BaseException:
        sock.close()
        raise
    try:
        with tracing_from_args(args) as tracing:
            return _serve(args, api_key, sock, registry if len(registry) else None, tracing)
    finally:
        registry.close()


def _serve(
    args: argparse.Namespace,
    api_key: str | None,
    sock: socket.socket,
    tools: ToolRegistry | None,
    tracing: Any,
) -> int:
    from agent.server import ServerConfig
    from agent.server import serve as server

    if tools is not None and not args.yes:
        untrusted = sorted({t.name for t in tools if t.requires_approval})
        if untrusted:
            print(
                f"edge-agent serve: note: {len(untrusted)} MCP tool(s) need approval and "
                "nobody is asked here, so their calls are refused; pass --yes, or mark the "
                'server "trusted": true in --mcp-config',
                file=sys.stderr,
            )
    config = ServerConfig(
        api_key=api_key,
        max_queue=args.max_queue,
        prompt_caches=args.prompt_caches,
        prompt_cache_bytes=args.prompt_cache_mib << 20,
        served_name=args.served_name,
        default_max_tokens=args.max_tokens_default,
        server_tools=tools,
        approve_server_tools=args.yes,
        tracing=tracing,
    )
    try:
        from agent.engines.local import LocalChatModel

        engine = LocalChatModel.for_model(load_with_progress(args.model, args.engine))
        info = engine.info
        name = config.served_name or engine.name

        def ready(url: str) -> None:
            print(
                f"edge-agent serve: {name} ({info.quantization} on {info.engine}, context "
                f"{info.context_length:,}) at {url}"
                + (" (API key required)" if api_key else "")
                + "; Ctrl+C stops",
                file=sys.stderr,
                flush=True,
            )

        server.configure_logging()
        server.run(engine, sock, config, on_ready=ready)
    finally:
        sock.close()
    print("edge-agent serve: stopped", file=sys.stderr)
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got '{text}'") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value
