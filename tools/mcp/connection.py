"""One MCP server: its session, its calls, its crash and its restart.

Everything here runs on the toolset's private loop (tools/mcp/loop.py). The session is
opened and closed by one owner task (anyio requires it), which holds it open until
`stop()`. A call that finds the connection closed (the process died, the HTTP server
went away) is an error result, and the next call restarts the server, once: a server
that crashes again stays down, so a crash loop costs one restart, not every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from typing import Any, TextIO

from tools.errors import MCPStartError, ToolExecutionError
from tools.mcp.config import MCPServerConfig

# Bounded waits of the shutdown: the SDK's stdio shutdown (close stdin, SIGTERM, SIGKILL)
# takes at most ~6 s; HTTP only has to close its connections.
STOP_TIMEOUT = 10.0
HTTP_READ_TIMEOUT = 300.0


class ServerDown(ToolExecutionError):
    """The server's connection is gone; the message is what the model reads."""


class MCPConnection:
    """The client side of one MCP server."""

    def __init__(self, config: MCPServerConfig, errlog: TextIO | None = None) -> None:
        self.config = config
        self.errlog = errlog
        self.restarts = 0
        self.crash: str | None = None  # why the connection went down, while it is down
        self._client: Any = None
        self._stop: asyncio.Event | None = None
        self._owner: asyncio.Task[None] | None = None
        self._scope: Any = None
        self._lock: asyncio.Lock | None = None
        self._restarting: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def name(self) -> str:
        return self.config.name

    # ------------------------------------------------------------ start and stop
    async def start(self) -> list[Any]:
        """Connect (launching the process for stdio) and list the tools, within the
        server's startup timeout; MCPStartError naming the server otherwise."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieved even when nobody waits any more (a start that timed out).
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._stop = asyncio.Event()
        self._owner = asyncio.create_task(self._own(ready), name=f"mcp-{self.name}")
        timeout = self.config.startup_timeout
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
            return await asyncio.wait_for(self._list_tools(), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            await self.stop()
            raise MCPStartError(
                f"MCP server '{self.name}' did not answer within {timeout:g}s "
                f"({self.config.describe()}); check that it starts, or raise startup_timeout"
            ) from None
        except MCPStartError:
            await self.stop()
            raise
        except Exception as exc:
            await self.stop()
            raise MCPStartError(
                f"MCP server '{self.name}' failed to start ({self.config.describe()}): "
                f"{_describe(exc)}"
            ) from None

    async def _own(self, ready: asyncio.Future[None]) -> None:
        """Open the session, hold it until `stop()`, close it (in this one task)."""
        import anyio
        from mcp import Client

        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with contextlib.AsyncExitStack() as stack:
                    transport = await self._transport(stack)
                    client = await stack.enter_async_context(Client(transport))
                    self._client = client
                    self.crash = None
                    if not ready.done():
                        ready.set_result(None)
                    assert self._stop is not None
                    await self._stop.wait()
            if not ready.done():
                ready.set_exception(MCPStartError(f"MCP server '{self.name}' was stopped"))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(
                    exc if isinstance(exc, Exception) else RuntimeError(_describe(exc))
                )
            if not isinstance(exc, Exception):
                raise
        finally:
            self._client = None

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        config = self.config
        if config.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env) or None,
                cwd=config.cwd,
            )  # fmt: skip
            return stdio_client(params, errlog=_errlog(self.errlog))
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=dict(config.headers),
                timeout=httpx2.Timeout(config.startup_timeout, read=HTTP_READ_TIMEOUT),
            )
        )
        assert config.url is not None
        return streamable_http_client(config.url, http_client=http)

    async def _list_tools(self) -> list[Any]:
        client = self._client
        if client is None:
            raise MCPStartError(f"MCP server '{self.name}' closed the connection at start")
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends cannot hang the start
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def stop(self) -> None:
        """Close the session (the SDK stops the process: stdin closed, then SIGTERM and
        SIGKILL to its process group); bounded, whatever the server does."""
        owner = self._owner
        self._owner = None
        if owner is None:
            return
        if self._stop is not None:
            self._stop.set()
        if self._client is None and self._scope is not None:
            self._scope.cancel()  # still connecting: nothing to close gracefully
        done, _ = await asyncio.wait({owner}, timeout=STOP_TIMEOUT)
        if not done:
            if self._scope is not None:
                self._scope.cancel()
            await asyncio.wait({owner}, timeout=STOP_TIMEOUT)
        if owner.done() and not owner.cancelled():
            owner.exception()  # retrieved: a failed start was already reported

    async def close(self) -> None:
        self._closed = True
        if self._restarting is not None:
            self._restarting.cancel()
        await self.stop()

    # ------------------------------------------------------------------ calls
    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call `tool`; ServerDown (an error result) when the connection is lost."""
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        client = await self._up()
        try:
            return await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise ToolExecutionError(f"MCP server '{self.name}': {exc.message}") from None
            raise self._went_down("closed the connection") from None
        except (OSError, EOFError) as exc:
            raise self._went_down(_describe(exc)) from None
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("anyio", "httpx2", "httpcore"):
                raise self._went_down(_describe(exc)) from None
            raise

    def _went_down(self, why: str) -> ServerDown:
        self.crash = why
        self._client = None
        again = self.restarts < self.config.max_restarts
        return ServerDown(
            f"MCP server '{self.name}' {why} (it crashed or exited) during the call; "
            + ("it is restarted for the next call" if again else "it is not restarted again")
        )

    async def _up(self) -> Any:
        """The live client, restarting a crashed server once (restarts are shielded
        from the call's timeout: a half-started server would be an orphan)."""
        if self._closed:
            raise ToolExecutionError(f"MCP server '{self.name}' is stopped")
        if self._client is not None and self.crash is None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is not None and self.crash is None:
                return self._client
            if self.restarts >= self.config.max_restarts:
                raise ServerDown(
                    f"MCP server '{self.name}' is down ({self.crash or 'crashed'}) and was "
                    f"already restarted {self.restarts} time(s); it is not restarted again"
                )
            self.restarts += 1
            self._restarting = asyncio.create_task(self._restart())
            try:
                await asyncio.shield(self._restarting)
            except MCPStartError as exc:
                raise ServerDown(f"MCP server '{self.name}' crashed and could not be "
                                 f"restarted: {exc}") from None  # fmt: skip
            if self._client is None:
                raise ServerDown(f"MCP server '{self.name}' is down")
            return self._client

    async def _restart(self) -> None:
        await self.stop()
        if not self._closed:
            await self.start()


def _errlog(preferred: TextIO | None) -> TextIO:
    """Where a server's stderr goes: a stream with a file descriptor (the process
    inherits it), so not a notebook's or a test's in-memory sys.stderr."""
    for stream in (preferred, sys.stderr, sys.__stderr__):
        if stream is None:
            continue
        try:
            stream.fileno()
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            continue
        return stream
    return open(os.devnull, "w")  # lives as long as the process


def _describe(exc: BaseException) -> str:
    """One line about an exception, looking inside the SDK's exception groups."""
    while getattr(exc, "exceptions", None):  # an ExceptionGroup (anyio's task groups)
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
