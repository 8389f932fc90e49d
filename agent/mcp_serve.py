"""edge-agent as an MCP server: built-in tools, `rag_search` over an index, and
`extract` (JSON guaranteed to follow a schema, from the local model), to any MCP
client, over stdio or streamable HTTP.

Calls run through a `ToolRegistry`, so they get what they get in an agent run:
arguments validated against the schema, a timeout, failures as error results. The
client is the host that asks its user about calls, so nothing here asks again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import UserError
from tools import BUILTIN_TOOL_NAMES, Tool, ToolCall, ToolRegistry, approve_all, builtin_tools, tool

EXTRA_TOOL_NAMES = ("rag_search", "extract")
SERVED_TOOL_NAMES = (*BUILTIN_TOOL_NAMES, *EXTRA_TOOL_NAMES)
EXTRACT_TIMEOUT = 600.0  # the first call loads the model
MAX_EXTRACT_TOKENS = 4096


@dataclass
class Extractor:
    """The `extract` tool's model: loaded on the first call, then reused; every
    extraction runs on one worker thread (one model, and MLX arrays stay on the thread
    that made them)."""

    model: str
    engine: str = "auto"

    def __post_init__(self) -> None:
        self._pool = _Worker("edge-agent-extract")
        self._chat_model: Any = None

    def preload(self) -> None:
        """Start loading the model now, so the first call does not wait for all of it."""
        self._pool.submit(self._load)

    def _load(self) -> Any:
        if self._chat_model is None:
            from agent.engines.local import LocalChatModel
            from agent.loader import load_model
            from agent.progress import console_progress

            # Loaded on this worker thread, where every extraction then runs.
            with console_progress() as progress:  # on stderr, never on the stdio channel
                model = load_model(self.model, progress, engine=self.engine)
            self._chat_model = LocalChatModel.for_model(model)
        return self._chat_model

    def _extract(self, text: str, schema: Any, max_tokens: int) -> Any:
        from agent.extraction import extract_with_stats

        return extract_with_stats(text, schema, self._load(), max_tokens=max_tokens).value

    def tool(self) -> Tool:
        from schemas import shipped_schema_names

        parameters = {
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "schema": {
                    "description": "a JSON Schema object, or the name of a shipped schema",
                    "anyOf": [
                        {"type": "object"},
                        {"type": "string", "enum": list(shipped_schema_names())},
                    ],
                },
                "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_EXTRACT_TOKENS},
            },
            "required": ["text", "schema"],
            "additionalProperties": False,
        }
        pool, work = self._pool, self._extract

        @tool(name="extract", schema=parameters, timeout=EXTRACT_TIMEOUT)
        async def extract(text: str, schema: Any, max_tokens: int = 512) -> Any:
            """Extract data from text as JSON that follows a JSON Schema, with the local
            model under the schema's grammar (the output always parses and matches).

            Args:
                text: the text to extract from.
                schema: a JSON Schema object, or a shipped schema name (contact, event...).
                max_tokens: the most tokens the JSON may take.
            """
            return await asyncio.wrap_future(pool.submit(work, text, schema, max_tokens))

        return extract

    def close(self) -> None:
        self._pool.stop()


class _Worker:
    """One daemon thread running jobs in order: a model still loading (a download) never
    holds up the exit, as a ThreadPoolExecutor's worker would."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        threading.Thread(target=self._main, name=name, daemon=True).start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((future, fn, args))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    def _main(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # delivered to the waiting call
                future.set_exception(exc)


def served_registry(
    names: Sequence[str] = (),
    *,
    retriever: Any = None,
    extractor: Extractor | None = None,
) -> ToolRegistry:
    """The tools to serve: `names` (all when empty: the built-ins, `extract`, and
    `rag_search` when there is an index). UserError for an unknown name or a
    `rag_search` without an index."""
    from agent.rag import rag_search_tool

    unknown = [n for n in names if n not in SERVED_TOOL_NAMES]
    if unknown:
        raise UserError(
            f"unknown tool(s) {', '.join(unknown)}; "
            f"mcp-serve offers: {', '.join(SERVED_TOOL_NAMES)}"
        )
    wanted = list(dict.fromkeys(names)) or [
        *BUILTIN_TOOL_NAMES,
        *(["rag_search"] if retriever is not None else []),
        *(["extract"] if extractor is not None else []),
    ]
    if "rag_search" in wanted and retriever is None:
        raise UserError("--tool rag_search needs an index: pass --index DIR")
    if "extract" in wanted and extractor is None:
        raise UserError("--tool extract needs a model")
    registry = ToolRegistry(builtin_tools([n for n in wanted if n in BUILTIN_TOOL_NAMES]))
    if "rag_search" in wanted:
        registry.register(rag_search_tool(retriever))
    if "extract" in wanted:
        assert extractor is not None
        registry.register(extractor.tool())
    return registry


def mcp_server(registry: ToolRegistry, name: str = "edge-agent") -> Any:
    """An MCP server (the SDK's low-level `Server`) offering the registry's tools."""
    import mcp.types as types
    from mcp.server import Server

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=t.name, description=t.description, input_schema=t.parameters)
                for t in registry
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        call = ToolCall.new(params.name, dict(params.arguments or {}))
        result = await registry.execute(call, approve_all)
        text = result.content if result.ok else (result.error or result.content)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], is_error=not result.ok
        )

    def input_schema(tool_name: str) -> dict[str, Any] | None:
        found = registry.get(tool_name)
        return found.parameters if found is not None else None

    return Server(
        name,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=input_schema,
    )


def serve_stdio(server: Any) -> None:
    """Serve one client on stdin/stdout until it closes stdin."""
    import anyio
    from mcp.server.stdio import stdio_server

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)


def serve_http(
    server: Any,
    sock: Any,
    host: str,
    api_key: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve streamable HTTP at /mcp on the bound socket `sock` until Ctrl+C."""
    import uvicorn

    app: Any = server.streamable_http_app(streamable_http_path="/mcp", host=host)
    if api_key is not None:
        app = _BearerAuth(app, api_key)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    bound_host, port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                on_ready(f"http://{shown}:{port}/mcp")

        def handle_exit(self, sig: int, frame: Any) -> None:
            # A stop asked for is a clean exit (exit 0), not a re-raised Ctrl+C; a
            # second one forces it.
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

    _Server(config).run(sockets=[sock])


class _BearerAuth:
    """ASGI middleware: HTTP requests need `Authorization: Bearer KEY` (401 otherwise)."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self._expected = f"Bearer {key}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            import hmac

            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
                await send({"type": "http.response.body", "body": b"missing or wrong API key"})
                return
        await self.app(scope, receive, send)
