"""How an MCP server is described: `--mcp "CMD ARGS"`, a `{"mcpServers": {...}}` file, or
`MCPServerConfig` in Python.

The file format is the one Claude Desktop, Cursor and most MCP clients share, so a user
can point edge-agent at the file they already have. Two keys are edge-agent's own:
`trusted` (calls run without asking) and `requires_approval` (overrides it either way),
plus `timeout` and `startup_timeout` in seconds.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import MCPConfigError
from tools.tool import DEFAULT_TIMEOUT

DEFAULT_STARTUP_TIMEOUT = 30.0
MAX_CONFIG_BYTES = 1 << 20
_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_INTERPRETERS = {"python", "python3", "node", "npx", "uvx", "uv", "deno", "bun", "pipx", "sh"}
_ENTRY_KEYS = {
    "command", "args", "env", "cwd", "url", "headers", "type", "transport", "trusted",
    "requires_approval", "timeout", "startup_timeout", "disabled", "description",
}  # fmt: skip


@dataclass(frozen=True)
class MCPServerConfig:
    """One MCP server: a command to launch (stdio) or a URL (streamable HTTP).

    Calls to its tools need approval unless the server is `trusted` (or
    `requires_approval` says otherwise): its tools are code the user did not write.
    """

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    trusted: bool = False
    requires_approval: bool | None = None
    timeout: float = DEFAULT_TIMEOUT
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    max_restarts: int = 1

    def __post_init__(self) -> None:
        where = f"MCP server '{self.name}'"
        if not isinstance(self.name, str) or not _SERVER_NAME.fullmatch(self.name):
            raise MCPConfigError(
                f"MCP server name {self.name!r} must be 1-64 letters, digits, '_' or '-'"
            )
        if (self.command is None) == (self.url is None):
            raise MCPConfigError(f"{where}: give either a command (stdio) or a url (HTTP)")
        if self.command is not None and (not isinstance(self.command, str) or not self.command):
            raise MCPConfigError(f"{where}: 'command' must be a non-empty string")
        if self.url is not None and not re.match(r"https?://", str(self.url)):
            raise MCPConfigError(f"{where}: url must start with http:// or https://")
        object.__setattr__(self, "args", tuple(_strings(self.args, where, "args")))
        object.__setattr__(self, "env", dict(_string_map(self.env, where, "env")))
        object.__setattr__(self, "headers", dict(_string_map(self.headers, where, "headers")))
        for key in ("timeout", "startup_timeout"):
            value = getattr(self, key)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise MCPConfigError(f"{where}: {key} must be a positive number of seconds")
            object.__setattr__(self, key, float(value))
        if self.requires_approval is not None and not isinstance(self.requires_approval, bool):
            raise MCPConfigError(f"{where}: requires_approval must be true or false")
        if not isinstance(self.trusted, bool):
            raise MCPConfigError(f"{where}: trusted must be true or false")

    @property
    def approval(self) -> bool:
        """Whether calls to this server's tools must be approved."""
        return self.requires_approval if self.requires_approval is not None else not self.trusted

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    def describe(self) -> str:
        """The command line or URL, for error messages."""
        if self.command is not None:
            return shlex.join([self.command, *self.args])
        return str(self.url)

    @classmethod
    def from_command_line(
        cls, text: str, *, name: str | None = None, **options: Any
    ) -> MCPServerConfig:
        """`--mcp "CMD ARGS"` (or a URL): split like a shell would, named after the
        program (or the script an interpreter runs)."""
        text = text.strip() if isinstance(text, str) else ""
        if not text:
            raise MCPConfigError('--mcp needs a command (e.g. --mcp "python server.py") or a URL')
        if re.match(r"https?://", text):
            return cls(name=name or _name_from_url(text), url=text, **options)
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise MCPConfigError(f"--mcp {text!r}: {exc} (check the quotes)") from None
        return cls(name=name or _name_from_argv(argv), command=argv[0], args=tuple(argv[1:]),
                   **options)  # fmt: skip


def as_config(
    server: MCPServerConfig | str | Mapping[str, Any], name: str | None = None
) -> MCPServerConfig:
    """A config from what `mcp_servers=` accepts: a config, a command line or URL, or one
    entry of the `mcpServers` format (then `name` is its key)."""
    if isinstance(server, MCPServerConfig):
        return server
    if isinstance(server, str):
        return MCPServerConfig.from_command_line(server, name=name)
    if isinstance(server, Mapping):
        entry = dict(server)
        entry_name = name or entry.pop("name", None)
        if not isinstance(entry_name, str):
            raise MCPConfigError("an MCP server given as a dict needs a 'name'")
        config = _from_entry(entry_name, entry, "mcp_servers")
        if config is None:
            raise MCPConfigError(f"MCP server '{entry_name}' is disabled")
        return config
    raise MCPConfigError(
        f"an MCP server is an MCPServerConfig, a command line, a URL or a dict, not "
        f"{type(server).__name__}"
    )


