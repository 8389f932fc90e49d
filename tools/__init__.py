"""Tools: define them (`@tool`, OpenAI/BFCL definitions), list them for the prompt,
compile their call schema, and execute the calls a model makes.

    from tools import tool, ToolRegistry, ToolCall

    @tool
    def add(a: int, b: int) -> int:
        '''Add two integers.'''
        return a + b

    registry = ToolRegistry([add])
    result = await registry.execute(ToolCall("1", "add", {"a": 2, "b": 3}))
"""

from __future__ import annotations

import logging

from tools.approval import approve_all, deny_all, prompt_approval
from tools.builtin import BUILTIN_TOOL_NAMES, builtin_tool, builtin_tools
from tools.calls import ApprovalCallback, ToolCall, ToolOutput, ToolResult
from tools.errors import ToolDefinitionError, ToolExecutionError, ToolLoadError
from tools.registry import ToolRegistry
from tools.tool import DEFAULT_TIMEOUT, Tool, tool

# Quiet unless the application configures logging (the CLI: --verbose, EDGE_AGENT_LOG).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "DEFAULT_TIMEOUT",
    "ApprovalCallback",
    "Tool",
    "ToolCall",
    "ToolDefinitionError",
    "ToolExecutionError",
    "ToolLoadError",
    "ToolOutput",
    "ToolRegistry",
    "ToolResult",
    "approve_all",
    "builtin_tool",
    "builtin_tools",
    "deny_all",
    "prompt_approval",
    "tool",
]
