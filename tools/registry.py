"""`ToolRegistry`: the set of tools one agent run may call.

It lists the tools for the prompt (OpenAI format), builds the JSON Schema of one call
(the grammar the model's tool call is decoded with), and executes calls: validated,
converted, approved where required, under a timeout, concurrently, in call order.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from agent.errors import UserError
from tools import execution
from tools.calls import ApprovalCallback, ToolCall, ToolResult
from tools.errors import ToolDefinitionError
from tools.loader import load_tools_module
from tools.schema_walk import has_local_refs, strip_annotations
from tools.tool import Tool

if TYPE_CHECKING:
    from tools.mcp import MCPServerConfig, MCPToolset


class ToolRegistry:
    """Tools by name. Registering a name twice is an error unless `replace=True`.

    `mcp_servers` starts MCP servers (a command line, a URL, an `MCPServerConfig`) and
    registers their tools; `close()` stops them.
    """

    def __init__(
        self,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        *,
        max_result_chars: int = execution.DEFAULT_MAX_RESULT_CHARS,
        mcp_servers: Iterable[MCPServerConfig | str | Mapping[str, Any]] = (),
    ) -> None:
        self._tools: dict[str, Tool] = {}
        self._schemas: dict[str | None, dict[str, Any]] = {}
        self._mcp: list[MCPToolset] = []
        self.max_result_chars = max_result_chars
        for t in tools:
            self.register(t)
        servers = list(mcp_servers)
        if servers:
            self.add_mcp_servers(servers)

    # ------------------------------------------------------------------- MCP
    def add_mcp_servers(
        self,
        servers: Iterable[MCPServerConfig | str | Mapping[str, Any]],
        *,
        errlog: TextIO | None = None,
    ) -> list[Tool]:
        """Start MCP servers (in parallel) and register their tools; a tool whose name
        is taken gets its server's name as a prefix (`server_tool`). MCPStartError
        names a server that fails to start (the others are stopped again)."""
        from tools.mcp import MCPToolset

        toolset = MCPToolset.start(servers, reserved=self._tools, errlog=errlog)
        try:
            self._add(toolset.tools, replace=False)
        except BaseException:
            toolset.close()
            raise
        self._mcp.append(toolset)
        return list(toolset.tools)

    def mcp_server_of(self, name: str) -> str | None:
        """The MCP server offering tool `name`, or None for a local tool."""
        return next((s for t in self._mcp if (s := t.server_of(name)) is not None), None)

    def close(self) -> None:
        """Stop the MCP servers this registry started (their tools then fail)."""
        toolsets, self._mcp = self._mcp, []
        for toolset in toolsets:
            toolset.close()

    def __enter__(self) -> ToolRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- contents
    def register(self, tool_or_function: Tool | Callable[..., Any], *, replace=False) -> Tool:
        """Add a Tool, or a plain function (made a tool as `@tool` would)."""
        if isinstance(tool_or_function, Tool):
            new = tool_or_function
        elif callable(tool_or_function):
            new = Tool.from_function(tool_or_function)
        else:
            raise ToolDefinitionError(
                repr(tool_or_function)[:40], "only tools and functions can be registered"
            )
        self._add([new], replace)
        return new

    def add_definitions(
        self, definitions: Iterable[dict[str, Any]] | dict[str, Any], *, replace: bool = False
    ) -> list[Tool]:
        """Add OpenAI- or BFCL-format definitions (tools without an implementation).

        All definitions are checked before any is added, so a bad one adds nothing.
        """
        if isinstance(definitions, dict):
            definitions = [definitions]
        parsed: list[Tool] = []
        for i, definition in enumerate(definitions):
            try:
                parsed.append(Tool.from_definition(definition))
            except ToolDefinitionError as exc:
                raise ToolDefinitionError(
                    exc.tool, f"{exc.detail} (definition #{i})", exc.parameter
                ) from None
        self._add(parsed, replace)
        return parsed

    def load_module(self, path: str | Path, *, replace: bool = False) -> list[Tool]:
        """Register every `@tool` defined in a Python file; ToolLoadError if it is broken."""
        found = load_tools_module(path)
        self._add(found, replace)
        return found

    def _add(self, tools: list[Tool], replace: bool) -> None:
        seen: set[str] = set()
        for t in tools:
            if not replace and (t.name in self._tools or t.name in seen):
                raise ToolDefinitionError(
                    t.name, "is already registered; rename it or pass replace=True"
                )
            seen.add(t.name)
        for t in tools:
            self._tools[t.name] = t
        self._schemas.clear()

    def get(self, name: str) -> Tool | None:
        """The tool called `name`, or None (like `dict.get`)."""
        return self._tools.get(name)

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def names(self) -> list[str]:
        return list(self._tools)

    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """A registry with only `names` (in that order); UserError naming unknown ones."""
        names = list(names)
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            raise UserError(
                f"unknown tool(s) {', '.join(unknown)}; available: {', '.join(self._tools)}"
            )
        return ToolRegistry(
            [self._tools[n] for n in dict.fromkeys(names)], max_result_chars=self.max_result_chars
        )

    # ---------------------------------------------------------------- schemas
    def openai_tools(self) -> list[dict[str, Any]]:
        """Every tool in the OpenAI function format, for `chat_prompt(messages, tools=...)`."""
        return [t.openai() for t in self._tools.values()]

    def call_schema(self, name: str | None = None) -> dict[str, Any]:
        """JSON Schema of ONE call: `{"name": <tool>, "arguments": {...}}`.

        An `anyOf` over all tools, or one tool's when `name` is given. Annotations
        (descriptions, defaults, titles) are dropped: the schema feeds the grammar
        compiler, and the prompt carries the descriptions. The schema may be embedded
        anywhere in a larger one (say, as the `items` of an array of calls): arguments
        with local `$ref`s (recursive models) carry their own `$id`.
        """
        if name is not None and name not in self._tools:
            raise UserError(f"unknown tool '{name}'; available: {', '.join(self._tools)}")
        if not self._tools:
            raise UserError("no tools are registered, so there is no call schema")
        cached = self._schemas.get(name)
        if cached is None:
            tools = [self._tools[name]] if name is not None else list(self._tools.values())
            calls = [_one_call(t) for t in tools]
            cached = calls[0] if len(calls) == 1 else {"anyOf": calls}
            self._schemas[name] = cached
        return copy.deepcopy(cached)

    # ---------------------------------------------------------------- execution
    async def execute(self, call: ToolCall, approve: ApprovalCallback | None = None) -> ToolResult:
        """Run one call. Never raises for a failing call: failures are error results."""
        return (await self.execute_many([call], approve))[0]

    async def execute_many(
        self, calls: Iterable[ToolCall], approve: ApprovalCallback | None = None
    ) -> list[ToolResult]:
        """Run the calls of one step concurrently; results come back in call order.

        Approvals are asked first, one at a time in call order, so two prompts never
        interleave on a terminal; then every approved call runs at once. Each call's
        failure, whatever it is, is that call's error result: the others keep theirs.
        """
        prepared = [execution.prepare(c, self._lookup(c), self.names) for c in calls]
        for p in prepared:
            try:
                await execution.approve(p, approve)
            except Exception as exc:
                p.failure = execution.unexpected(p.call, exc)
        return list(await asyncio.gather(*(self._run(p) for p in prepared)))

    def _lookup(self, call: ToolCall) -> Tool | None:
        name = getattr(call, "name", None)
        return self._tools.get(name) if isinstance(name, str) else None

    async def _run(self, prepared: execution.PreparedCall) -> ToolResult:
        try:
            return await execution.run(prepared, self.max_result_chars)
        except Exception as exc:  # a bug in the wrapping itself: still this call's result
            prepared.failure = execution.unexpected(prepared.call, exc)
            return await execution.run(prepared, self.max_result_chars)

    def execute_sync(self, call: ToolCall, approve: ApprovalCallback | None = None) -> ToolResult:
        """`execute` for scripts without an event loop.

        Called from inside a running event loop (a notebook, an async app), it runs the
        call on a helper thread with its own loop instead of failing in `asyncio.run`.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.execute(call, approve))
        box: list[ToolResult] = []
        worker = threading.Thread(
            target=lambda: box.append(asyncio.run(self.execute(call, approve))),
            name="edge-agent-execute-sync",
        )
        worker.start()
        worker.join()
        return box[0]


def _one_call(t: Tool) -> dict[str, Any]:
    """`{"name": const, "arguments": parameters}` for one tool."""
    arguments = strip_annotations(t.parameters)
    props = arguments.get("properties")
    required = arguments.get("required", [])
    if (
        "additionalProperties" not in arguments
        and "patternProperties" not in arguments
        and isinstance(props, dict)
        and all(r in props for r in required)
    ):
        # The model should send declared arguments only (definitions rarely say so).
        arguments["additionalProperties"] = False
    if has_local_refs(arguments) and "$id" not in arguments:
        # "#/$defs/X" then resolves inside the arguments, wherever they are embedded.
        arguments = {"$id": f"urn:edge-agent:tool:{quote(t.name, safe='')}", **arguments}
    return {
        "type": "object",
        "properties": {"name": {"const": t.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }
