"""Built-in tools: calculator, http_get, read_file, list_dir, now.

`builtin_tools()` builds them with one configuration (the file tools' root directory,
the network policy of http_get); `builtin_tool(name)` builds one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agent.errors import UserError
from tools.builtin.calculator import calculator
from tools.builtin.clock import now
from tools.builtin.files import make_list_dir, make_read_file
from tools.builtin.http import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, make_http_get
from tools.tool import Tool

BUILTIN_TOOL_NAMES = ("calculator", "http_get", "read_file", "list_dir", "now")


def builtin_tools(
    names: Iterable[str] | None = None,
    *,
    root: str | Path = ".",
    allow_loopback: bool = False,
    allow_private_network: bool = False,
    http_timeout: float = DEFAULT_TIMEOUT,
    http_max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Tool]:
    """The built-in tools (all, or `names` in that order).

    `root` confines read_file and list_dir; the `allow_*` flags open http_get to
    loopback or to every private address (both refused by default).
    """
    wanted = list(BUILTIN_TOOL_NAMES if names is None else names)
    unknown = [n for n in wanted if n not in BUILTIN_TOOL_NAMES]
    if unknown:
        raise UserError(
            f"unknown built-in tool(s) {', '.join(unknown)}; "
            f"available: {', '.join(BUILTIN_TOOL_NAMES)}"
        )
    factories = {
        "calculator": lambda: calculator,
        "now": lambda: now,
        "read_file": lambda: make_read_file(root),
        "list_dir": lambda: make_list_dir(root),
        "http_get": lambda: make_http_get(
            allow_loopback=allow_loopback,
            allow_private_network=allow_private_network,
            timeout=http_timeout,
            max_bytes=http_max_bytes,
        ),
    }
    return [factories[n]() for n in dict.fromkeys(wanted)]


def builtin_tool(name: str, **config: object) -> Tool:
    """One built-in tool by name (same keyword configuration as `builtin_tools`)."""
    return builtin_tools([name], **config)[0]  # type: ignore[arg-type]


__all__ = [
    "BUILTIN_TOOL_NAMES",
    "builtin_tool",
    "builtin_tools",
    "calculator",
    "make_http_get",
    "make_list_dir",
    "make_read_file",
    "now",
]
