"""A small OpenAI-compatible server for tests, run by a real uvicorn on a free port.

It answers `/v1/chat/completions` (streamed or not) from a script of replies, and can
misbehave the ways real servers do: ignore `response_format`, send malformed tool
arguments, answer 429 with `Retry-After`, drop the connection mid-stream, stall, or
refuse the API key. Every request body is kept, so tests can check what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


@dataclass
class StubReply:
    """One completion: text pieces, and/or tool calls (name, arguments as sent)."""

    text: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)
    reasoning: str = ""
    finish: str | None = None


@dataclass
class StubServer:
    replies: list[StubReply] = field(default_factory=list)
    fail_first: int = 0  # answer 429 to this many requests first
    drop_after: int | None = None  # close the stream after this many chunks
    stall_s: float = 0.0  # wait this long before the first chunk
    api_key: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def _chat(self, request: Request):
        key = self.api_key
        if key is not None and request.headers.get("authorization") != f"Bearer {key}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        body = await request.json()
        self.requests.append(body)
        if self.fail_first > 0:
            self.fail_first -= 1
            return JSONResponse(
                {"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "0"}
            )
        if not self.replies:
            return JSONResponse({"error": {"message": "no reply scripted"}}, status_code=500)
        reply = self.replies.pop(0)
        return StreamingResponse(self._events(reply), media_type="text/event-stream")

    async def _events(self, reply: StubReply):
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        chunks = []
        if reply.reasoning:
            chunks.append({"reasoning_content": reply.reasoning})
        for word in reply.text.split(" ") if reply.text else []:
            chunks.append({"content": word + " "})
        for i, (name, arguments) in enumerate(reply.calls):
            chunks.append(
                {"tool_calls": [{"index": i, "id": f"call_stub_{i}", "type": "function",
                                 "function": {"name": name, "arguments": ""}}]}
            )  # fmt: skip
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                chunks.append({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
        finish = reply.finish or ("tool_calls" if reply.calls else "stop")
        for n, delta in enumerate(chunks):
            if self.drop_after is not None and n >= self.drop_after:
                raise ConnectionResetError("dropped by the stub")
            yield _sse({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        yield _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        yield _sse(
            {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": len(chunks)}}
        )
        yield "data: [DONE]\n\n"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(stub: StubServer) -> Iterator[StubServer]:
    """Serve `stub` on a free loopback port until the block ends."""
    stub.port = free_port()
    config = uvicorn.Config(stub.app(), host="127.0.0.1", port=stub.port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the stub server did not start")
        time.sleep(0.02)
    try:
        yield stub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
