"""Server-side tools (`edge-agent serve --mcp ...`): a request's model steps, with the
calls to the server's tools run here.

The server's tools are listed after the request's own. While a step calls only server
tools, they run (concurrently, under their timeouts, approved per the server's
setting) and their results go back to the model as `tool` turns; a step that answers,
or calls a tool of the client's, is the response. The last allowed step may not call
tools, so a request always ends with something the client can use. The calls made and
their results are listed in the response under `server_tool_results` (an extension
OpenAI clients ignore), and `usage` counts every step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agent.server.config import ServerConfig
from agent.server.errors import bad_request
from tools import ToolCall, ToolRegistry, approve_all, deny_all

Complete = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def run_with_server_tools(
    body: dict[str, Any], tools: ToolRegistry, complete: Complete, config: ServerConfig
) -> dict[str, Any]:
    """The completion of `body` once the server's tool calls are done."""
    if body.get("stream"):
        raise bad_request(
            "this server runs its own tools (serve --mcp) and answers those requests "
            "without streaming; send stream: false",
            "stream",
        )
    own = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    names = {(t.get("function") or t).get("name") for t in own}
    clash = sorted(n for n in names if isinstance(n, str) and n in tools)
    if clash:
        raise bad_request(
            f"tool name(s) {', '.join(clash)} are the server's own tools; rename yours",
            "tools",
        )
    messages = list(body.get("messages") or [])
    steps = max(1, config.server_tool_steps)
    approve = approve_all if config.approve_server_tools else deny_all
    ran: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    completion: dict[str, Any] = {}
    for step in range(1, steps + 1):
        step_body = {**body, "messages": messages, "tools": own + tools.openai_tools()}
        if step > 1 and body.get("tool_choice") not in (None, "none"):
            step_body["tool_choice"] = "auto"  # a forced call applies to the first step
        if step == steps:
            step_body["tool_choice"] = "none"  # the last step answers
        completion = await complete(step_body)
        _add_usage(totals, completion.get("usage"))
        message = completion["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        if not calls or not all(c["function"]["name"] in tools for c in calls):
            break
        messages.append(message)
        results = await tools.execute_many([ToolCall.from_openai(c) for c in calls], approve)
        for c, result in zip(calls, results, strict=True):
            messages.append(result.to_message().to_dict())
            ran.append({
                "id": c["id"],
                "name": c["function"]["name"],
                "arguments": c["function"]["arguments"],
                "content": result.content,
                **({"error": result.error} if result.error is not None else {}),
            })  # fmt: skip
    if totals:
        completion["usage"] = {**(completion.get("usage") or {}), **totals}
    completion["server_tool_results"] = ran
    return completion


def _add_usage(totals: dict[str, int], usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, int):
            totals[key] = totals.get(key, 0) + value
