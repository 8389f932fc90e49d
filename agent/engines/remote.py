"""Any OpenAI-compatible server as an engine: vLLM, llama.cpp's server, Ollama, LM Studio.

A step is one `POST {base_url}/chat/completions` with `stream: true`: tools go as OpenAI
tools with `tool_choice`, an answer format as `response_format: json_schema` (strict).
The server streams text, reasoning (`reasoning_content`, as vLLM and llama.cpp send it)
and tool-call fragments over SSE; the same events come out as from a local model, with
TTFT and tokens/s computed from the stream.

Guarantees across the wire: a server may or may not constrain its output, and nothing
received says which. So every call is validated here against the call schema and every
answer against its schema; an invalid one goes back to the model as an error result (as
a local engine's tool errors do), and the stats say `grammar: remote-unverified` rather
than claim a guarantee. Timeouts, refused connections, 429/503 (retried with backoff,
honouring `Retry-After`) and a stream that ends without `[DONE]` are clear errors or
retries, never a hang.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry import propagate

from agent.engines.base import PreparedStep, StepEvent, StepRequest, StepResult, TextPiece
from agent.errors import UserError
from agent.limits import InputLimitError
from agent.limits import loads as bounded_loads
from agent.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage
from agent.model_info import ModelInfo
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.tool_parser import CALL_START, ParsedCall, parse_output

DEFAULT_CONTEXT = 32_768
RETRY_STATUSES = (429, 502, 503, 504)
UNVERIFIED = "remote-unverified"


class RemoteError(UserError):
    """The server could not be reached or answered with an error."""


@dataclass
class _Call:
    """One tool call assembled from streamed fragments."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Reply:
    text: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    finish: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    t_first: float = 0.0
    done: bool = False


