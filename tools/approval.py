"""Ready-made approval callbacks for tools marked `requires_approval`."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from tools.calls import ToolCall
from tools.tool import Tool


def prompt_approval(
    call: ToolCall, tool: Tool, *, stdin: TextIO | None = None, stderr: TextIO | None = None
) -> bool:
    """Ask on the terminal: 'Run tool NAME(args)? [y/N]'. Anything but y/yes is a no,
    and so is end of input (a script piping stdin never approves by accident)."""
    inp, out = stdin or sys.stdin, stderr or sys.stderr
    args = json.dumps(call.arguments, ensure_ascii=False)
    if len(args) > 500:
        args = args[:500] + "..."
    out.write(f"Run tool {tool.name}({args})? [y/N] ")
    out.flush()
    line = inp.readline()
    if not line:
        out.write("\n")
        return False
    return line.strip().lower() in ("y", "yes")


def approve_all(call: ToolCall, tool: Tool) -> bool:
    """Approve every call (for trusted scripts and tests)."""
    return True


def deny_all(call: ToolCall, tool: Tool) -> bool:
    """Deny every call."""
    return False
