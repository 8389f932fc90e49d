"""Tool definitions written by others: OpenAI function format and BFCL format.

OpenAI: `{"type": "function", "function": {"name", "description", "parameters"}}` (or the
bare inner object). BFCL (Berkeley Function Calling Leaderboard) uses the bare object
with its own type names (`dict`, `float`, `any`, `tuple`, and Java/JavaScript names
such as `HashMap`, `long`, `String`); they are mapped to JSON Schema types, as BFCL's
own harness does before it hands definitions to function-calling models. Everything is
checked against the JSON Schema meta-schema, so a definition that loads also compiles.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from schemas.compiler import check_schema
from schemas.errors import SchemaCompileError
from tools.errors import ToolDefinitionError
from tools.schema_walk import map_schema

# BFCL (and Java/JavaScript) type names -> JSON Schema type; None = any JSON value.
_TYPE_NAMES: dict[str, str | None] = {
    "string": "string",
    "str": "string",
    "char": "string",
    "character": "string",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "bigint": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "set": "array",
    "arraylist": "array",
    "queue": "array",
    "stack": "array",
    "object": "object",
    "dict": "object",
    "map": "object",
    "hashmap": "object",
    "hashtable": "object",
    "null": "null",
    "none": "null",
    "any": None,
    "": None,
}
_JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
# Keys BFCL adds that are not JSON Schema: `optional` duplicates `required`.
_NON_SCHEMA_KEYS = ("optional",)
_NORMALIZED: dict[str, dict[str, Any]] = {}  # parameters JSON -> normalized schema
_CACHE_SIZE = 4096


def map_type_name(name: Any) -> str | None:
    """A BFCL/Java/JS type name as a JSON Schema type (None: any value); KeyError if unknown."""
    if not isinstance(name, str):
        raise KeyError(name)
    if name in _JSON_TYPES:
        return name
    return _TYPE_NAMES[name.strip().lower()]


def _matches(value: Any, json_type: str) -> bool:
    """Whether a JSON value is of a JSON Schema type (1.0 is an integer, True is not)."""
    if isinstance(value, bool):
        return json_type == "boolean"
    if json_type == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if json_type == "number":
        return isinstance(value, (int, float))
    python = {"string": str, "boolean": bool, "array": list, "object": dict}
    return isinstance(value, python[json_type]) if json_type in python else value is None


def normalize_parameters(parameters: Any, tool_name: str) -> dict[str, Any]:
    """A definition's `parameters` as a strict JSON Schema object schema.

    Key order is kept as written: the order of `properties` is the order in which the
    prompt lists the parameters and the call grammar asks for them, and the author's
    order (say, `start_location` before `end_location`) is the one a model expects.
    Results are memoised by content, order included: benchmark suites load the same
    definitions once per test case, and the meta-schema check costs milliseconds.
    """
    try:
        key = json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError):
        raise ToolDefinitionError(tool_name, "'parameters' is not JSON data") from None
    cached = _NORMALIZED.get(key)
    if cached is None:
        cached = _normalize(json.loads(key), tool_name)
        if len(_NORMALIZED) >= _CACHE_SIZE:
            _NORMALIZED.clear()
        _NORMALIZED[key] = cached
    return copy.deepcopy(cached)


def _normalize(parameters: Any, tool_name: str) -> dict[str, Any]:
    if parameters is None:
        return {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise ToolDefinitionError(
            tool_name, f"'parameters' must be a JSON object, not {type(parameters).__name__}"
        )

    def fix(node: dict[str, Any], path: str) -> dict[str, Any]:
        for key in _NON_SCHEMA_KEYS:
            node.pop(key, None)
        if "type" in node:
            raw = node["type"]
            names = raw if isinstance(raw, list) else [raw]
            mapped: list[str] = []
            for name in names:
                try:
                    json_type = map_type_name(name)
                except KeyError:
                    raise ToolDefinitionError(
                        tool_name,
                        f"unknown type name {name!r}; expected a JSON Schema type or a BFCL "
                        "type name (dict, float, tuple, any, ...)",
                        _param_path(path),
                    ) from None
                if json_type is None:  # `any` anywhere in a union: no type constraint
                    mapped = []
                    break
                if json_type not in mapped:
                    mapped.append(json_type)
            if not mapped:
                del node["type"]
            else:
                node["type"] = mapped[0] if len(mapped) == 1 else mapped
        # BFCL sometimes lists enum values of another type than declared (string
        # choices such as "dontcare" on an integer parameter): the enum is what the
        # model may answer, so it wins over the type.
        if isinstance(node.get("enum"), list) and "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            if not all(any(_matches(v, t) for t in types) for v in node["enum"]):
                del node["type"]
        return node

    fixed = map_schema(parameters, fix)
    if fixed.get("type", "object") != "object":
        raise ToolDefinitionError(
            tool_name, f"'parameters' must describe an object, not type {fixed.get('type')!r}"
        )
    fixed.setdefault("type", "object")
    try:
        check_schema(fixed)
    except SchemaCompileError as exc:
        raise ToolDefinitionError(tool_name, f"invalid parameters schema: {exc}") from None
    return fixed


def _param_path(path: str) -> str:
    """'#/properties/a/items/properties/b' -> 'a.items.b' (for error messages)."""
    parts = [p for p in path.lstrip("#").split("/") if p and p != "properties"]
    return ".".join(parts) or "(parameters)"


def parse_definition(definition: Any) -> tuple[str, str, dict[str, Any]]:
    """(name, description, parameters) of an OpenAI- or BFCL-format definition."""
    if not isinstance(definition, dict):
        raise ToolDefinitionError(
            "?", f"a tool definition must be a JSON object, not {type(definition).__name__}"
        )
    body = definition
    if definition.get("type") == "function" and isinstance(definition.get("function"), dict):
        body = definition["function"]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        keys = ", ".join(sorted(map(str, body))) or "none"
        raise ToolDefinitionError(
            "?", f"a tool definition needs a non-empty string 'name' (keys present: {keys})"
        )
    description = body.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise ToolDefinitionError(name, "'description' must be a string")
    return name, description, normalize_parameters(body.get("parameters"), name)
