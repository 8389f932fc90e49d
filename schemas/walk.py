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
# Keywords whose values are data or annotations, never schemas.
_DATA = frozenset(
    {"const", "enum", "default", "examples", "required", "type", "$ref", "$id", "$schema",
     "$anchor", "$dynamicRef", "$dynamicAnchor", "$comment", "title", "description",
     "format", "pattern", "dependentRequired", "x-guidance"}
)  # fmt: skip
_KNOWN = frozenset(_SINGLE) | frozenset(_LIST) | frozenset(_MAP) | {"items", "dependencies"}


def map_schema(
    schema: Any,
    fn: Callable[[dict[str, Any], str], dict[str, Any]],
    path: str = "#",
    unknown: bool = False,
) -> Any:
    """Rebuild `schema` bottom-up, applying `fn(node, path)` to every schema object.

    `fn` receives a shallow copy whose subschemas are already rewritten and returns the
    node to use (it may mutate and return its argument). With `unknown`, objects under
    keys that are not keywords are walked too, since a `$ref` may point anywhere in a
    document (`#/components/schemas/X`); keywords that hold data are never entered.
    """
    if not isinstance(schema, dict):
        return schema
    node = dict(schema)
    if unknown:
        for key, value in schema.items():
            if key not in _KNOWN and key not in _DATA and isinstance(value, dict):
                node[key] = map_schema(value, fn, f"{path}/{_escape(key)}", unknown)
    for key in _SINGLE:
        if isinstance(node.get(key), dict):
            node[key] = map_schema(node[key], fn, f"{path}/{key}", unknown)
    for key in _LIST:
        if isinstance(node.get(key), list):
            node[key] = [
                map_schema(s, fn, f"{path}/{key}/{i}", unknown) for i, s in enumerate(node[key])
            ]
    for key in _MAP:
        if isinstance(node.get(key), dict):
            node[key] = {
                name: map_schema(s, fn, f"{path}/{key}/{_escape(name)}", unknown)
                for name, s in node[key].items()
            }
    items = node.get("items")
    if isinstance(items, dict):
        node["items"] = map_schema(items, fn, f"{path}/items", unknown)
    elif isinstance(items, list):
        node["items"] = [
            map_schema(s, fn, f"{path}/items/{i}", unknown) for i, s in enumerate(items)
        ]
    deps = node.get("dependencies")
    if isinstance(deps, dict):
        node["dependencies"] = {
            k: map_schema(v, fn, f"{path}/dependencies/{_escape(k)}", unknown)
            if isinstance(v, dict)
            else v
            for k, v in deps.items()
        }
    return fn(node, path)


def _escape(token: str) -> str:
    """JSON Pointer escaping of one reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")
