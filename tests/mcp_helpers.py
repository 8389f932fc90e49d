"""Helpers of the MCP tests: real MCP servers (the SDK's `MCPServer`, FastMCP's name in
mcp 1.x) written as small scripts, and the process table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One server with every kind of result; `tag` tells two copies apart.
SERVER = '''
import base64, os, sys, anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import EmbeddedResource, ImageContent, TextContent, TextResourceContents

tag = sys.argv[1] if len(sys.argv) > 1 else "one"
mcp = MCPServer(tag, log_level="ERROR")

@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

@mcp.tool(structured_output=False)
def whoami() -> str:
    """The server's tag and process id."""
    return f"{tag} {os.getpid()}"

@mcp.tool(structured_output=False)
def refuse(reason: str) -> str:
    """Always fails."""
    raise ValueError("refused: " + reason)

@mcp.tool()
def picture() -> list:
    """An image and a resource."""
    return [
        TextContent(type="text", text="a red pixel"),
        ImageContent(type="image", data=base64.b64encode(b"PNGDATA").decode(),
                     mime_type="image/png"),
        EmbeddedResource(type="resource", resource=TextResourceContents(
            uri="file:///notes.txt", mime_type="text/plain", text="hello notes")),
    ]

@mcp.tool(structured_output=False)
def crash() -> str:
    """Exit the process at once."""
    os._exit(3)

@mcp.tool(structured_output=False)
async def hang() -> str:
    """Never return."""
    await anyio.sleep(3600)
    return "unreachable"

if len(sys.argv) > 2 and sys.argv[2] == "http":
    import socket, uvicorn
    from starlette.responses import PlainTextResponse

    app = mcp.streamable_http_app()
    async def checked(scope, receive, send):
        headers = dict(scope.get("headers") or [])
        if scope["type"] == "http" and headers.get(b"x-token") != b"secret":
            await PlainTextResponse("no token", status_code=401)(scope, receive, send)
            return
        await app(scope, receive, send)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(checked, log_level="error", lifespan="on")).run(sockets=[sock])
else:
    mcp.run()
'''


def write_server(directory: Path, name: str = "mcp_test_server.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(SERVER))
    return path


def command(script: Path, *args: str) -> str:
    """`--mcp` text launching `script` with this Python."""
    import shlex

    return shlex.join([sys.executable, str(script), *args])


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line mentions `marker` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def child_env() -> dict[str, str]:
    """What an edge-agent subprocess needs: this checkout, the tests' private dirs."""
    env = {"PYTHONPATH": str(ROOT)}
    for key in ("EDGE_AGENT_CACHE_DIR", "EDGE_AGENT_DATA_DIR", "HF_HUB_DISABLE_PROGRESS_BARS"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **child_env()},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def first_line_matching(stream, pattern: str, limit: int = 200) -> re.Match[str]:
    """Read `stream` line by line until `pattern` matches (a condition, not a sleep)."""
    for _ in range(limit):
        line = stream.readline()
        if not line:
            break
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern!r}")
