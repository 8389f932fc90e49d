"""`read_file` and `list_dir`, confined to one root directory.

The model chooses the path, so every path is treated as hostile: it must be relative,
may not contain `..`, and must still be inside the root once symlinks are resolved
(a link inside the root that points out of it is refused). Files are opened without
following a final symlink and without blocking (a FIFO would otherwise hang the read),
and must be regular files; reads stop at a byte cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath

from tools.errors import ToolDefinitionError, ToolExecutionError
from tools.tool import Tool, tool

DEFAULT_MAX_FILE_BYTES = 64 * 1024
DEFAULT_MAX_ENTRIES = 500


def resolve_root(root: str | Path, tool_name: str) -> Path:
    real = Path(os.path.realpath(Path(root).expanduser()))
    if not real.is_dir():
        raise ToolDefinitionError(tool_name, f"root directory '{root}' does not exist")
    return real


def resolve_inside(root: Path, user_path: str) -> Path:
    """The real path of `user_path` (relative to `root`); refused if it leaves the root."""
    if "\x00" in user_path:
        raise ToolExecutionError("refused: the path contains a NUL character")
    path = PurePath(user_path.strip() or ".")
    if path.is_absolute() or path.drive or path.anchor:
        raise ToolExecutionError(
            f"refused: '{user_path}' is an absolute path; give a path relative to the "
            "tool's root directory"
        )
    if ".." in path.parts:
        raise ToolExecutionError(f"refused: '{user_path}' contains '..'; parent directories "
                                 "are outside the tool's root")  # fmt: skip
    real = Path(os.path.realpath(root / path))
    if real != root and root not in real.parents:
        raise ToolExecutionError(
            f"refused: '{user_path}' resolves outside the tool's root directory (a symlink)"
        )
    return real


def read_text_capped(real: Path, user_path: str, max_bytes: int) -> str:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise ToolExecutionError(f"'{user_path}' does not exist") from None
    except IsADirectoryError:
        raise ToolExecutionError(f"'{user_path}' is a directory; use list_dir") from None
    except OSError as exc:
        raise ToolExecutionError(f"cannot open '{user_path}': {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ToolExecutionError(f"'{user_path}' is a directory; use list_dir")
        raise ToolExecutionError(f"refused: '{user_path}' is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)
    truncated = len(data) > max_bytes
    data = data[:max_bytes]
    if b"\x00" in data:
        raise ToolExecutionError(f"'{user_path}' is a binary file, not text")
    text = data.decode("utf-8", errors="replace")
    if truncated:
        text += f"\n[truncated: only the first {max_bytes} bytes were read]"
    return text


def make_read_file(root: str | Path = ".", *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Tool:
    """A `read_file` tool that reads text files under `root` only."""
    base = resolve_root(root, "read_file")

    @tool(name="read_file", timeout=10.0)
    def read_file(path: str) -> str:
        """Read a text file inside the working directory.

        Args:
            path: The file's path relative to the working directory, e.g. "notes/todo.md".
        """
        return read_text_capped(resolve_inside(base, path), path, max_bytes)

    return read_file


def make_list_dir(root: str | Path = ".", *, max_entries: int = DEFAULT_MAX_ENTRIES) -> Tool:
    """A `list_dir` tool that lists directories under `root` only."""
    base = resolve_root(root, "list_dir")

    @tool(name="list_dir", timeout=10.0)
    def list_dir(path: str = ".") -> str:
        """List a directory inside the working directory: directories end with "/",
        files show their size.

        Args:
            path: The directory relative to the working directory; "." is the top.
        """
        real = resolve_inside(base, path)
        try:
            entries = sorted(os.scandir(real), key=lambda e: e.name)
        except FileNotFoundError:
            raise ToolExecutionError(f"'{path}' does not exist") from None
        except NotADirectoryError:
            raise ToolExecutionError(
                f"'{path}' is a file, not a directory; use read_file"
            ) from None
        except OSError as exc:
            raise ToolExecutionError(f"cannot list '{path}': {exc.strerror}") from None
        lines = []
        for entry in entries[:max_entries]:
            if entry.is_symlink():
                lines.append(f"{entry.name}@ (symlink)")
            elif entry.is_dir(follow_symlinks=False):
                lines.append(f"{entry.name}/")
            else:
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except OSError:
                    size = 0
                lines.append(f"{entry.name} ({size} bytes)")
        if len(entries) > max_entries:
            lines.append(f"[{len(entries) - max_entries} more entries not shown]")
        return "\n".join(lines) if lines else "(empty directory)"

    return list_dir
