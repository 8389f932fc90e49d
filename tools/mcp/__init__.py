"""Tools from MCP servers (Model Context Protocol), through the official `mcp` SDK.

    from tools import ToolRegistry
    from tools.mcp import MCPServerConfig

    registry = ToolRegistry(mcp_servers=["python my_server.py",
                                         MCPServerConfig("docs", url="http://host/mcp")])
    ...
    registry.close()  # stops the servers

Imported only when MCP servers are used: `tools` itself never loads the SDK.
"""

from __future__ import annotations

from tools.mcp.config import (
    DEFAULT_STARTUP_TIMEOUT,
    MCPServerConfig,
    as_config,
    load_mcp_config,
)
from tools.mcp.toolset import MCPToolset

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "MCPServerConfig",
    "MCPToolset",
    "as_config",
    "load_mcp_config",
]
