"""A chat completion request as the engine's `StepRequest`.

The same request the in-process agent loop would make: tools listed in the prompt, the
call grammar built from the tools' parameters (`ToolRegistry.call_schema`), the tool
choice as a mode and a name, the answer format as an `OutputSpec`, sampling from the
model's defaults with the request's overrides. The system prompt gets what the loop
adds (LFM2's "Output function calls as JSON." when tools are listed, the answer's
JSON Schema when one is required) unless the client's system prompt already says it,
so a conversation served here and one run in process see the same prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent.engines.base import DEFAULT_MAX_PARALLEL_CALLS, StepRequest
from agent.errors import UserError
from agent.limits import InputLimitError
from agent.limits import loads as bounded_loads
from agent.messages import Message as ChatMessage
from agent.messages import MessageError, SystemMessage, message_from_dict
from agent.prompting import ANSWER_FORMAT_INSTRUCTION, JSON_CALLS_INSTRUCTION
from agent.sampling import SamplingParams
from agent.server.errors import bad_request
from agent.server.protocol import (
    ChatCompletionRequest,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
    Message,
    NamedToolChoice,
    message_text,
)
from agent.server.turns import TurnMemory


@dataclass(frozen=True)
class ChatPlan:
    """What one chat completion asks of the model, and how to answer it."""

    step: StepRequest
    conversation: list[dict[str, Any]]  # the messages as the client sent them
    messages: tuple[ChatMessage, ...]  # the same, typed (what a trace records)
    max_tokens: int | None
    stops: tuple[str, ...]
    parallel_calls: bool
    stream: bool
    include_usage: bool


def plan_chat(
    request: ChatCompletionRequest,
    raw_tools: list[dict[str, Any]],
    default_sampling: SamplingParams,
    memory: TurnMemory,
    compile_timeout: float = 30.0,
) -> ChatPlan:
    """The plan of `request` (`raw_tools`: its tools exactly as sent, for the prompt).
    Raises a 400 `APIError` for anything the model cannot be asked."""
    conversation = [_message(m, i) for i, m in enumerate(request.messages)]
    typed = tuple(_typed(m, i) for i, m in enumerate(conversation))
    restored = [_typed(m, i) for i, m in enumerate(memory.restore(conversation))]
    system = ""
    if restored and isinstance(restored[0], SystemMessage):
        system, restored = restored[0].content, restored[1:]
    if not restored:
        raise bad_request("the conversation has no message after the system prompt", "messages")

    mode, name, call_schema = _tool_choice(request, raw_tools)
    answer, answer_schema = _answer(request)
    step = StepRequest(
        system=_system(system, bool(raw_tools), answer_schema),
        messages=restored,
        sampling=_sampling(request, default_sampling),
        tools=raw_tools,
        tool_choice=mode,
        tool_name=name,
        call_schema=call_schema,
        max_parallel_calls=DEFAULT_MAX_PARALLEL_CALLS if request.parallel_tool_calls else 1,
        answer=answer,
        compile_timeout=compile_timeout,
    )
    return ChatPlan(
        step=step,
        conversation=conversation,
        messages=typed,
        max_tokens=request.token_limit(),
        stops=request.stop_sequences(),
        parallel_calls=request.parallel_tool_calls,
        stream=request.stream,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
    )


# ---------------------------------------------------------------------- pieces
def _message(message: Message, index: int) -> dict[str, Any]:
    role = "system" if message.role == "developer" else message.role
    out: dict[str, Any] = {"role": role, "content": message_text(message)}
    if role == "assistant" and message.tool_calls:
        for call in message.tool_calls:
            try:
                bounded_loads(call.function.arguments or "{}", f"the arguments of '{call.id}'")
            except InputLimitError as exc:
                raise bad_request(str(exc), f"messages.{index}.tool_calls") from None
            except ValueError:
                raise bad_request(
                    f"the arguments of tool call '{call.id}' are not JSON",
                    f"messages.{index}.tool_calls",
                ) from None
        out["tool_calls"] = [
            {"id": c.id, "type": "function",
             "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in message.tool_calls
        ]  # fmt: skip
    if role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
        if message.name:
            out["name"] = message.name
    return out


def _typed(message: dict[str, Any], index: int) -> ChatMessage:
    """The typed message (agent.messages) the engine renders; a 400 naming it if the
    client's is not a valid one."""
    try:
        return message_from_dict(message, f"message {index}")
    except MessageError as exc:
        raise bad_request(str(exc), f"messages.{index}") from None


