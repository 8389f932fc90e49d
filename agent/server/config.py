"""The settings of one server, with the defaults `edge-agent serve` uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.prompt_cache import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# 16 clients at once must queue without errors (README, BENCHMARKS.md): room for twice that.
DEFAULT_MAX_QUEUE = 32


@dataclass(frozen=True)
class ServerConfig:
    """How the server admits, queues and caches requests.

    `api_key`: clients must send `Authorization: Bearer <key>` (None: no check, which
    `serve` allows on loopback only). `max_queue`: requests that may wait for the model
    while one runs; one more is refused with 429 and `Retry-After`. `prompt_caches` and
    `prompt_cache_bytes` bound the prompt caches kept for conversations other than the
    one the model ran last (agent.prompt_cache). `served_name`: the model id clients
    send (default: the engine's name). `default_max_tokens`: the limit of a request
    that sets none (default: what the context leaves).
    """

    api_key: str | None = None
    max_queue: int = DEFAULT_MAX_QUEUE
    prompt_caches: int = DEFAULT_MAX_ENTRIES
    prompt_cache_bytes: int = DEFAULT_MAX_BYTES
    compile_timeout: float = 30.0
    served_name: str | None = None
    default_max_tokens: int | None = None  # a request without max_tokens: the context left
    embeddings: bool = True  # serve /v1/embeddings when the embeddings extra is installed
    remember_turns: int = 4096  # generated assistant turns kept for cache reuse
    # Tools the server runs itself (`serve --mcp`): offered with every request's own
    # tools; calls to them run here and the model goes on, so the client gets the
    # answer (or calls to its own tools). A `tools.ToolRegistry`.
    server_tools: Any = None
    server_tool_steps: int = 8  # model steps per request, at most, with server tools
    approve_server_tools: bool = False  # run tools that require approval (`serve --yes`)
    tracing: Any = None  # agent.tracing.Tracing (None: OpenTelemetry's global providers)

    def __post_init__(self) -> None:
        from agent.errors import UserError

        if self.max_queue < 0:
            raise UserError(f"max_queue must be >= 0, got {self.max_queue}")
        if self.prompt_caches < 0 or self.prompt_cache_bytes < 0:
            raise UserError("prompt cache limits must be >= 0")
        if self.api_key is not None and not self.api_key.strip():
            raise UserError("the API key is empty")
