"""Walking a JSON Schema by the keywords that hold subschemas.

A naive recursive `dict` walk would confuse a property *named* "description" or "format"
with the keyword of the same name; `map_schema` only descends through keywords whose
values are schemas, so property names are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_SINGLE = (
    "additionalProperties",
    "additionalItems",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def map_schema(schema: Any, fn: Callable[[dict[str, Any], str], dict[str, Any]], path="#") -> Any:
    """Rebuild `schema` bottom-up, applying `fn(node, path)` to every schema object.

    `fn` receives a shallow copy whose subschemas are already rewritten and returns the
    node to use (it may mutate and return its argument).
    """
    if not isinstance(schema, dict):
        return schema
    node = dict(schema)
    for key in _SINGLE:
        if isinstance(node.get(key), dict):
            node[key] = map_schema(node[key], fn, f"{path}/{key}")
    for key in _LIST:
        if isinstance(node.get(key), list):
            node[key] = [map_schema(s, fn, f"{path}/{key}/{i}") for i, s in enumerate(node[key])]
    for key in _MAP:
        if isinstance(node.get(key), dict):
            node[key] = {
                name: map_schema(s, fn, f"{path}/{key}/{_escape(name)}")
                for name, s in node[key].items()
            }
    items = node.get("items")
    if isinstance(items, dict):
        node["items"] = map_schema(items, fn, f"{path}/items")
    elif isinstance(items, list):
        node["items"] = [map_schema(s, fn, f"{path}/items/{i}") for i, s in enumerate(items)]
    deps = node.get("dependencies")
    if isinstance(deps, dict):
        node["dependencies"] = {
            k: map_schema(v, fn, f"{path}/dependencies/{_escape(k)}") if isinstance(v, dict) else v
            for k, v in deps.items()
        }
    return fn(node, path)


def _escape(token: str) -> str:
    """JSON Pointer escaping of one reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")
