"""A small MCP server written with the official SDK (`MCPServer`, FastMCP's name in mcp 2).

    edge-agent run --mcp "python examples/mcp_server.py" --tool-choice add --yes "2 + 3?"

Any MCP client can launch it the same way: it speaks MCP on stdin/stdout.
"""

from __future__ import annotations

from typing import Literal

from mcp.server.mcpserver import MCPServer

server = MCPServer("demo", log_level="ERROR")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def forecast(city: Literal["Oslo", "Lima", "Paris"], days: int = 1) -> dict:
    """A (made-up) weather forecast for a city."""
    return {"city": city, "days": days, "sky": "sunny", "high_c": 21}


if __name__ == "__main__":
    server.run()
