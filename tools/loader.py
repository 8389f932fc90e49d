"""Loading the `@tool` functions of a user's Python file (`--tools-module FILE`)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from agent.errors import UserError
from tools.errors import ToolLoadError
from tools.tool import Tool


def load_tools_module(path: str | Path) -> list[Tool]:
    """Import `path` as a fresh module and return every Tool among its globals, in order.

    The file runs with full Python privileges: it is code the user chose to run, like a
    plugin, not something the model can influence.
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise ToolLoadError(f"tools module '{path}' does not exist")
    if not file.is_file():
        raise ToolLoadError(f"tools module '{path}' is not a file")
    resolved = file.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    module_name = f"edge_agent_user_tools_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ToolLoadError(f"tools module '{path}' cannot be imported (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # pydantic and dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    except UserError as exc:  # e.g. a ToolDefinitionError raised by @tool at import time
        sys.modules.pop(module_name, None)
        raise ToolLoadError(f"tools module '{path}': {exc}") from None
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise ToolLoadError(
            f"tools module '{path}' has a syntax error at line {exc.lineno}: {exc.msg}"
        ) from None
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        line = _user_line(exc, resolved)
        raise ToolLoadError(
            f"tools module '{path}' failed to import{line}: {type(exc).__name__}: {exc}"
        ) from None
    found: list[Tool] = []
    for value in vars(module).values():
        if isinstance(value, Tool) and all(value is not t for t in found):
            found.append(value)
    if not found:
        raise ToolLoadError(
            f"tools module '{path}' defines no tools; decorate functions with "
            "`@tool` (from tools import tool)"
        )
    return found


def _user_line(exc: BaseException, file: Path) -> str:
    """' (line N)' of the deepest frame inside the user's file, if any."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == file:
            line = f" (line {frame.lineno})"
    return line
