"""The MCP client flags `run`, `chat` and `serve` share: `--mcp` and `--mcp-config`.

Servers are described (and their descriptions checked) before anything loads, and
started before the model loads, so a server that does not start is one line and exit 2
without waiting for a model.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools import Tool, ToolRegistry
    from tools.mcp import MCPServerConfig


def add_mcp_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mcp",
        action="append",
        default=[],
        metavar='"CMD ARGS"',
        help="start an MCP server (a command speaking MCP on stdio, or an http(s):// URL "
        "of a streamable HTTP server) and offer its tools; its calls need approval "
        "(repeat for several)",
    )
    p.add_argument(
        "--mcp-config",
        default=None,
        metavar="FILE",
        help='MCP servers from a JSON file {"mcpServers": {NAME: {"command", "args", "env"} '
        'or {"url", "headers"}}}; "trusted": true runs a server\'s tools without approval',
    )


def mcp_servers_from_args(args: argparse.Namespace) -> list[MCPServerConfig]:
    """The servers `--mcp` and `--mcp-config` describe (MCPConfigError if wrongly)."""
    commands = getattr(args, "mcp", None) or []
    path = getattr(args, "mcp_config", None)
    if not commands and path is None:
        return []
    from tools.mcp import MCPServerConfig, load_mcp_config

    servers = load_mcp_config(path) if path is not None else []
    servers += [MCPServerConfig.from_command_line(c) for c in commands]
    return servers


def start_mcp(servers: list[MCPServerConfig], tools: Iterable[Tool] = ()) -> ToolRegistry:
    """A registry of `tools` plus the servers' tools, with progress on stderr; the caller
    closes it (which stops the servers)."""
    from tools import ToolRegistry

    registry = ToolRegistry(tools)
    if not servers:
        return registry
    names = ", ".join(s.name for s in servers)
    print(f"edge-agent: starting {len(servers)} MCP server(s): {names}", file=sys.stderr)
    started = time.perf_counter()
    registry.add_mcp_servers(servers)
    by_server: dict[str, list[str]] = {}
    for name in registry.names():
        server = registry.mcp_server_of(name)
        if server is not None:
            by_server.setdefault(server, []).append(name)
    for s in servers:
        offered = by_server.get(s.name, [])
        approval = "calls need approval" if s.approval else "trusted"
        print(
            f"edge-agent: MCP server {s.name} ({s.transport}, {approval}): "
            f"{len(offered)} tool(s)" + (f": {', '.join(offered)}" if offered else ""),
            file=sys.stderr,
        )
    print(f"edge-agent: MCP servers ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return registry
