"""`edge-agent chat`: the terminal UI, driven by the agent's event stream.

Flags are checked (tools, tools module, index) before the UI starts, so a mistake is
one line and exit 2 like every other command; the model then loads inside the app,
with its progress on screen.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from agent.cli.common import add_agent_args, add_model_arg, add_trace_args, tracing_from_args
from agent.cli.mcp import add_mcp_args, mcp_servers_from_args, start_mcp
from agent.errors import UserError

if TYPE_CHECKING:
    from agent.tracing import Tracing
    from tui.agent_backend import ChatOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="chat with the agent in a terminal UI")
    add_model_arg(p)
    add_agent_args(p)
    add_mcp_args(p)
    p.add_argument("--session", default=None, metavar="ID", help="resume (or start) the session ID")
    add_trace_args(p)
    p.set_defaults(func=run)


def require_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(
            "the chat UI needs a terminal (stdin and stdout); "
            "for scripts use `edge-agent run` (or `edge-agent demo --headless`)"
        )


def chat_options(
    args: argparse.Namespace, model: str, tracing: Tracing | None = None
) -> ChatOptions:
    """ChatOptions from the flags; every user mistake raises UserError here."""
    from agent.cli.run import open_index_arg, select_tools
    from tui.agent_backend import ChatOptions

    tools = select_tools(args.tool, args.tools_module)
    retriever = open_index_arg(args.index) if args.index else None
    session = getattr(args, "session", None)
    if session is not None:  # a bad id is exit 2 here, not a broken app later
        from agent.sessions import SessionStore

        session = SessionStore().open_or_create(session).id
    overrides = {
        "temperature": args.temp,
        "top_p": args.top_p,
        "min_p": args.min_p,
        "repetition_penalty": args.repetition_penalty,
        "seed": args.seed,
    }
    return ChatOptions(
        model=model,
        engine=getattr(args, "engine", "auto"),
        tools=tools,
        retriever=retriever,
        session=session,
        system=args.system,
        max_steps=args.max_steps,
        max_tokens=args.max_tokens,
        sampling_overrides={k: v for k, v in overrides.items() if v is not None},
        tracing=tracing,
    )


def run(args: argparse.Namespace) -> int:
    from agent.engines import is_remote_spec, remote_model
    from agent.models.registry import check_model_spec
    from tui.agent_backend import AgentBackend
    from tui.app import EdgeAgentApp

    spec = args.model
    if args.base_url is not None:
        remote_model(spec, base_url=args.base_url)  # checks the URL before the UI opens
        spec = f"openai:{args.base_url}#{spec}"
    elif is_remote_spec(spec):
        remote_model(spec)
    else:
        check_model_spec(spec)
    with tracing_from_args(args) as tracing:
        options = chat_options(args, spec, tracing)
        servers = mcp_servers_from_args(args)
        require_terminal()
        # The servers run as long as the UI does (every session's agent shares them).
        registry = start_mcp(servers, options.tools)
        try:
            options.tools = registry.tools()
            EdgeAgentApp(AgentBackend(options)).run()
        finally:
            registry.close()
    return 0
