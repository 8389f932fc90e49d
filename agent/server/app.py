"""The Starlette application: OpenAI's routes over one `ChatModel`.

`POST /v1/chat/completions` (plain or `stream: true` over SSE), `GET /v1/models`,
`POST /v1/embeddings`, `GET /health`. A chat request goes: parsed and checked (400) ->
prepared off the event loop, which compiles its grammars (400 for a schema that cannot
be one, before it waits for anything) -> admitted to the queue (429 when full) -> once
it holds the model, prepared again to count its prompt exactly against the context
(400) -> generated as a `Generation` that streams to the client or is awaited whole.
A client that disconnects, while waiting or while its answer streams, cancels its
generation; the model is free again within a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent.engines.base import ChatModel, PreparedStep, TextPiece
from agent.limits import MAX_REQUEST_BYTES, InputLimitError, too_large
from agent.limits import loads as bounded_loads
from agent.server import embeddings as emb
from agent.server import responses
from agent.server.config import ServerConfig
from agent.server.errors import (
    APIError,
    bad_request,
    from_exception,
    not_found,
    queue_full,
    unauthorized,
)
from agent.server.generation import END, Generation
from agent.server.protocol import (
    ChatCompletionRequest,
    EmbeddingRequest,
    check_supported,
    parse_body,
)
from agent.server.responses import Envelope, Outcome
from agent.server.scheduler import QueueFull, Scheduler, Ticket
from agent.server.translate import ChatPlan, plan_chat
from agent.server.turns import TurnMemory
from agent.tracing import Tracing
from agent.tracing.server_spans import CompletionSpan

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ServerState:
    """Everything the routes share: the engine, the queue, the caches."""

    engine: ChatModel
    config: ServerConfig
    scheduler: Scheduler
    memory: TurnMemory
    pool: Any = None  # agent.prompt_cache.PromptCachePool, for a model in this process
    embeddings: emb.EmbeddingService | None = None
    started: float = field(default_factory=time.time)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def name(self) -> str:
        return self.config.served_name or self.engine.name

    def label(self) -> str:
        return f"#{next(self._ids)}"


def create_app(engine: ChatModel, config: ServerConfig | None = None) -> Starlette:
    """The server's ASGI app for `engine` (any `ChatModel`; a model in this process keeps
    a pool of prompt caches while the app runs)."""
    config = config or ServerConfig()
    state = ServerState(
        engine=engine,
        config=config,
        scheduler=Scheduler(config.max_queue),
        memory=TurnMemory(config.remember_turns),
        embeddings=emb.EmbeddingService()
        if config.embeddings and emb.embeddings_installed()
        else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = getattr(engine, "model", None)
        keeps = hasattr(runtime, "keep_prompt_caches")
        if keeps:
            from agent.prompt_cache import PromptCachePool

            state.pool = PromptCachePool(config.prompt_caches, config.prompt_cache_bytes)
            runtime.keep_prompt_caches(state.pool)  # type: ignore[union-attr]
        try:
            yield
        finally:
            state.scheduler.cancel_all()
            if keeps:
                runtime.keep_prompt_caches(None)  # type: ignore[union-attr]

    routes = [
        Route("/v1/chat/completions", _route(state, _chat), methods=["POST"]),
        Route("/v1/models", _route(state, _models), methods=["GET"]),
        Route("/v1/models/{model_id:path}", _route(state, _model), methods=["GET"]),
        Route("/v1/embeddings", _route(state, _embeddings), methods=["POST"]),
        Route("/health", _route(state, _health, auth=False), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _no_route, 405: _no_route},
    )
    app.state.server = state
    return app


def server_state(app: Starlette) -> ServerState:
    return app.state.server


# ---------------------------------------------------------------------- plumbing
def _route(
    state: ServerState,
    handler: Callable[[ServerState, Request], Awaitable[Response]],
    *,
    auth: bool = True,
) -> Handler:
    """`handler` with the API-key check and every failure in OpenAI's error shape."""

    async def endpoint(request: Request) -> Response:
        try:
            if auth:
                _check_key(state.config.api_key, request)
            return await handler(state, request)
        except Exception as exc:
            error = from_exception(exc)
            if error.status == 500:
                log.exception("%s %s failed", request.method, request.url.path)
            else:
                log.info("%s %s %d %s", request.method, request.url.path, error.status,
                         error.message[:200])  # fmt: skip
            return _error_response(error)

    return endpoint


