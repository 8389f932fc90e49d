"""`edge-agent run`: one agent run from the terminal, as text or as JSON lines.

Everything a user can get wrong (tool names, the tools module, the tool choice, the
session id, the index) is checked before the model loads. With `--json`, stdout carries
only the event objects, one per line, the last always `"final"`; progress, approvals
and summaries go to stderr.

Exit codes: 0 an answer, 3 a guard stopped the run, 1 the run failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from typing import Any

from agent.cli.common import (
    EXIT_GUARD_STOP,
    EXIT_OK,
    add_agent_args,
    add_model_arg,
    add_trace_args,
    load_engine,
    read_text_arg,
    sampling_from_args,
    tracing_from_args,
)
from agent.cli.mcp import add_mcp_args, mcp_servers_from_args, start_mcp
from agent.errors import UserError
from agent.events import (
    ErrorEvent,
    Event,
    FinalEvent,
    ReasoningDelta,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.guards import CANCELLED, ERROR

EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the agent on a prompt, with tools")
    p.add_argument("prompt", nargs="?", help="the prompt ('-' or omitted: read stdin)")
    add_model_arg(p)
    p.add_argument(
        "--tool-choice",
        default="auto",
        metavar="auto|required|none|NAME",
        help="whether the first step must call a tool (default auto)",
    )
    p.add_argument(
        "--session", default=None, metavar="ID", help="continue (or start) the session ID"
    )
    p.add_argument(
        "--response-format",
        default=None,
        metavar="SCHEMA",
        help="constrain the final answer to a JSON Schema: a file, or a shipped schema name",
    )
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument(
        "--yes", "-y", action="store_true", help="approve every tool that asks for approval"
    )
    add_agent_args(p)
    add_mcp_args(p)
    add_trace_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.sessions import check_session_id

    prompt = read_text_arg(args.prompt, "prompt")
    if not prompt.strip():
        raise UserError("the prompt is empty")
    tools = select_tools(args.tool, args.tools_module)
    servers = mcp_servers_from_args(args)
    if not servers:
        _check_choice_early(args.tool_choice, [t.name for t in tools], args.index is not None)
    if args.session:
        check_session_id(args.session)
    response_format = _response_format(args.response_format)
    registry = start_mcp(servers, tools)  # before the model: a failing server costs no wait
    try:
        with tracing_from_args(args) as tracing:
            return _run(args, prompt, registry.tools(), response_format, tracing)
    finally:
        registry.close()


def _run(
    args: argparse.Namespace, prompt: str, tools: list[Any], response_format: Any, tracing: Any
) -> int:
    from agent.agent import Agent
    from agent.sessions import SessionStore

    _check_choice_early(args.tool_choice, [t.name for t in tools], args.index is not None)
    retriever = open_index_arg(args.index) if args.index else None
    store = SessionStore()
    model = load_engine(args)
    # An exact id resumes or starts that session (a prefix could resume the wrong one).
    session = (
        store.open_or_create(args.session, model=model.name)
        if args.session
        else store.create(model=model.name)
    )
    agent = Agent(
        model,
        tools,
        system=args.system,
        max_steps=args.max_steps,
        max_tokens=args.max_tokens,
        tool_choice=args.tool_choice,
        response_format=response_format,
        retriever=retriever,
        session=session,
        approve=_approval(args.yes),
        sampling=sampling_from_args(args, model),
        tracing=tracing,
    )
    note = session.history_note()
    if note:
        print(f"note: {note}", file=sys.stderr)
    try:
        final = asyncio.run(_consume(agent, prompt, args.json))
    finally:
        if retriever is not None:
            retriever.close()
    if final.session_id and not args.json:
        print(f"[session {final.session_id}]", file=sys.stderr)
    if final.stopped_by is None:
        return EXIT_OK
    if final.stopped_by == ERROR:
        return EXIT_RUN_FAILED
    if final.stopped_by == CANCELLED:
        return EXIT_INTERRUPTED
    return EXIT_GUARD_STOP


def select_tools(names: list[str], modules: list[str]) -> list[Any]:
    """Module tools (all, unless --tool picks some) plus the built-ins named by --tool."""
    from tools import BUILTIN_TOOL_NAMES, ToolRegistry, builtin_tools

    registry = ToolRegistry()
    for path in modules:
        registry.load_module(path)
    from_modules = registry.names()
    unknown = [n for n in names if n not in from_modules and n not in BUILTIN_TOOL_NAMES]
    if unknown:
        available = sorted({*BUILTIN_TOOL_NAMES, *from_modules})
        raise UserError(f"unknown tool(s) {', '.join(unknown)}; available: {', '.join(available)}")
    wanted_builtins = [n for n in dict.fromkeys(names) if n not in from_modules]
    for t in builtin_tools(wanted_builtins):
        registry.register(t)
    if names and modules:
        registry = registry.subset(dict.fromkeys(names))
    return registry.tools()


def _check_choice_early(choice: str, names: list[str], rag: bool) -> None:
    if rag:
        names = [*names, "rag_search"]
    if choice in ("auto", "none"):
        return
    if not names:
        raise UserError(
            f"--tool-choice {choice} needs a tool: add --tool NAME or --tools-module FILE.py"
        )
    if choice != "required" and choice not in names:
        raise UserError(
            f"--tool-choice must be auto, required, none or an enabled tool "
            f"({', '.join(names)}); got '{choice}'"
        )


def _response_format(spec: str | None) -> Any:
    if spec is None:
        return None
    from agent.structured import load_schema, resolve_schema_early

    schema = load_schema(spec)
    resolve_schema_early(schema)
    return schema


def open_index_arg(path: str) -> Any:
    from agent.retriever import open_index

    return open_index(path)  # IndexNotFoundError etc. are UserErrors


def _approval(yes: bool) -> Any:
    """--yes approves; a terminal asks (one prompt at a time); otherwise deny."""
    from tools import approve_all, prompt_approval

    if yes:
        return approve_all
    lock = threading.Lock()

    def approve(call: Any, tool: Any) -> bool:
        if not sys.stdin.isatty():
            print(
                f"edge-agent: tool '{tool.name}' needs approval and stdin is not a terminal: "
                "denied (pass --yes to approve)",
                file=sys.stderr,
            )
            return False
        with lock:
            return prompt_approval(call, tool)

    return approve


async def _consume(agent: Any, prompt: str, as_json: bool) -> FinalEvent:
    final: FinalEvent | None = None
    printer = _JsonPrinter() if as_json else _TextPrinter()
    restore = _cancel_on_first_interrupt(agent)
    try:
        async for event in agent.stream(prompt):
            printer.show(event)
            if isinstance(event, FinalEvent):
                final = event
    finally:
        restore()
    assert final is not None
    return final


def _cancel_on_first_interrupt(agent: Any) -> Any:
    """Ctrl-C cancels the run cleanly (the JSON stream still ends with its "final");
    a second Ctrl-C interrupts at once."""
    loop = asyncio.get_running_loop()

    def first() -> None:
        print("edge-agent: cancelling (Ctrl-C again to quit now)", file=sys.stderr)
        agent.cancel()
        loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        return lambda: None
    return lambda: loop.remove_signal_handler(signal.SIGINT)


class _JsonPrinter:
    def show(self, event: Event) -> None:
        sys.stdout.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()


class _TextPrinter:
    """Answer text on stdout; reasoning, calls, results and stats on stderr."""

    def __init__(self) -> None:
        self._open_line = False

    def show(self, event: Event) -> None:
        err = sys.stderr
        if isinstance(event, TextDelta):
            sys.stdout.write(event.text)
            sys.stdout.flush()
            self._open_line = not event.text.endswith("\n")
        elif isinstance(event, ReasoningDelta):
            err.write(f"\x1b[2m{event.text}\x1b[0m" if err.isatty() else event.text)
            err.flush()
        elif isinstance(event, ToolCallEvent):
            self._end_line()
            args = json.dumps(event.arguments, ensure_ascii=False)
            print(f"-> {event.name}({_clip(args)})", file=err)
        elif isinstance(event, ToolResultEvent):
            status = f"error: {event.error}" if event.error else _clip(event.content)
            extra = f" [+{len(event.items)} item(s) in --json output]" if event.items else ""
            print(f"<- {event.name}: {status}{extra}", file=err)
        elif isinstance(event, StatsEvent):
            self._end_line()
            print(f"[step {event.step}] {event.stats.summary()}", file=err)
        elif isinstance(event, ErrorEvent):
            self._end_line()
            print(f"edge-agent: error: {event.message}", file=err)
        elif isinstance(event, FinalEvent):
            self._end_line()
            for c in event.citations:
                print(f"[{c.index}] {c.path}:{c.start}-{c.end}", file=err)
            if event.stopped_by and event.stopped_by != ERROR:
                print(f"edge-agent: stopped ({event.stopped_by}): {event.reason}", file=err)

    def _end_line(self) -> None:
        if self._open_line:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._open_line = False


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