def unique_names(configs: Iterable[MCPServerConfig]) -> list[MCPServerConfig]:
    """The configs with duplicate names made distinct (`server`, `server_2`, ...): two
    `--mcp "python server.py"` from different directories are two servers."""
    seen: set[str] = set()
    out = []
    for config in configs:
        name, n = config.name, 2
        while name in seen:
            name, n = f"{config.name[:60]}_{n}", n + 1
        seen.add(name)
        out.append(config if name == config.name else _renamed(config, name))
    return out


def load_mcp_config(path: str | Path) -> list[MCPServerConfig]:
    """The servers of a `{"mcpServers": {name: {...}}}` file (disabled ones left out)."""
    p = Path(path).expanduser()
    what = f"MCP config '{path}'"
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise MCPConfigError(f"{what} is not a regular file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise MCPConfigError(f"{what} is larger than {MAX_CONFIG_BYTES} bytes")
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MCPConfigError(f"{what} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MCPConfigError(f"{what} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise MCPConfigError(f"cannot read {what}: {exc.strerror}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise MCPConfigError(
            f'{what} needs an object {{"mcpServers": {{"NAME": {{"command": ..., "args": [...]}}'
            ' or {"url": ...}}}'
        )
    out = []
    for name, entry in servers.items():
        config = _from_entry(name, entry, what)
        if config is not None:
            out.append(config)
    return out


def _from_entry(name: Any, entry: Any, what: str) -> MCPServerConfig | None:
    where = f"{what}, server '{name}'"
    if not isinstance(entry, dict):
        raise MCPConfigError(f"{where}: must be an object with 'command' or 'url'")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise MCPConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_ENTRY_KEYS))}"
        )
    if entry.get("disabled") is True:
        return None
    kind = entry.get("type", entry.get("transport"))
    if kind is not None and kind not in ("stdio", "http", "streamable-http", "streamableHttp"):
        raise MCPConfigError(
            f"{where}: transport {kind!r} is not supported; use stdio or streamable HTTP"
        )
    options = {k: entry[k] for k in ("trusted", "requires_approval", "timeout", "startup_timeout")
               if k in entry}  # fmt: skip
    try:
        return MCPServerConfig(
            name=name,
            command=entry.get("command"),
            args=tuple(_strings(entry.get("args", []), where, "args")),
            env=entry.get("env") or {},
            cwd=_optional_str(entry.get("cwd"), where, "cwd"),
            url=entry.get("url"),
            headers=entry.get("headers") or {},
            **options,
        )
    except MCPConfigError as exc:
        message = str(exc)
        if message.startswith(f"MCP server '{name}': "):
            message = message[len(f"MCP server '{name}': ") :]
        raise MCPConfigError(f"{where}: {message}") from None


def _strings(values: Any, where: str, key: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise MCPConfigError(f"{where}: '{key}' must be a list of strings")
    if not all(isinstance(v, str) for v in values):
        raise MCPConfigError(f"{where}: '{key}' must be a list of strings")
    return list(values)


def _string_map(values: Any, where: str, key: str) -> dict[str, str]:
    if not isinstance(values, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise MCPConfigError(f"{where}: '{key}' must be an object of strings")
    return dict(values)


def _optional_str(value: Any, where: str, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MCPConfigError(f"{where}: '{key}' must be a string")
    return value


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:64] or "mcp"


def _name_from_argv(argv: list[str]) -> str:
    program = os.path.basename(argv[0])
    if re.sub(r"[\d.]+$", "", program) in _INTERPRETERS:
        for arg in argv[1:]:
            if not arg.startswith("-"):
                return _clean(Path(arg.rstrip("/")).stem)
    return _clean(Path(program).stem)


def _name_from_url(url: str) -> str:
    host = re.sub(r"^https?://", "", url).split("/")[0].split("@")[-1]
    return _clean(host.split(":")[0])


def _renamed(config: MCPServerConfig, name: str) -> MCPServerConfig:
    from dataclasses import replace

    return replace(config, name=name)