def _error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _no_route(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    message = (
        f"{request.method} {request.url.path} is not a route of this server"
        if status == 404
        else f"{request.url.path} does not take {request.method}"
    )
    return _error_response(APIError(status, message))


def _check_key(key: str | None, request: Request) -> None:
    if key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise unauthorized()


async def _json(request: Request) -> Any:
    """The request body as JSON, within `limits.MAX_REQUEST_BYTES` and `MAX_JSON_DEPTH`
    (checked before parsing: a 5,000-deep body is a 400, not a RecursionError)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise _too_large(int(declared))
    body = bytearray()
    async for chunk in request.stream():  # stops reading once over the limit
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise _too_large(len(body))
    try:
        return bounded_loads(bytes(body), "the request body", max_bytes=MAX_REQUEST_BYTES)
    except InputLimitError as exc:
        raise bad_request(str(exc)) from None
    except ValueError:
        raise bad_request("the request body is not JSON") from None


def _too_large(size: int) -> APIError:
    return APIError(
        413,
        str(too_large("the request body", size, MAX_REQUEST_BYTES, "send a smaller request")),
    )


def _check_model(state: ServerState, model: str) -> None:
    if model and model not in (state.name, state.engine.name):
        raise not_found(
            f"model '{model}' is not served here; this server serves '{state.name}' "
            "(GET /v1/models)",
            "model",
        )


async def _watch_disconnect(request: Request, cancel: Any) -> None:
    """Set `cancel` when the client goes away (the body has been read already)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
            return


# ---------------------------------------------------------------------- routes
async def _health(state: ServerState, request: Request) -> Response:
    scheduler = state.scheduler
    pool = asdict(state.pool.stats()) if state.pool is not None else None
    return JSONResponse(
        {
            "status": "ok",
            "model": state.name,
            "queue": {
                "running": scheduler.running,
                "waiting": scheduler.waiting,
                "max_waiting": scheduler.max_waiting,
            },
            "requests": asdict(scheduler.counters),
            "prompt_cache": pool,
            "uptime_s": round(time.time() - state.started, 1),
        }
    )


def _model_card(state: ServerState, model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": int(state.started),
            "owned_by": "edge-agent"}  # fmt: skip


async def _models(state: ServerState, request: Request) -> Response:
    cards = [_model_card(state, state.name)]
    if state.embeddings is not None:
        cards.append(_model_card(state, emb.MODEL_ID))
    return JSONResponse({"object": "list", "data": cards})


async def _model(state: ServerState, request: Request) -> Response:
    model_id = request.path_params["model_id"]
    served = [state.name] + ([emb.MODEL_ID] if state.embeddings is not None else [])
    if model_id not in served:
        raise not_found(f"model '{model_id}' is not served here", "model")
    return JSONResponse(_model_card(state, model_id))


async def _embeddings(state: ServerState, request: Request) -> Response:
    if state.embeddings is None:
        raise emb.unavailable()
    body = parse_body(EmbeddingRequest, await _json(request))
    texts = state.embeddings.texts(body)
    await state.embeddings.embedder()  # loaded (a download, the first time) before queueing
    ticket = _admit(state)
    await state.scheduler.wait(ticket)
    try:
        vectors, tokens = await state.embeddings.embed(texts)
    finally:
        state.scheduler.release(ticket)
    state.scheduler.counters.completed += 1
    return JSONResponse(emb.body(vectors, tokens, body.encoding_format))


def _admit(state: ServerState) -> Ticket:
    try:
        return state.scheduler.admit()
    except QueueFull as full:
        raise queue_full(full.waiting, full.retry_after) from None


async def _chat(state: ServerState, request: Request) -> Response:
    arrived_ns = time.time_ns()
    body = await _json(request)
    tools = state.config.server_tools
    if tools is not None and len(tools):
        from agent.server.server_tools import run_with_server_tools

        async def complete(step_body: dict[str, Any]) -> dict[str, Any]:
            result = await _completion(state, request, step_body, time.time_ns())
            assert isinstance(result, dict)  # server tools answer without streaming
            return result

        return JSONResponse(await run_with_server_tools(body, tools, complete, state.config))
    result = await _completion(state, request, body, arrived_ns)
    return result if isinstance(result, Response) else JSONResponse(result)


async def _completion(
    state: ServerState, request: Request, body: dict[str, Any], arrived_ns: int
) -> Response | dict[str, Any]:
    """One chat completion: an SSE response when streaming, else the completion body.
    `arrived_ns` starts its trace span (the request's arrival, or the step's start)."""
    chat: ChatCompletionRequest = parse_body(ChatCompletionRequest, body)
    check_supported(chat)
    _check_model(state, chat.model)
    engine = state.engine
    plan = plan_chat(chat, list(body.get("tools") or []), engine.default_sampling,
                     state.memory, state.config.compile_timeout)  # fmt: skip
    # Compile the step's grammars now, concurrently with whatever the model is doing:
    # a schema that cannot be a grammar is a 400 before the request waits for anything.
    prepared = await asyncio.to_thread(engine.prepare, plan.step)
    default = state.config.default_max_tokens
    limit = plan.max_tokens or (max(default, prepared.min_tokens) if default else None)
    _check_budget(plan, limit, prepared, engine.context_length, count=False)

    ticket = _admit(state)
    label = state.label()
    watcher = asyncio.create_task(_watch_disconnect(request, ticket.cancel))
    try:
        if not await _wait_for_model(state, ticket, watcher):
            return Response(status_code=499)  # nobody is listening any more
        if ticket.cancel.is_set():  # the server is stopping: not even a prefill
            state.scheduler.release(ticket)
            state.scheduler.counters.cancelled += 1
            raise APIError(503, "the server is shutting down", "server_error", code="shutdown")
        try:
            # Holding the model: the exact count of the prompt against the context.
            prepared = await asyncio.to_thread(engine.prepare, plan.step)
            max_tokens = _check_budget(plan, limit, prepared, engine.context_length, count=True)
        except BaseException:
            state.scheduler.release(ticket)
            raise
        span = CompletionSpan(
            state.config.tracing or Tracing(),
            request.headers,  # a W3C traceparent continues the client's trace
            model=state.name,
            provider=engine.provider,
            max_tokens=max_tokens,
            temperature=plan.step.sampling.temperature,
            messages=plan.messages,
            arrived_ns=arrived_ns,
        )
        generation = Generation.start(engine, state.scheduler, state.memory, plan, prepared,
                                      max_tokens, ticket, label, span)  # fmt: skip
    except BaseException:
        watcher.cancel()
        raise
    envelope = Envelope.new(state.name)
    if plan.stream:
        from sse_starlette.sse import EventSourceResponse

        return EventSourceResponse(_sse(generation, envelope, plan, watcher))
    try:
        outcome = await _finished(generation)
    finally:
        watcher.cancel()
    return responses.completion(envelope, outcome)


async def _wait_for_model(state: ServerState, ticket: Ticket, watcher: asyncio.Task) -> bool:
    """Wait in turn for the model; False when the client left first (ticket withdrawn)."""
    wait = asyncio.ensure_future(state.scheduler.wait(ticket))
    try:
        await asyncio.wait({wait, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        wait.cancel()
        raise
    if wait.done():
        return True
    wait.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await wait
    if wait.done() and not wait.cancelled() and wait.exception() is None:
        state.scheduler.release(ticket)  # it got the model as it was withdrawn
    state.scheduler.counters.cancelled += 1
    return False


def _check_budget(
    plan: ChatPlan, limit: int | None, prepared: PreparedStep, context: int, *, count: bool
) -> int:
    """The tokens the step may generate, or a 400: the step's shortest valid output must
    fit in `limit` (max_tokens) and, with the prompt (`count`: counted exactly), in the
    context. A limit beyond the context is capped there (the output then ends with
    finish_reason "length"), as a client cannot know this model's exact token count."""
    needed = prepared.min_tokens
    what = _shortest(plan)
    if limit is not None and limit < needed:
        raise bad_request(
            f"max_tokens={limit} is too small: the shortest valid {what} takes {needed} tokens",
            "max_tokens",
            "max_tokens_too_small",
        )
    room = context - prepared.prompt_tokens
    if count and room < max(needed, 1):
        raise bad_request(
            f"the prompt has {prepared.prompt_tokens} tokens and the model's context window "
            f"is {context}: no room for {what} of at least {max(needed, 1)} token(s); "
            "shorten the conversation",
            "messages",
            "context_length_exceeded",
        )
    return min(limit or room, room)


def _shortest(plan: ChatPlan) -> str:
    step = plan.step
    if step.tool_choice == "required":
        return "tool call"
    if step.answer is not None:
        return "answer (response_format)"
    return "output"


async def _finished(generation: Generation) -> Outcome:
    """The outcome of a generation (raised as an APIError if it failed)."""
    outcome: Outcome | None = None
    while True:
        item = await generation.events.get()
        if item is END:
            break
        if isinstance(item, Outcome):
            outcome = item
        elif isinstance(item, BaseException):
            raise from_exception(item)
    if outcome is None:  # cancelled: the client left, or the server is stopping
        raise _cancelled()
    return outcome


def _cancelled() -> APIError:
    return APIError(503, "the request was cancelled: the server is stopping", "server_error",
                    code="cancelled")  # fmt: skip


async def _sse(
    generation: Generation, envelope: Envelope, plan: ChatPlan, watcher: asyncio.Task
) -> AsyncIterator[bytes]:
    """The generation as `chat.completion.chunk` events, then `[DONE]`.

    Text that arrived while the client was being written to goes out as one chunk
    (a loaded machine then sends fewer, larger events instead of falling behind).
    """
    writer = responses.ChunkWriter(envelope, plan.include_usage)
    events = generation.events
    held: list[Any] = []  # an item taken while coalescing, to handle next
    finished = ended = False
    try:
        yield writer.delta({"role": "assistant", "content": ""})
        while True:
            item = held.pop() if held else await events.get()
            if isinstance(item, TextPiece):
                text = [item.text]
                while not events.empty():  # coalesce what is already waiting
                    following = events.get_nowait()
                    if isinstance(following, TextPiece) and following.kind == item.kind:
                        text.append(following.text)
                    else:
                        held.append(following)
                        break
                key = "reasoning_content" if item.kind == "reasoning" else "content"
                yield writer.text(key, "".join(text))
                continue
            if item is END:
                break
            if isinstance(item, Outcome):
                for delta in responses.tool_call_deltas(item.tool_calls):
                    yield writer.delta(delta)
                yield writer.delta({}, item.finish_reason)
                if plan.include_usage:
                    yield writer.event(responses.usage_chunk(envelope, item))
                ended = True
            elif isinstance(item, BaseException):
                yield writer.event(from_exception(item).body())
                ended = True
        if not ended:  # cancelled by the server (it is stopping): say so, do not just end
            yield writer.event(_cancelled().body())
        finished = True
        yield responses.DONE
    finally:
        if not finished:
            generation.ticket.cancel.set()  # the client went away: stop at the next token
        watcher.cancel()
