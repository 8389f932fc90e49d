"""`MCPToolset`: MCP servers started together, their tools as edge-agent `Tool`s.

Servers start in parallel, each within its startup timeout; if one fails, the others
are stopped and the error names the one that failed. Each MCP tool becomes a `Tool`
whose parameters are the server's `inputSchema` (so the call grammar covers it like
any other tool) and whose function forwards the call to the server. A tool name that
collides with another tool is listed as `<server>_<name>`.
"""

from __future__ import annotations

import asyncio
import atexit
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from tools.errors import MCPStartError, ToolDefinitionError
from tools.mcp.config import MCPServerConfig, as_config, unique_names
from tools.mcp.connection import STOP_TIMEOUT, MCPConnection
from tools.mcp.loop import LoopThread
from tools.mcp.results import to_output
from tools.signature import ArgumentBinder
from tools.tool import Tool

_LIVE: weakref.WeakSet[MCPToolset] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class MCPToolset:
    """Running MCP servers and the tools they offer. Stop them with `close()` (or use
    the toolset as a context manager); servers still running at exit are stopped then."""

    def __init__(self, connections: list[MCPConnection], loop: LoopThread) -> None:
        self.connections = connections
        self.tools: list[Tool] = []
        self._loop = loop
        self._closed = False
        self._remote: dict[str, tuple[MCPConnection, str]] = {}

    @classmethod
    def start(
        cls,
        servers: Iterable[MCPServerConfig | str | Mapping[str, Any]],
        *,
        reserved: Iterable[str] = (),
        errlog: TextIO | None = None,
    ) -> MCPToolset:
        """Start `servers` in parallel and list their tools. `reserved`: names taken by
        other tools (an MCP tool with one of them is prefixed with its server's name)."""
        configs = unique_names(as_config(s) for s in servers)
        loop = LoopThread("edge-agent-mcp")
        toolset = cls([MCPConnection(c, errlog) for c in configs], loop)
        with _LIVE_LOCK:
            _LIVE.add(toolset)
        try:
            listings = loop.run(toolset._start_all())
            toolset._build_tools(listings, set(reserved))
        except BaseException:
            toolset.close()
            raise
        return toolset

    async def _start_all(self) -> list[list[Any]]:
        results = await asyncio.gather(
            *(c.start() for c in self.connections), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = next((f for f in failures if isinstance(f, MCPStartError)), failures[0])
            raise first
        return [r for r in results if not isinstance(r, BaseException)]

    # ------------------------------------------------------------------ tools
    def _build_tools(self, listings: list[list[Any]], reserved: set[str]) -> None:
        offered = [
            (conn, remote, _tool_name(remote.name))
            for conn, tools in zip(self.connections, listings, strict=True)
            for remote in tools
        ]
        counts: dict[str, int] = {}
        for _, _, name in offered:
            counts[name] = counts.get(name, 0) + 1
        for conn, remote, name in offered:
            local = name
            if counts[name] > 1 or name in reserved:
                local = _tool_name(f"{conn.name}_{name}")
            if local in reserved or local in self._remote:
                raise ToolDefinitionError(
                    local,
                    f"MCP server '{conn.name}' offers tool '{remote.name}', and both its "
                    "name and its prefixed name are taken; rename the server",
                )
            self.tools.append(self._make_tool(conn, remote, local))
            self._remote[local] = (conn, remote.name)

    def _make_tool(self, conn: MCPConnection, remote: Any, local: str) -> Tool:
        loop, remote_name = self._loop, remote.name

        async def call_mcp_tool(**arguments: Any) -> Any:
            result = await loop.run_async(conn.call(remote_name, arguments))
            return to_output(result, local)

        from tools.definitions import normalize_parameters

        try:
            parameters = normalize_parameters(remote.input_schema, local)
            return Tool(
                name=local,
                description=remote.description or remote.title or "",
                parameters=parameters,
                function=call_mcp_tool,
                timeout=conn.config.timeout,
                requires_approval=conn.config.approval,
                binder=ArgumentBinder((), var_keyword=True),
            )
        except ToolDefinitionError as exc:
            raise ToolDefinitionError(
                local, f"MCP server '{conn.name}': {exc.detail}", exc.parameter
            ) from None

    def server_of(self, tool_name: str) -> str | None:
        """The name of the server offering `tool_name` (None if not one of these)."""
        found = self._remote.get(tool_name)
        return found[0].name if found else None

    # --------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Stop every server (in parallel, bounded) and the loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run(self._close_all(), timeout=3 * STOP_TIMEOUT)
        except (TimeoutError, RuntimeError):
            pass  # the loop is gone or wedged: its daemon thread dies with the process
        finally:
            self._loop.stop()
            with _LIVE_LOCK:
                _LIVE.discard(self)

    async def _close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)

    def __enter__(self) -> MCPToolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tool_name(name: str) -> str:
    """An MCP tool name as an edge-agent tool name (letters, digits, _ . : -)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]", "_", str(name))[:128]
    if not cleaned or not re.match(r"[A-Za-z0-9_]", cleaned):
        cleaned = ("t" + cleaned)[:128]
    return cleaned


@atexit.register
def _close_all_at_exit() -> None:
    """Servers a program forgot to stop are stopped, not orphaned, when it exits."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for toolset in live:
        toolset.close()
