"""`edge-agent chat`: the terminal UI, driven by the agent's event stream.

Flags are checked (tools, tools module, index) before the UI starts, so a mistake is
one line and exit 2 like every other command; the model then loads inside the app,
with its progress on screen.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from agent.cli.common import add_model_arg, add_sampling_args, positive_int
from agent.errors import UserError

if TYPE_CHECKING:
    from tui.agent_backend import ChatOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="chat with the agent in a terminal UI")
    add_model_arg(p)
    add_agent_args(p)
    p.add_argument("--session", default=None, metavar="ID", help="resume (or start) the session ID")
    p.set_defaults(func=run)


def add_agent_args(p: argparse.ArgumentParser) -> None:
    """The agent flags `chat` and `demo` share with `edge-agent run`."""
    p.add_argument("--index", default=None, metavar="DIR", help="search this index (rag_search)")
    p.add_argument(
        "--tool",
        action="append",
        default=[],
        metavar="NAME",
        help="a tool to enable: a built-in (calculator, http_get, read_file, list_dir, now) "
        "or one defined in --tools-module (repeat for several)",
    )
    p.add_argument(
        "--tools-module",
        action="append",
        default=[],
        metavar="FILE.py",
        help="import a Python file and register every @tool in it",
    )
    p.add_argument("--system", default=None, help="a system prompt")
    p.add_argument("--max-steps", type=positive_int, default=8, help="model steps per answer")
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=4096,
        help="tokens the model may generate per answer, over all its steps (default 4096)",
    )
    add_sampling_args(p)


def require_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError(
            "the chat UI needs a terminal (stdin and stdout); "
            "for scripts use `edge-agent run` (or `edge-agent demo --headless`)"
        )


def chat_options(args: argparse.Namespace, model: str) -> ChatOptions:
    """ChatOptions from the flags; every user mistake raises UserError here."""
    from agent.cli.run import _open_index, _select_tools
    from tui.agent_backend import ChatOptions

    tools = _select_tools(args.tool, args.tools_module)
    retriever = _open_index(args.index) if args.index else None
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
        tools=tools,
        retriever=retriever,
        session=session,
        system=args.system,
        max_steps=args.max_steps,
        max_tokens=args.max_tokens,
        sampling_overrides={k: v for k, v in overrides.items() if v is not None},
    )


def run(args: argparse.Namespace) -> int:
    from tui.agent_backend import AgentBackend
    from tui.app import EdgeAgentApp

    options = chat_options(args, args.model)
    require_terminal()
    EdgeAgentApp(AgentBackend(options)).run()
    return 0
