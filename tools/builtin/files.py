"""`read_file` and `list_dir`, confined to one root directory.

The model chooses the path, so every path is treated as hostile: it must be relative
and may not contain `..`. The path is then walked from an open descriptor of the root,
one component at a time, each opened relative to the last (`dir_fd`) with `O_NOFOLLOW`:
checking a resolved path and then opening it (as this module once did) lets a directory
swapped for a symlink in between escape the root. A symlink met on the way is resolved
here, lexically against the directories actually walked, and followed only while it
stays inside the root. The file itself must be a regular file with one link (a hard
link inside the root to an outside file is refused) and is opened without blocking (a
FIFO would hang the read); reads stop at a byte cap.

Where the platform has no `dir_fd` support (Windows), the older check is kept:
`realpath` must be inside the root, then the path is opened; that order is racy.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePath

from agent.limits import special_file_kind
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
    """The real path of `user_path` (relative to `root`); refused if it leaves the root.
    The check-then-open form, for platforms without `dir_fd` (see `open_inside`)."""
    real = Path(os.path.realpath(root.joinpath(*_checked_parts(user_path))))
    if real != root and root not in real.parents:
        raise ToolExecutionError(_OUTSIDE.format(user_path))
    return real


DIR_FD = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")
_MAX_LINKS = 40  # symlinks followed in one path, as the kernel's ELOOP limit
_OUTSIDE = "refused: '{}' resolves outside the tool's root directory (a symlink)"


def _checked_parts(user_path: str) -> list[str]:
    """The components of a model-given path, refused if absolute, with `..` or NUL."""
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
    return [p for p in path.parts if p != "."]


def open_inside(root: Path, user_path: str, *, directory: bool) -> int:
    """A descriptor of `user_path` under `root`, opened without any window for a swap.

    Every component is opened with `O_NOFOLLOW` relative to the descriptor of the one
    before, so what is opened is what was checked. A symlink is read (`readlink`) and its
    target walked in its place: a relative target against the directories walked so far
    (`..` above the root is refused), an absolute one only if it names a path under the
    root. The caller closes the returned descriptor.
    """
    pending = _checked_parts(user_path)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    fds = [root_fd]
    links = 0
    try:
        while pending:
            name = pending.pop(0)
            if name in ("", "."):
                continue
            if name == "..":  # only from a symlink's target
                if len(fds) == 1:
                    raise ToolExecutionError(_OUTSIDE.format(user_path))
                os.close(fds.pop())
                continue
            last = not pending
            flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
            if not last or directory:
                flags |= os.O_DIRECTORY
            try:
                fd = os.open(name, flags, dir_fd=fds[-1])
            except OSError as exc:
                if not _is_link(name, fds[-1]):
                    raise _open_error(exc, user_path, directory) from None
                links += 1
                if links > _MAX_LINKS:
                    raise ToolExecutionError(
                        f"refused: '{user_path}' goes through too many symlinks"
                    ) from None
                target = PurePath(os.readlink(name, dir_fd=fds[-1]))
                if target.is_absolute():
                    try:
                        target = target.relative_to(root)
                    except ValueError:
                        raise ToolExecutionError(_OUTSIDE.format(user_path)) from None
                    while len(fds) > 1:  # an absolute target restarts at the root
                        os.close(fds.pop())
                pending = [*target.parts, *pending]
                continue
            if last:
                return fd
            fds.append(fd)
        return os.dup(fds[-1])  # the root itself ("" or ".")
    finally:
        for fd in fds:
            os.close(fd)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _open_error(exc: OSError, user_path: str, directory: bool) -> ToolExecutionError:
    if exc.errno == errno.ENOENT:
        return ToolExecutionError(f"'{user_path}' does not exist")
    if exc.errno == errno.ENOTDIR:
        if directory:
            return ToolExecutionError(f"'{user_path}' is a file, not a directory; use read_file")
        return ToolExecutionError(f"'{user_path}' does not exist (a parent is not a directory)")
    return ToolExecutionError(f"cannot open '{user_path}': {exc.strerror}")


def read_text_capped(real: Path | int, user_path: str, max_bytes: int) -> str:
    """The text of a file (a path checked by `resolve_inside`, or a descriptor from
    `open_inside`, which this takes over), refused unless a regular file with one link."""
    if isinstance(real, int):
        fd = real
    else:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(real, flags)
        except FileNotFoundError:
            raise ToolExecutionError(f"'{user_path}' does not exist") from None
        except IsADirectoryError:
            raise ToolExecutionError(f"'{user_path}' is a directory; use list_dir") from None
        except OSError as exc:
            raise ToolExecutionError(f"cannot open '{user_path}': {exc.strerror}") from None
    info = os.fstat(fd)
    mode = info.st_mode
    if not stat.S_ISREG(mode) or info.st_nlink > 1:
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ToolExecutionError(f"'{user_path}' is a directory; use list_dir")
        if stat.S_ISREG(mode):
            raise ToolExecutionError(
                f"refused: '{user_path}' has {info.st_nlink} hard links (one may be outside "
                "the tool's root)"
            )
        raise ToolExecutionError(
            f"refused: '{user_path}' is {special_file_kind(mode)}, not a regular file"
        )
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

    @tool(name="read_file", timeout=10.0, untrusted_results=True)
    def read_file(path: str) -> str:
        """Read a text file inside the working directory.

        Args:
            path: The file's path relative to the working directory, e.g. "notes/todo.md".
        """
        if DIR_FD:
            return read_text_capped(open_inside(base, path, directory=False), path, max_bytes)
        return read_text_capped(resolve_inside(base, path), path, max_bytes)

    return read_file


def _describe(entry: os.DirEntry[str]) -> str:
    """One listing line: `name/`, `name@ (symlink)` or `name (N bytes)`."""
    if entry.is_symlink():
        return f"{entry.name}@ (symlink)"
    if entry.is_dir(follow_symlinks=False):
        return f"{entry.name}/"
    try:
        size = entry.stat(follow_symlinks=False).st_size
    except OSError:
        size = 0
    return f"{entry.name} ({size} bytes)"


def make_list_dir(root: str | Path = ".", *, max_entries: int = DEFAULT_MAX_ENTRIES) -> Tool:
    """A `list_dir` tool that lists directories under `root` only."""
    base = resolve_root(root, "list_dir")

    @tool(name="list_dir", timeout=10.0, untrusted_results=True)
    def list_dir(path: str = ".") -> str:
        """List a directory inside the working directory: directories end with "/",
        files show their size.

        Args:
            path: The directory relative to the working directory; "." is the top.
        """
        target: Path | int = (
            open_inside(base, path, directory=True) if DIR_FD else resolve_inside(base, path)
        )
        try:
            with os.scandir(target) as it:
                entries = sorted(it, key=lambda e: e.name)
            # Described before the descriptor closes: a DirEntry of a scandir(fd) stats
            # through that descriptor.
            lines = [_describe(entry) for entry in entries[:max_entries]]
        except FileNotFoundError:
            raise ToolExecutionError(f"'{path}' does not exist") from None
        except NotADirectoryError:
            raise ToolExecutionError(
                f"'{path}' is a file, not a directory; use read_file"
            ) from None
        except OSError as exc:
            raise ToolExecutionError(f"cannot list '{path}': {exc.strerror}") from None
        finally:
            if isinstance(target, int):
                os.close(target)
        if len(entries) > max_entries:
            lines.append(f"[{len(entries) - max_entries} more entries not shown]")
        return "\n".join(lines) if lines else "(empty directory)"

    return list_dir
