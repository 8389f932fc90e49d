"""Entry point of the `edge-agent` console script.

Exit codes: 0 success, 2 user error (one line on stderr, no traceback), 3 an agent run
stopped by a guard, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from agent.cli import (
    chat,
    compare,
    demo,
    engines,
    extract,
    generate,
    ingest,
    logs,
    mcp_serve,
    models,
    plan,
    quantize,
    run,
    search,
    serve,
    sessions,
)
from agent.cli import eval as eval_command
from agent.cli.common import EXIT_USER_ERROR, CliParser
from agent.errors import UserError

COMMANDS = (
    demo,
    chat,
    generate,
    extract,
    run,
    serve,
    mcp_serve,
    sessions,
    plan,
    models,
    quantize,
    compare,
    engines,
    ingest,
    search,
    eval_command,
)
VERBOSE_HELP = f"log what the library does (debug level) on stderr; or set {logs.ENV_VAR}=LEVEL"
log = logging.getLogger(__name__)


def build_parser() -> CliParser:
    parser = CliParser(
        prog="edge-agent",
        description="Agents, structured extraction and chat with small on-device models.",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    for command_parser in sub.choices.values():  # `edge-agent run -v` works too
        # SUPPRESS: a command's own default would overwrite `edge-agent -v run`'s flag.
        command_parser.add_argument(
            "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Transformers warns about a missing torch on import; it is noise for our users.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        logs.configure(logs.requested_level(args.verbose))
        return int(args.func(args) or 0)
    except UserError as exc:
        log.debug("the command stopped on a user error", exc_info=True)
        print(f"edge-agent: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("edge-agent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
