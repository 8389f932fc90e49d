"""Structural rewrites of JSON Schemas that know which keywords hold subschemas.

A naive recursive `dict` walk would confuse a property *named* "description" or "title"
with the annotation keyword of the same name; these helpers only descend through
keywords whose values are schemas, so property names are never touched.
"""

from __future__ import annotations

import copy
from typing import Any

from schemas.walk import map_schema

# Keywords that only document a schema: dropping them never changes which values validate.
ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly",
     "writeOnly"}
)  # fmt: skip


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
