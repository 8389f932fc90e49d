"""An agent whose tools come from MCP servers: one it launches (stdio), and, with
--url, one already running (streamable HTTP).

    python examples/mcp_agent.py                           # tiny model, offline
    python examples/mcp_agent.py --model smollm2 --prompt "Weather in Oslo?"
    edge-agent mcp-serve --http --port 8765 &              # edge-agent's own tools...
    python examples/mcp_agent.py --url http://127.0.0.1:8765/mcp   # ...over HTTP

The servers start with the agent (in parallel, each within its startup timeout) and
stop when the `with` block ends. The tiny model has random weights: its calls are
well-formed (the grammar is built from each tool's inputSchema) but their arguments are
noise; the server still computes a real answer from them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent import Agent, UserError
from agent.events import FinalEvent, ToolCallEvent, ToolResultEvent
from tools import approve_all
from tools.mcp import MCPServerConfig

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--prompt", default="What is 2 + 3?")
    parser.add_argument("--url", default=None, help="also use this streamable HTTP server")
    parser.add_argument("--tool-choice", default="add")
    args = parser.parse_args()
    servers = [
        # trusted=True: calls run without asking (the default asks, through `approve`).
        MCPServerConfig(
            "demo", command=sys.executable, args=(str(HERE / "mcp_server.py"),), trusted=True
        ),
    ]
    if args.url:
        servers.append(MCPServerConfig("remote", url=args.url))
    try:
        with Agent(
            args.model, mcp_servers=servers, tool_choice=args.tool_choice, max_steps=2,
            max_tokens=256, approve=approve_all,
        ) as agent:  # fmt: skip
            print("tools:", ", ".join(agent.registry.names()))
            for event in agent.run(args.prompt).events:
                if isinstance(event, ToolCallEvent):
                    print(f"-> {event.name}({json.dumps(event.arguments)})")
                elif isinstance(event, ToolResultEvent):
                    print(f"<- {event.name}: {event.error or event.content}")
                elif isinstance(event, FinalEvent):
                    print(f"answer ({event.stats.steps} steps): {event.content[:200]!r}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