class RemoteChatModel:
    """A `ChatModel` for an OpenAI-compatible `/v1/chat/completions` endpoint."""

    provider = "openai"

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        context_length: int = DEFAULT_CONTEXT,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        max_retries: int = 3,
        sampling: SamplingParams | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"{model or 'default'}@{self.base_url}"
        self.api_key = (
            api_key or os.environ.get("EDGE_AGENT_API_KEY") or os.environ.get("OPENAI_API_KEY")
        )
        self._context = context_length
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.max_retries = max_retries
        self._sampling = sampling or SamplingParams()
        self._transport = transport

    # ------------------------------------------------------------------ facts
    @property
    def context_length(self) -> int:
        return self._context

    @property
    def default_sampling(self) -> SamplingParams:
        return self._sampling

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            path=self.base_url,
            model_type="remote",
            quantization="served",
            parameters=0,
            weight_bytes=0,
            context_length=self._context,
            vocab_size=0,
            engine=self.provider,
        )

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass

    def compile_answer(self, answer: Any, timeout: float = 30.0) -> None:
        if getattr(answer, "kind", "json") != "json":
            raise UserError(
                "an OpenAI-compatible server takes JSON Schema answers only; a regex, "
                "grammar or choice output needs a local model"
            )
        from schemas.compiler import check_schema

        check_schema(answer.json_schema)

    # ------------------------------------------------------------------ steps
    def prepare(self, request: StepRequest) -> PreparedStep:
        """The body to send, and the prompt's size (estimated: the server tokenises)."""
        messages = _wire_messages(request)
        text = json.dumps(messages, ensure_ascii=False) + json.dumps(request.tools)
        return PreparedStep(request, _estimate_tokens(text), 1, messages)

    async def stream(
        self,
        step: PreparedStep,
        max_tokens: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[StepEvent]:
        request = step.request
        body = self._body(request, step.state, max_tokens)
        t0 = time.perf_counter()
        reply = _Reply()
        async for piece in self._post_stream(body, reply, should_stop):
            yield piece
        t_end = time.perf_counter()
        yield self._result(request, reply, step.prompt_tokens, t0, t_end)

    # ------------------------------------------------------------------ wire
    def _body(self, request: StepRequest, messages: list[dict[str, Any]], max_tokens: int) -> dict:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": s.temperature,
            # LFM2's recommended sampling, as the extensions vLLM and llama.cpp accept.
            "min_p": s.min_p,
            "repetition_penalty": s.repetition_penalty,
        }
        if s.top_p < 1:
            body["top_p"] = s.top_p
        if s.seed is not None:
            body["seed"] = s.seed
        if request.tools and request.tool_choice != "none":
            body["tools"] = request.tools
            body["tool_choice"] = (
                {"type": "function", "function": {"name": request.tool_name}}
                if request.tool_name
                else request.tool_choice
            )
            body["parallel_tool_calls"] = request.max_parallel_calls > 1
        if request.answer is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.answer.json_schema,
                                "strict": True},
            }  # fmt: skip
        return body

    async def _post_stream(
        self, body: dict[str, Any], reply: _Reply, should_stop: Callable[[], bool] | None
    ) -> AsyncIterator[TextPiece]:
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        # The run's trace continues on the server (`edge-agent serve` reads traceparent);
        # nothing is added when no span is being recorded.
        propagate.inject(headers)
        url = f"{self.base_url}/chat/completions"
        async with httpx.AsyncClient(
            timeout=self.timeout, transport=self._transport, verify=_ssl_context()
        ) as client:
            for attempt in range(self.max_retries + 1):
                try:
                    async with client.stream("POST", url, json=body, headers=headers) as response:
                        if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                            await asyncio.sleep(_backoff(response, attempt))
                            continue
                        if response.status_code >= 400:
                            raise RemoteError(await _error_message(response, url))
                        async for piece in _read_events(response, reply, should_stop):
                            yield piece
                        break
                except httpx.ConnectError as exc:
                    if attempt < self.max_retries and not reply.t_first:
                        await asyncio.sleep(0.5 * 2**attempt)
                        continue
                    raise RemoteError(f"cannot reach {url}: {exc}") from None
                except httpx.TimeoutException:
                    raise RemoteError(
                        f"{url} did not answer within {self.timeout.read:g} s"
                    ) from None
                except httpx.RemoteProtocolError as exc:
                    raise RemoteError(f"the server closed the stream mid-answer: {exc}") from None
                except httpx.TransportError as exc:  # a reset connection, a read or write error
                    what = type(exc).__name__
                    raise RemoteError(f"the connection to {url} failed: {what} {exc}") from None
        if not reply.done and not (should_stop and should_stop()):
            raise RemoteError("the server closed the stream before the answer was complete")

    def _result(
        self, request: StepRequest, reply: _Reply, estimate: int, t0: float, t_end: float
    ) -> StepResult:
        text = "".join(reply.text)
        calls = [_checked(c, request) for _, c in sorted(reply.calls.items())]
        answer_text = text.strip() if request.answer is not None and not calls else None
        usage = reply.usage
        prompt = int(usage.get("prompt_tokens") or estimate)
        generated = int(usage.get("completion_tokens") or _estimate_tokens(text))
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        ttft = (reply.t_first or t_end) - t0
        stats = GenerationStats(
            prompt_tokens=prompt,
            cached_prompt_tokens=cached,
            generated_tokens=generated,
            ttft_s=ttft,
            prefill_tps=(prompt - cached) / ttft if ttft > 0 else 0.0,
            decode_tps=(generated - 1) / (t_end - reply.t_first)
            if generated > 1 and t_end > reply.t_first > 0
            else 0.0,
            total_s=t_end - t0,
            finish_reason=_finish(reply.finish, bool(calls)),
            constrained=bool(request.tools and request.tool_choice != "none")
            or (request.answer is not None),
            engine=self.provider,
        )
        if stats.constrained:
            stats.grammar_engine = UNVERIFIED
        # A call whose arguments were broken keeps its id with no arguments: the tool
        # turn that follows reports the error against that id.
        message = AssistantMessage(
            text, tuple(ToolCall(c.call_id or "", c.name, c.arguments) for c in calls)
        )
        return StepResult(
            raw=text,
            text=text.strip(),
            calls=calls,
            stats=stats,
            answer_text=answer_text,
            assistant_message=message,
        )


# ---------------------------------------------------------------------- helpers
async def _read_events(
    response: httpx.Response, reply: _Reply, should_stop: Callable[[], bool] | None
) -> AsyncIterator[TextPiece]:
    async for line in response.aiter_lines():
        if should_stop is not None and should_stop():
            return
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            reply.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise RemoteError(f"the server sent an event that is not JSON: {data[:120]}") from None
        if chunk.get("error"):
            raise RemoteError(f"the server failed mid-answer: {_describe(chunk['error'])}")
        if chunk.get("usage"):
            reply.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                reply.t_first = reply.t_first or time.perf_counter()
                yield TextPiece(reasoning, "reasoning")
            if delta.get("content"):
                reply.t_first = reply.t_first or time.perf_counter()
                reply.text.append(delta["content"])
                yield TextPiece(delta["content"])
            for fragment in delta.get("tool_calls") or []:
                reply.t_first = reply.t_first or time.perf_counter()
                call = reply.calls.setdefault(int(fragment.get("index", 0)), _Call())
                call.id = fragment.get("id") or call.id
                function = fragment.get("function") or {}
                call.name += function.get("name") or ""
                call.arguments += function.get("arguments") or ""
            if choice.get("finish_reason"):
                reply.finish = choice["finish_reason"]


