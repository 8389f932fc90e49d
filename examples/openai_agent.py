"""An agent loop written with the official `openai` client, against `edge-agent serve`.

    edge-agent serve --model tiny &                       # in another terminal
    python examples/openai_agent.py "Weather in Oslo, and 17 * 23?"
    python examples/openai_agent.py --serve tiny "Weather in Oslo?"   # a server in-process

Nothing here is edge-agent's API but the server's URL: any client of OpenAI's chat
completions runs the same loop. What the server adds is that the loop needs no repair
code: every tool call's `arguments` parse and validate against the tool's
`parameters` (the model decodes them under a grammar), so `json.loads` and the call
always work, even with the random-weight `tiny` model, whose choices are noise.
Each step prints its calls and what `usage` says about it: the prompt tokens the
server's cache already held, the time to first token, the decode rate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from openai import OpenAI

FORECASTS = {"Lisbon": "sunny, 24 C", "Oslo": "rain, 9 C", "Kyoto": "cloudy, 18 C"}


def forecast(city: str) -> str:
    return FORECASTS[city]


def multiply(a: int, b: int) -> int:
    return a * b


TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "forecast",
            "description": "Tomorrow's weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "enum": sorted(FORECASTS)}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "multiply",
            "description": "The product of two whole numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
]
FUNCTIONS: dict[str, Callable[..., Any]] = {"forecast": forecast, "multiply": multiply}


def run_agent(client: OpenAI, model: str, question: str, max_steps: int = 4) -> str:
    """Call tools until the model answers (or `max_steps` runs out); the answer."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Answer with the tools' help."},
        {"role": "user", "content": question},
    ]
    for step in range(1, max_steps + 1):
        reply = client.chat.completions.create(
            model=model,
            messages=messages,  # type: ignore[arg-type]
            tools=TOOLS,  # type: ignore[arg-type]
            tool_choice="required" if step == 1 else "auto",
            max_tokens=200,
            seed=step,
        )
        message = reply.choices[0].message
        usage = reply.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        extra = (usage.model_extra or {}).get("edge_agent", {})  # the server's extension
        print(
            f"step {step}: {reply.choices[0].finish_reason}; prompt {usage.prompt_tokens} tok "
            f"({usage.prompt_tokens_details.cached_tokens} cached), "
            f"TTFT {extra.get('ttft_ms', 0):.0f} ms, "
            f"decode {extra.get('decode_tokens_per_s', 0):.0f} tok/s",
            file=sys.stderr,
        )
        # The message goes back as it came: the server recognises its own turn and
        # reuses the prompt cache it left.
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            return message.content or ""
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)  # always valid JSON
            result = FUNCTIONS[call.function.name](**arguments)  # always valid arguments
            print(f"  {call.function.name}({arguments}) -> {result}", file=sys.stderr)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": str(result)})
    return "(no answer within the steps allowed)"


@contextlib.contextmanager
def server_url(args: argparse.Namespace) -> Iterator[str]:
    """The URL to talk to: --base-url, or a server started in this process (--serve)."""
    if args.serve is None:
        yield args.base_url
        return
    from agent.server.serve import serve_in_background

    with serve_in_background(args.serve) as server:
        yield server.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Weather in Oslo, and what is 17 * 23?")
    parser.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    parser.add_argument("--serve", metavar="MODEL", help="start a server for MODEL in-process")
    parser.add_argument("--model", default=None, help="model id (default: the server's first)")
    args = parser.parse_args()
    with server_url(args) as url:
        client = OpenAI(
            base_url=url, api_key=os.environ.get("EDGE_AGENT_API_KEY", "none"), max_retries=0
        )
        model = args.model or client.models.list().data[0].id
        print(run_agent(client, model, args.question))
    return 0


if __name__ == "__main__":
    sys.exit(main())