def _tool_choice(
    request: ChatCompletionRequest, raw_tools: list[dict[str, Any]]
) -> tuple[Any, str | None, dict[str, Any] | None]:
    """(mode, tool name, call schema) of the request."""
    choice = request.tool_choice
    if not raw_tools:
        if choice not in (None, "none", "auto"):
            raise bad_request("tool_choice needs tools", "tool_choice")
        return "none", None, None
    from tools import ToolRegistry

    registry = ToolRegistry()
    try:
        registry.add_definitions(raw_tools)
    except UserError as exc:
        raise bad_request(f"invalid tool definition: {exc}", "tools", "invalid_tool") from None
    if choice is None:
        choice = "auto"
    if choice == "none":
        return "none", None, None
    if isinstance(choice, NamedToolChoice):
        name = choice.function.name
        if name not in registry:
            raise bad_request(
                f"tool_choice names '{name}', which is not among the tools "
                f"({', '.join(registry.names())})",
                "tool_choice",
            )
        return "required", name, registry.call_schema(name)
    return choice, None, registry.call_schema()


def _answer(request: ChatCompletionRequest) -> tuple[Any, Any]:
    """(OutputSpec or None, its JSON Schema) of `response_format` or of vLLM's
    `structured_outputs` (a regex, grammar or choice has no JSON Schema: None)."""
    fmt = request.response_format
    if request.structured_outputs is not None:
        if isinstance(fmt, (JsonObjectFormat, JsonSchemaResponseFormat)):
            raise bad_request(
                "pass either response_format or structured_outputs, not both",
                "structured_outputs",
            )
        return _structured_outputs(request)
    if isinstance(fmt, JsonObjectFormat):
        schema: Any = {"type": "object"}
    elif isinstance(fmt, JsonSchemaResponseFormat):
        schema = fmt.json_schema.json_schema
    else:
        return None, None
    from agent.constrained.output_types import resolve_output_type

    try:
        return resolve_output_type(schema), schema
    except UserError as exc:
        raise bad_request(str(exc), "response_format", "invalid_schema") from None


def _structured_outputs(request: ChatCompletionRequest) -> tuple[Any, Any]:
    from agent.constrained.output_types import Regex, cfg_spec, choice_spec, resolve_output_type

    wanted = request.structured_outputs
    assert wanted is not None
    given = [name for name in ("json_schema", "regex", "grammar", "choice")
             if getattr(wanted, name) is not None]  # fmt: skip
    if len(given) != 1:
        raise bad_request(
            "structured_outputs takes exactly one of json, regex, grammar and choice",
            "structured_outputs",
        )
    param = "structured_outputs." + ("json" if given[0] == "json_schema" else given[0])
    try:
        if wanted.json_schema is not None:
            return resolve_output_type(wanted.json_schema), wanted.json_schema
        if wanted.regex is not None:
            return resolve_output_type(Regex(wanted.regex)), None
        if wanted.grammar is not None:
            return cfg_spec(wanted.grammar), None
        assert wanted.choice is not None
        return choice_spec(wanted.choice), None
    except UserError as exc:
        raise bad_request(str(exc), param, "invalid_schema") from None


def _system(base: str, tools: bool, answer_schema: Any) -> str:
    parts = [base] if base else []
    if tools and JSON_CALLS_INSTRUCTION not in base:
        parts.append(JSON_CALLS_INSTRUCTION)
    if answer_schema is not None:
        compact = json.dumps(answer_schema, separators=(",", ":"))
        instruction = ANSWER_FORMAT_INSTRUCTION.format(schema=compact)
        if instruction not in base:
            parts.append(instruction)
    return "\n".join(parts)


def _sampling(request: ChatCompletionRequest, default: SamplingParams) -> SamplingParams:
    try:
        return default.with_overrides(
            temperature=request.temperature,
            top_p=request.top_p,
            min_p=request.min_p,
            top_k=request.top_k,
            repetition_penalty=request.repetition_penalty,
            seed=request.seed,
        )
    except UserError as exc:
        raise bad_request(str(exc), "temperature") from None
