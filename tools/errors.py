"""Errors of the tool layer.

Definition problems (a bad annotation, a malformed BFCL definition, a broken tools module)
are user mistakes: they subclass `UserError`, so the CLI prints one line and exits 2.
Failures while a tool *runs* are not exceptions for the caller: the registry turns them
into a `ToolResult` with an error the model can read and react to.
"""

from __future__ import annotations

from agent.errors import UserError


class ToolDefinitionError(UserError):
    """A tool cannot be defined: names the tool and, where it applies, the parameter."""

    def __init__(self, tool: str, message: str, parameter: str | None = None) -> None:
        self.tool = tool
        self.parameter = parameter
        self.detail = message
        where = f"tool '{tool}'" + (f", parameter '{parameter}'" if parameter else "")
        super().__init__(f"{where}: {message}")


class ToolLoadError(UserError):
    """A tools module (--tools-module FILE) is missing, broken or defines no tools."""


class ToolExecutionError(Exception):
    """Raised inside a tool to report a failure to the model (refusals, bad input).

    Any exception a tool raises becomes an error result; this one marks failures the
    tool anticipated, so the model sees only the message, without an exception name.
    """


class MCPConfigError(UserError):
    """An MCP server is described wrongly (`--mcp`, `--mcp-config`, `mcp_servers=`)."""


class MCPStartError(UserError):
    """An MCP server did not start, or did not answer in time; names the server."""