def _checked(call: _Call, request: StepRequest) -> ParsedCall:
    """A received call, with an error when its arguments do not fit the call schema."""
    call_id = call.id or f"call_{random.getrandbits(48):012x}"
    try:
        arguments = bounded_loads(call.arguments or "{}", "the arguments")
    except InputLimitError as exc:
        return ParsedCall(call.name, {}, str(exc), call_id)
    except json.JSONDecodeError as exc:
        return ParsedCall(call.name, {}, f"the arguments are not JSON ({exc.msg})", call_id)
    except ValueError as exc:
        return ParsedCall(call.name, {}, f"the arguments are not JSON ({exc})", call_id)
    if not isinstance(arguments, dict):
        return ParsedCall(call.name, {}, "the arguments are not a JSON object", call_id)
    if request.call_schema is not None:
        import jsonschema

        errors = list(
            jsonschema.Draft202012Validator(request.call_schema).iter_errors(
                {"name": call.name, "arguments": arguments}
            )
        )
        if errors:
            return ParsedCall(call.name, arguments, f"invalid call: {errors[0].message}", call_id)
    return ParsedCall(call.name, arguments, None, call_id)


def _wire_messages(request: StepRequest) -> list[dict[str, Any]]:
    """The conversation in OpenAI's shape (a local model's call blocks become
    `tool_calls`, so a session can move between engines)."""
    out: list[dict[str, Any]] = []
    if request.system:
        out.append(SystemMessage(request.system).to_dict())
    messages = list(request.messages)
    for index, message in enumerate(messages):
        if (
            isinstance(message, AssistantMessage)
            and not message.tool_calls
            and CALL_START in message.content
        ):
            parsed = parse_output(message.content, bare=False)
            # The tool turns that follow answer these calls in order: theirs are the ids.
            ids = [m.tool_call_id for m in _results_after(messages, index)]
            calls = tuple(
                ToolCall(ids[i] if i < len(ids) else f"call_{len(out)}_{i}", c.name, c.arguments)
                for i, c in enumerate(parsed.calls)
            )
            message = AssistantMessage(parsed.text, calls)
        wire = message.to_dict()
        if isinstance(message, ToolMessage):  # what OpenAI's API defines for a result
            wire = {k: wire[k] for k in ("role", "tool_call_id", "content")}
        out.append(wire)
    return out


def _results_after(messages: list[Message], index: int) -> list[ToolMessage]:
    """The tool turns right after `messages[index]`."""
    results = []
    for message in messages[index + 1 :]:
        if not isinstance(message, ToolMessage):
            break
        results.append(message)
    return results


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context for every request (the CA bundle httpx uses, certifi's):
    loading it costs ~40 ms, every new client would pay that again."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _estimate_tokens(text: str) -> int:
    """Tokens of `text` by cl100k_base (the server's tokenizer is unknown here)."""
    try:
        import tiktoken

        return len(tiktoken.get_encoding("cl100k_base").encode(text, disallowed_special=()))
    except Exception:  # no tokenizer data: about four characters a token
        return max(1, len(text) // 4)


def _finish(reason: str, called: bool) -> str:
    if reason == "tool_calls" or called:
        return "stop"
    return {"stop": "stop", "length": "length", "": "stop"}.get(reason, reason)


def _backoff(response: httpx.Response, attempt: int) -> float:
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        try:
            return min(float(retry_after), 30.0)
        except ValueError:
            pass
    return min(0.5 * 2**attempt, 8.0) * (0.5 + random.random())


async def _error_message(response: httpx.Response, url: str) -> str:
    body = (await response.aread()).decode("utf-8", "replace")
    try:
        detail = _describe(json.loads(body).get("error", body))
    except (ValueError, AttributeError):
        detail = body.strip()[:200]
    if response.status_code in (401, 403):
        return f"{url} refused the API key ({response.status_code}): set OPENAI_API_KEY or " \
            f"EDGE_AGENT_API_KEY ({detail})"  # fmt: skip
    return f"{url} answered {response.status_code}: {detail}"


def _describe(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error)[:300]
