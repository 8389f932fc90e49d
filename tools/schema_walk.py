"""Structural rewrites of JSON Schemas that know which keywords hold subschemas.

A naive recursive `dict` walk would confuse a property *named* "description" or "title"
with the annotation keyword of the same name; these helpers only descend through
keywords whose values are schemas, so property names are never touched.
"""

from __future__ import annotations

import copy
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

# Keywords that only document a schema: dropping them never changes which values validate.
ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly",
     "writeOnly"}
)  # fmt: skip


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


def strip_annotations(schema: Any, keep: frozenset[str] = frozenset()) -> Any:
    """`schema` without annotation keywords (descriptions, titles, defaults, examples)."""

    def drop(node: dict[str, Any], _path: str) -> dict[str, Any]:
        for key in ANNOTATIONS - keep:
            node.pop(key, None)
        return node

    return map_schema(schema, drop)


def has_local_refs(schema: Any) -> bool:
    """Whether any `$ref` in `schema` is a same-document reference ("#...")."""
    found = False

    def look(node: dict[str, Any], _path: str) -> dict[str, Any]:
        nonlocal found
        ref = node.get("$ref")
        found = found or (isinstance(ref, str) and ref.startswith("#"))
        return node

    map_schema(schema, look)
    return found


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace `#/$defs/X` references by copies of their targets where that terminates.

    Small models read a tool's parameters more reliably when an enum or a nested model
    is written in place than behind a `$ref`. Recursive definitions stay as references
    (and `$defs` is kept for them); everything else is inlined and `$defs` dropped.
    """
    defs = schema.get("$defs")
    if not isinstance(defs, dict) or not defs:
        return schema
    recursive: set[str] = set()

    def expand(node: Any, stack: tuple[str, ...]) -> Any:
        def visit(n: dict[str, Any], _path: str) -> dict[str, Any]:
            ref = n.get("$ref")
            if not (isinstance(ref, str) and ref.startswith("#/$defs/")):
                return n
            name = ref[len("#/$defs/") :].replace("~1", "/").replace("~0", "~")
            if name not in defs or "/" in ref[len("#/$defs/") :]:
                return n
            if name in stack:
                recursive.add(name)
                return n
            target = expand(copy.deepcopy(defs[name]), (*stack, name))
            siblings = {k: v for k, v in n.items() if k != "$ref"}
            if not isinstance(target, dict):
                return n
            clash = [k for k, v in siblings.items() if k in target and target[k] != v]
            if any(k not in ANNOTATIONS for k in clash):
                return {"allOf": [target], **siblings}
            return {**target, **siblings}

        return map_schema(node, visit)

    body = {k: v for k, v in schema.items() if k != "$defs"}
    result = expand(body, ())
    if recursive:
        # Kept references may lead to any definition: keep them all (expanded alike).
        result["$defs"] = {name: expand(d, (name,)) for name, d in defs.items()}
    return result
