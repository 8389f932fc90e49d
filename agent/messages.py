"""Chat messages as typed objects, with one serializer to OpenAI's chat shape and back.

The agent loop, the session store, the engines and the server hold a conversation as
these frozen dataclasses, so a field cannot be misspelled or forgotten on the way.
`to_dict()` gives the OpenAI chat dict (what chat templates, servers and the session
rows are made of); `message_from_dict` is the only way back, and it checks the dict,
since history comes from disk, from HTTP clients and from user code: a bad one is a
`MessageError` naming the message and the field, never a `KeyError` deep in a render.

An assistant turn's `content` is the text as the engine wants to see it again: for a
local model, the exact tokens it generated (call blocks and `<think>` included, so the
next prompt extends the prompt cache); for a remote one, the visible text, with its
calls in `tool_calls`. Reasoning is therefore not a separate field.

Low in the layers: this module imports only the errors layer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

from agent.errors import UserError
from agent.limits import loads as bounded_loads

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
# Every key `to_dict()` can write: the rest of a session row's metadata is the run's.
MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "tool_call_id", "name", "error"})


class MessageError(UserError):
    """A chat message (from a file, a client or a caller) that is not a valid one."""


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for. `arguments` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, name: str, arguments: dict[str, Any] | None = None) -> ToolCall:
        """A call with a fresh id (for callers that do not get ids from the model)."""
        return cls(f"call_{uuid.uuid4().hex[:12]}", name, dict(arguments or {}))

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> ToolCall:
        """From `{"id", "function": {"name", "arguments": "<json>"}}` (or a bare call),
        leniently: a model's call is executed even when its arguments are broken, and
        the registry reports them as that call's error. (History is read strictly, by
        `message_from_dict`.)"""
        body = data.get("function", data)
        arguments = body.get("arguments", {})
        if isinstance(arguments, str):
            # Unparseable (or oversized, or too deeply nested) text is kept: execution
            # reports it as that call's invalid arguments.
            with suppress(ValueError, UserError):
                arguments = bounded_loads(arguments, "arguments") if arguments.strip() else {}
        return cls(str(data.get("id") or f"call_{uuid.uuid4().hex[:12]}"), body["name"], arguments)

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's shape: the arguments as a JSON string."""
        arguments = json.dumps(self.arguments, ensure_ascii=False)
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": arguments}}  # fmt: skip


@dataclass(frozen=True)
class SystemMessage:
    role: ClassVar[Literal["system"]] = "system"
    content: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class UserMessage:
    role: ClassVar[Literal["user"]] = "user"
    content: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class AssistantMessage:
    """A model step: its text (see the module docstring) and the calls it made, when
    the engine reports them apart from the text (remote and scripted engines)."""

    role: ClassVar[Literal["assistant"]] = "assistant"
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # OpenAI's null content beside calls; "" for a turn that said nothing.
        out: dict[str, Any] = {
            "role": self.role,
            "content": self.content if self.content or not self.tool_calls else None,
        }
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        return out


@dataclass(frozen=True)
class ToolMessage:
    """A tool's result, returned to the model. `error` says why the call failed (the
    model reads `content`, which repeats it); `name` is the tool's, when known."""

    role: ClassVar[Literal["tool"]] = "tool"
    tool_call_id: str
    content: str
    name: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "tool_call_id": self.tool_call_id,
            "content": self.content,
        }
        if self.name:
            out["name"] = self.name
        if self.error is not None:
            out["error"] = self.error
        return out


Message: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolMessage
MESSAGE_TYPES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage)


def message_from_dict(data: object, where: str = "the message") -> Message:
    """The typed message of an OpenAI-style chat dict; a `MessageError` naming `where`
    and the field otherwise. Keys it does not know (`refusal`, ...) are ignored."""
    if not isinstance(data, Mapping):
        raise MessageError(
            f"{where} is not an object ({type(data).__name__}); a message is "
            '{"role": ..., "content": ...}'
        )
    role = data.get("role")
    if role not in ROLES:
        shown = repr(role) if len(repr(role)) <= 40 else repr(role)[:37] + "..."
        raise MessageError(f"{where} has an unknown role {shown}: use one of {', '.join(ROLES)}")
    content = _content(data.get("content"), where)
    if role == "system":
        return SystemMessage(content)
    if role == "user":
        return UserMessage(content)
    if role == "assistant":
        calls = data.get("tool_calls") or []
        if not isinstance(calls, list):
            raise MessageError(f"{where}: tool_calls is not a list")
        return AssistantMessage(
            content, tuple(_tool_call(c, f"{where}, tool call {i}") for i, c in enumerate(calls))
        )
    call_id = data.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise MessageError(
            f"{where} is a tool result without a tool_call_id: give the id of the call it answers"
        )
    name = data.get("name") or ""
    error = data.get("error")
    if not isinstance(name, str):
        raise MessageError(f"{where}: the tool name is not a string")
    if error is not None and not isinstance(error, str):
        raise MessageError(f"{where}: error is not a string")
    return ToolMessage(call_id, content, name, error)


def as_messages(
    items: Iterable[Message | Mapping[str, Any]], where: str = "messages"
) -> list[Message]:
    """Typed messages from typed ones or OpenAI-style dicts (the edge where a caller
    hands in a conversation): each dict is checked by `message_from_dict`."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise MessageError(f"{where} is not a list of messages ({type(items).__name__})")
    return [
        item if isinstance(item, MESSAGE_TYPES) else message_from_dict(item, f"{where}[{i}]")
        for i, item in enumerate(items)
    ]


def _content(value: object, where: str) -> str:
    """Text content: a string, null (an assistant turn of calls only) or OpenAI's list
    of text parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            text = part.get("text") if isinstance(part, Mapping) else None
            if (
                not isinstance(part, Mapping)
                or part.get("type") != "text"
                or not isinstance(text, str)
            ):
                raise MessageError(f"{where}: content has a part that is not text")
            texts.append(text)
        return "".join(texts)
    raise MessageError(f"{where}: content is {type(value).__name__}, not text")


def _tool_call(data: object, where: str) -> ToolCall:
    """A call of OpenAI's shape; the arguments a JSON object (or its JSON text)."""
    function = data.get("function") if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(function, Mapping):
        raise MessageError(f'{where} is not {{"id", "function": {{"name", "arguments"}}}}')
    call_id, name = data.get("id"), function.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise MessageError(f"{where} has no id")
    if not isinstance(name, str) or not name:
        raise MessageError(f"{where} has no function name")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = (
                bounded_loads(arguments, f"the arguments of {where}") if arguments.strip() else {}
            )
        except UserError as exc:  # over a size or depth limit
            raise MessageError(str(exc)) from None
        except ValueError:
            raise MessageError(f"{where} ('{name}'): the arguments are not JSON") from None
    if not isinstance(arguments, dict):
        raise MessageError(
            f"{where} ('{name}'): the arguments are {type(arguments).__name__}, not a JSON object"
        )
    return ToolCall(call_id, name, arguments)
