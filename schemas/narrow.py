"""Narrowing a schema to what llguidance generates soundly, before it compiles it.

Two things llguidance would accept but that break the promise "every output validates
with python-jsonschema and parses back":

* `format`: llguidance has its own regexes for formats, and python-jsonschema's format
  checker (the validator every output is checked with) disagrees with some of them. The
  project's own format fragments (`schemas.formats`) are proven subsets of what the
  checker accepts, so each known `format` becomes an anchored `pattern` (next to an
  existing pattern, through `allOf`, which llguidance intersects). Unknown formats are
  annotations in JSON Schema and are dropped.
* unbounded numbers: a grammar lets a model append digits for as long as it likes; a
  5,000-digit integer no longer parses in Python and `1e999` parses as infinity. Numbers
  with no upper (lower) bound get one at 10^15 (-10^15), a narrowing that keeps every
  generated value valid; nodes whose own bounds or `enum`/`const` would conflict are
  left alone.

Every rewrite only ever removes valid instances, never adds one. Under `not` and `if`
narrowing would do the opposite (a narrower `not` accepts more), so those subtrees are
left as they are.
"""

from __future__ import annotations

from typing import Any

from schemas.formats import format_content_regex
from schemas.walk import map_schema

NUMBER_LIMIT = 10**15
_NUMERIC = {"number", "integer"}
_NAMED = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
          "dependencies"}  # fmt: skip
_INDEXED = {"allOf", "anyOf", "oneOf", "prefixItems", "items"}
_NEGATING = {"not", "if"}


def narrow_for_llguidance(schema: Any) -> Any:
    """A copy of `schema` with formats as patterns and numbers bounded."""
    if not isinstance(schema, dict):
        return schema
    return map_schema(schema, _narrow_node)


def _narrow_node(node: dict[str, Any], path: str) -> dict[str, Any]:
    if _under_negation(path):
        return node
    fmt = node.get("format")
    if isinstance(fmt, str):
        del node["format"]
        fragment = format_content_regex(fmt)
        if fragment is not None and _may_be(node, "string"):
            pattern = {"pattern": f"^(?:{fragment})$"}
            if "pattern" in node:
                node["allOf"] = [*node.get("allOf", []), pattern]
            else:
                node.update(pattern)
    if _may_be_number(node) and "enum" not in node and "const" not in node:
        _bound(node, "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", 1)
        _bound(node, "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", -1)
    return node


def _bound(
    node: dict[str, Any], key: str, exclusive: str, other: str, other_ex: str, sign: int
) -> None:
    if key in node or exclusive in node:
        return
    for opposite in (other, other_ex):
        value = node.get(opposite)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and value * sign >= NUMBER_LIMIT:
            return  # a bound at the limit would empty the range
    node[key] = sign * NUMBER_LIMIT


def _types(node: dict[str, Any]) -> set[str] | None:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return None


def _may_be(node: dict[str, Any], kind: str) -> bool:
    types = _types(node)
    return types is None or kind in types


def _may_be_number(node: dict[str, Any]) -> bool:
    types = _types(node)
    return types is None or bool(types & _NUMERIC)


def _under_negation(path: str) -> bool:
    """Whether a `map_schema` path passes through `not` or `if` (as keywords, not names)."""
    parts = path.split("/")[1:]
    i = 0
    while i < len(parts):
        part = parts[i]
        if part in _NEGATING:
            return True
        if part in _NAMED or (part in _INDEXED and i + 1 < len(parts) and parts[i + 1].isdigit()):
            i += 2
        else:
            i += 1
    return False
