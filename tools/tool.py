"""`Tool` and the `@tool` decorator.

A Tool is what the model sees (name, description, JSON Schema parameters) plus, when it
has one, the Python function that implements it. Tools built from external definitions
(OpenAI or BFCL format) have no function: they can be listed and compiled into a call
grammar, and calling them yields a "no implementation" error result.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

import jsonschema

from schemas.compiler import check_schema
from schemas.errors import SchemaCompileError
from tools.definitions import parse_definition
from tools.docstrings import parse_docstring
from tools.errors import ToolDefinitionError
from tools.signature import ArgumentBinder, analyse_function

DEFAULT_TIMEOUT = 30.0
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ToolDefinitionError(
            str(name),
            "a tool name must be 1-128 characters of letters, digits, '_', '.', ':' or '-' "
            "(no spaces); pass name=... to choose one",
        )
    return name


def _check_timeout(name: str, timeout: Any) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ToolDefinitionError(
            name, f"timeout must be a positive number of seconds, not {timeout!r}"
        )
    return float(timeout)


@dataclass(eq=False)
class Tool:
    """A callable tool: calling it calls the underlying function unchanged."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any] | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    requires_approval: bool = False
    binder: ArgumentBinder | None = field(default=None, repr=False)
    # Its results are content from outside the user's control (a web page, a file, a
    # retrieved passage, an MCP server's answer), which may carry instructions aimed at
    # the model (prompt injection). Once a conversation has read such content, calls to
    # tools with `side_effects` need approval (see `ToolRegistry.execute_many`).
    untrusted_results: bool = False
    # It changes something outside the conversation (writes, sends, deletes, spends).
    side_effects: bool = False
    _validator: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        self.timeout = _check_timeout(self.name, self.timeout)
        # Checked here, whichever way the tool was made, so that grammars built from
        # tools (`ToolRegistry.call_schema`) need no meta-schema check of their own.
        if not isinstance(self.parameters, dict):
            raise ToolDefinitionError(self.name, "parameters must be a JSON Schema object")
        try:
            check_schema(self.parameters)
        except SchemaCompileError as exc:
            raise ToolDefinitionError(self.name, f"invalid parameters schema: {exc}") from None
        if self.function is not None and self.binder is None:
            _, self.binder = analyse_function(
                self.function, self.name, parse_docstring(None), need_schema=False
            )
        if self.function is not None:
            functools.update_wrapper(self, self.function, updated=())

    # ------------------------------------------------------------------ views
    def openai(self) -> dict[str, Any]:
        """This tool in the OpenAI function-calling format (also what chat templates take)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    @property
    def has_implementation(self) -> bool:
        return self.function is not None

    @property
    def is_async(self) -> bool:
        func = self.function
        while isinstance(func, functools.partial):
            func = func.func
        call = type(func).__call__ if func is not None and not inspect.isroutine(func) else None
        return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.function is None:
            raise TypeError(f"tool '{self.name}' has no implementation (it is a definition)")
        return self.function(*args, **kwargs)

    # ------------------------------------------------------------ validation
    def validation_errors(self, arguments: Any) -> list[str]:
        """Why `arguments` does not fit the parameters schema (empty when it does)."""
        if self._validator is None:
            cls = jsonschema.validators.validator_for(
                self.parameters, default=jsonschema.Draft202012Validator
            )
            self._validator = cls(self.parameters, format_checker=cls.FORMAT_CHECKER)
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
        messages = []
        for err in errors[:3]:
            where = "/".join(str(p) for p in err.path)
            text = _short_message(err)
            messages.append(f"at '{where}': {text}" if where else text)
        if len(errors) > 3:
            messages.append(f"and {len(errors) - 3} more")
        return messages

    # ------------------------------------------------------------ factories
    @classmethod
    def from_function(
        cls,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        schema: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        requires_approval: bool = False,
        untrusted_results: bool = False,
        side_effects: bool = False,
    ) -> Tool:
        """Derive a tool from a (sync or async) function's type hints and docstring."""
        if not callable(func):
            raise ToolDefinitionError(str(name or func), "@tool needs a function")
        tool_name = check_name(name or getattr(func, "__name__", ""))
        doc = parse_docstring(inspect.getdoc(func))
        parameters, binder = analyse_function(func, tool_name, doc, need_schema=schema is None)
        if schema is not None:
            parameters = _override_schema(schema, tool_name, binder)
        assert parameters is not None
        return cls(
            name=tool_name,
            description=doc.description if description is None else description,
            parameters=parameters,
            function=func,
            timeout=timeout,
            requires_approval=requires_approval,
            binder=binder,
            untrusted_results=untrusted_results,
            side_effects=side_effects,
        )

    @classmethod
    def from_definition(
        cls,
        definition: dict[str, Any],
        *,
        function: Callable[..., Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        requires_approval: bool = False,
        untrusted_results: bool = False,
        side_effects: bool = False,
    ) -> Tool:
        """A tool from an OpenAI- or BFCL-format definition (optionally implemented)."""
        name, description, parameters = parse_definition(definition)
        return cls(
            name=name,
            description=description,
            parameters=parameters,
            function=function,
            timeout=timeout,
            requires_approval=requires_approval,
            untrusted_results=untrusted_results,
            side_effects=side_effects,
        )


def _override_schema(schema: Any, tool_name: str, binder: ArgumentBinder) -> dict[str, Any]:
    """An explicit parameters schema, checked against the function it will call."""
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        schema = schema.model_json_schema()
    if not isinstance(schema, dict):
        raise ToolDefinitionError(tool_name, "schema= must be a JSON Schema object (a dict)")
    schema = json.loads(json.dumps(schema))  # a private, JSON-only copy
    if schema.get("type", "object") != "object":
        raise ToolDefinitionError(tool_name, "schema= must describe an object (the arguments)")
    schema.setdefault("type", "object")
    try:
        check_schema(schema)
    except SchemaCompileError as exc:
        raise ToolDefinitionError(tool_name, f"invalid schema=: {exc}") from None
    declared = set(schema.get("properties", {})) | set(schema.get("required", []))
    for p in binder.params:
        if p.name not in declared and p.name in binder.required:
            raise ToolDefinitionError(
                tool_name, "is required by the function but missing from schema=", p.name
            )
    if not binder.var_keyword:
        accepted = {p.name for p in binder.params}
        for key in declared - accepted:
            raise ToolDefinitionError(
                tool_name, "is in schema= but the function does not accept it", key
            )
    return schema


@overload
def tool(func: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    schema: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    requires_approval: bool = False,
    untrusted_results: bool = False,
    side_effects: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    schema: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    requires_approval: bool = False,
    untrusted_results: bool = False,
    side_effects: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function a tool: `@tool` or `@tool(name=..., timeout=..., ...)`.

    The parameters schema comes from the type hints (defaults make a parameter optional)
    and the docstring (Google, NumPy or Sphinx parameter sections); `schema=` replaces
    it. The description is the docstring's text before its sections, unless given.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool.from_function(
            f,
            name=name,
            description=description,
            schema=schema,
            timeout=timeout,
            requires_approval=requires_approval,
            untrusted_results=untrusted_results,
            side_effects=side_effects,
        )

    return wrap(func) if func is not None else wrap


def _short_message(err: Any) -> str:
    """jsonschema's message with the offending value cut short: its messages repr() the
    value first (`'1+1+...' is too long`), so cutting the whole message would drop the
    reason that follows it."""
    text = str(err.message)
    value = repr(err.instance)
    if len(value) > 60 and value in text:
        size = f" ({len(err.instance)} long)" if isinstance(err.instance, (str, list, dict)) else ""
        text = text.replace(value, value[:40] + "..." + size)
    return text if len(text) <= 300 else text[:300] + "..."
