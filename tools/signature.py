"""A Python function's signature -> a JSON Schema for its arguments, and back.

Both directions go through one pydantic `TypeAdapter` per parameter: the adapter writes
the parameter's schema (int, float, str, bool, Literal, Enum, Optional/Union, list,
dict, tuple, pydantic models, dataclasses, TypedDicts, `Annotated[..., Field(...)]`)
and, at call time, turns the validated JSON value into what the function expects (an
Enum member, a model instance, a tuple). Annotations pydantic cannot express as JSON
Schema are rejected when the tool is defined, naming the parameter.
"""

from __future__ import annotations

import contextlib
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticUserError

from tools.docstrings import DocInfo
from tools.errors import ToolDefinitionError
from tools.schema_walk import inline_refs, map_schema


class ArgumentConversionError(Exception):
    """A validated argument could not be converted to the parameter's Python type."""


@dataclass(frozen=True)
class _Param:
    name: str
    kind: Any  # inspect._ParameterKind
    adapter: TypeAdapter[Any] | None
    has_default: bool


@dataclass(frozen=True)
class ArgumentBinder:
    """Turns a JSON arguments object into (args, kwargs) for the function."""

    params: tuple[_Param, ...]
    var_keyword: bool

    @property
    def required(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if not p.has_default)

    def bind(self, arguments: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        known = set()
        gap: str | None = None  # a positional-only parameter left to its default
        for p in self.params:
            known.add(p.name)
            positional = p.kind is inspect.Parameter.POSITIONAL_ONLY
            if p.name not in arguments:
                if positional and gap is None:
                    gap = p.name
                continue
            if positional and gap is not None:
                raise ArgumentConversionError(
                    f"argument '{p.name}' needs '{gap}' too (positional-only parameters)"
                )
            value = arguments[p.name]
            if p.adapter is not None:
                try:
                    value = p.adapter.validate_python(value)
                except ValidationError as exc:
                    first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
                    raise ArgumentConversionError(
                        f"argument '{p.name}': {first.get('msg', exc)}"
                    ) from None
            if positional:
                args.append(value)
            else:
                kwargs[p.name] = value
        if self.var_keyword:
            kwargs.update({k: v for k, v in arguments.items() if k not in known})
        return args, kwargs


def _type_hints(func: Callable[..., Any], tool_name: str) -> dict[str, Any]:
    """Resolved parameter annotations (the return annotation is not needed, and a
    function-local return type must not make a tool undefinable)."""
    annotations = getattr(func, "__annotations__", None)
    if not isinstance(annotations, dict):
        try:
            return typing.get_type_hints(func, include_extras=True)
        except Exception as exc:
            raise ToolDefinitionError(
                tool_name, f"cannot resolve its type annotations ({type(exc).__name__}: {exc})"
            ) from None
    namespace = getattr(inspect.unwrap(func), "__globals__", {})
    params = {k: v for k, v in annotations.items() if k != "return"}
    try:
        return _resolve(params, namespace)
    except Exception:
        pass
    for name, annotation in params.items():  # find the parameter at fault
        try:
            _resolve({name: annotation}, namespace)
        except Exception as exc:
            raise ToolDefinitionError(
                tool_name,
                f"cannot resolve its annotation {annotation!r} ({type(exc).__name__}: {exc})",
                name,
            ) from None
    return _resolve(params, namespace)


def _resolve(annotations: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    """typing.get_type_hints for an annotations dict, in the given global namespace."""
    probe = types.FunctionType((lambda: None).__code__, namespace)
    probe.__annotations__ = annotations
    return typing.get_type_hints(probe, include_extras=True)


def _annotated_description(annotation: Any) -> str | None:
    """`Annotated[str, "the city"]` documents a parameter in place."""
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, str):
                return meta
    return None


def _drop_titles(schema: Any) -> Any:
    def drop(node: dict[str, Any], _path: str) -> dict[str, Any]:
        node.pop("title", None)
        return node

    return map_schema(schema, drop)


def analyse_function(
    func: Callable[..., Any],
    tool_name: str,
    doc: DocInfo,
    *,
    need_schema: bool = True,
) -> tuple[dict[str, Any] | None, ArgumentBinder]:
    """(parameters schema, binder) of `func`; the schema is None when not needed.

    With `need_schema=False` (an explicit schema override) annotations that pydantic
    cannot handle are tolerated: those arguments are passed through unconverted.
    """
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        if not need_schema:  # a builtin: pass the arguments through as keywords
            return None, ArgumentBinder((), var_keyword=True)
        raise ToolDefinitionError(tool_name, f"has no inspectable signature: {exc}") from None
    try:
        hints = _type_hints(func, tool_name)
    except ToolDefinitionError:
        if need_schema:
            raise
        hints = {}
    params: list[_Param] = []
    var_keyword = False
    adapters: list[tuple[str, TypeAdapter[Any]]] = []
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            if need_schema:
                raise ToolDefinitionError(
                    tool_name, "*args cannot be filled from a JSON object; use a list", p.name
                )
            continue
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
            continue
        adapter = None
        if p.name in hints:
            try:
                adapter = TypeAdapter(hints[p.name])
                if need_schema:
                    adapter.json_schema()
            except (PydanticUserError, TypeError, ValueError) as exc:
                if need_schema:
                    first = str(exc).splitlines()[0]
                    raise ToolDefinitionError(
                        tool_name,
                        f"unsupported annotation {_type_name(hints[p.name])} ({first}); use "
                        "JSON-like types (str, int, float, bool, Literal, Enum, list, dict, "
                        "pydantic models) or pass schema=...",
                        p.name,
                    ) from None
                adapter = None
        elif need_schema:
            raise ToolDefinitionError(
                tool_name,
                f"has no type annotation; annotate it (for example `{p.name}: str`) so its "
                "JSON Schema can be derived",
                p.name,
            )
        params.append(_Param(p.name, p.kind, adapter, p.default is not inspect.Parameter.empty))
        if adapter is not None:
            adapters.append((p.name, adapter))
    binder = ArgumentBinder(tuple(params), var_keyword)
    if not need_schema:
        return None, binder
    return _parameters_schema(sig, hints, adapters, doc, var_keyword, tool_name), binder


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


def _parameters_schema(
    sig: inspect.Signature,
    hints: dict[str, Any],
    adapters: list[tuple[str, TypeAdapter[Any]]],
    doc: DocInfo,
    var_keyword: bool,
    tool_name: str,
) -> dict[str, Any]:
    try:
        keyed, top = TypeAdapter.json_schemas(
            [(name, "validation", adapter) for name, adapter in adapters],
            ref_template="#/$defs/{model}",
        )
    except PydanticUserError as exc:
        raise ToolDefinitionError(tool_name, f"cannot derive a JSON Schema: {exc}") from None
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, adapter in adapters:
        prop = dict(keyed[(name, "validation")])
        description = doc.params.get(name) or _annotated_description(hints[name])
        if description:
            prop["description"] = description
        default = sig.parameters[name].default
        if default is inspect.Parameter.empty:
            required.append(name)
        else:
            # A default that JSON cannot show is still a valid default: just not listed.
            with contextlib.suppress(Exception):
                prop["default"] = adapter.dump_python(default, mode="json")
        properties[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not var_keyword:
        schema["additionalProperties"] = False
    if top.get("$defs"):
        schema["$defs"] = top["$defs"]
    return inline_refs(_drop_titles(schema))
