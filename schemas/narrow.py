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

Where llguidance refuses a keyword, `rewrite_refused` narrows it away when a sound
rewrite exists, so the fast engine still serves the schema (the regex engine is the
fallback for the rest):

* `$ref` beside other keywords becomes `allOf: [{"$ref": ...}]` beside them (llguidance
  refuses siblings of recursive references; draft-7 validators ignore such siblings, so
  honouring them only narrows);
* `dependencies` / `dependentRequired` / `dependentSchemas`: the dependent properties are
  always required, the dependent schemas always applied;
* `if`/`then`/`else`: only values that satisfy `if` and `then` (`allOf`);
* `propertyNames` and `min/maxProperties` beside open objects: only the declared
  properties, those whose names pass `propertyNames`;
* `oneOf` that llguidance cannot prove exclusive becomes `anyOf` of branches that each
  exclude the others: branches of disjoint types, or told apart by a required property
  with different `const`/`enum` values, need nothing; otherwise a property another
  branch requires is forbidden in this one (`"properties": {"p": false}`); a branch
  that cannot be separated from another is dropped;
* `not` of a schema that accepts everything (`{}`, `true`, annotations only) becomes
  `false`; `not` of a `type` becomes the other types (`integer` and `number` leave
  together); `not` of a schema with `required` keeps only objects that lack one of
  those properties (exact when `required` is all it says); `not` of an `anyOf` of such
  schemas is the conjunction of their negations;
* a `type` beside references whose targets already declare it (`{"type": "object",
  "anyOf": [{"$ref": ...}, ...]}`) is dropped (exact: it says nothing more), since
  llguidance cannot intersect it with a recursive definition;
* a declared property whose schema is the same as that of every `patternProperties`
  pattern matching its name is left to the patterns (exact: the value must satisfy
  both, and both say the same), since llguidance intersects the two and cannot
  intersect recursive definitions;
* with `drop_unique=True` (tried last, after the regex engine), `uniqueItems` arrays hold
  at most one item.

Every rewrite only ever removes valid instances, never adds one. Under `not` and `if`
narrowing would do the opposite (a narrower `not` accepts more), so those subtrees are
left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.formats import format_content_regex
from schemas.walk import map_schema

NUMBER_LIMIT = 10**15
_NUMERIC = {"number", "integer"}
_NAMED = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
          "dependencies"}  # fmt: skip
_INDEXED = {"allOf", "anyOf", "oneOf", "prefixItems", "items"}
_NEGATING = {"not", "if"}
# Nodes that get no bounds of their own: values fixed by enum/const, and nodes whose
# numbers come from elsewhere (a reference or combined branches, which get their own).
_NOT_A_NUMBER_LEAF = {"enum", "const", "$ref", "allOf", "anyOf", "oneOf"}


def narrow_for_llguidance(schema: Any) -> Any:
    """A copy of `schema` with formats as patterns and numbers bounded."""
    if not isinstance(schema, dict):
        return schema
    return map_schema(schema, _narrow_node, unknown=True)


def rewrite_refused(schema: Any, drop_unique: bool = False) -> Any:
    """A narrower copy of `schema` without the keywords llguidance refuses, where a sound
    rewrite exists (see the module docstring); `schema` itself when none applies."""
    if not isinstance(schema, dict):
        return schema

    root = schema

    def rewrite(node: dict[str, Any], path: str) -> dict[str, Any]:
        if _under_negation(path):
            return node
        _exclusive_one_of(node, root)
        _negation(node)
        _redundant_type(node, root)
        _pattern_duplicates(node)
        _ref_siblings(node)
        _dependencies(node)
        _conditional(node)
        _closed_names(node)
        if drop_unique and node.get("uniqueItems") is True:
            del node["uniqueItems"]
            node["maxItems"] = min(1, node.get("maxItems", 1))
        return node

    for _ in range(3):  # rewrites can expose more (an `if` moved into `allOf`)
        rewritten = map_schema(schema, rewrite, unknown=True)
        if rewritten == schema:
            break
        schema = rewritten
    return schema


_SIBLINGS_KEPT = {"$ref", "$id", "$schema", "$defs", "definitions", "$anchor", "$comment",
                  "title", "description", "default", "examples"}  # fmt: skip


def _ref_siblings(node: dict[str, Any]) -> None:
    if "$ref" not in node or all(k in _SIBLINGS_KEPT for k in node):
        return
    ref = {"$ref": node.pop("$ref")}
    node["allOf"] = [ref, *node.get("allOf", [])]


def _dependencies(node: dict[str, Any]) -> None:
    required = list(node.get("required", [])) if isinstance(node.get("required"), list) else []
    schemas: list[Any] = []
    for key in ("dependencies", "dependentRequired", "dependentSchemas"):
        deps = node.get(key)
        if not isinstance(deps, dict):
            continue
        for value in deps.values():
            if isinstance(value, list):
                required += [v for v in value if isinstance(v, str) and v not in required]
            elif isinstance(value, (dict, bool)):
                schemas.append(value)
        del node[key]
    if required:
        node["required"] = required
    if schemas:
        node["allOf"] = [*node.get("allOf", []), *schemas]


_ANNOTATIONS = frozenset({"title", "description", "$comment", "examples", "default"})


def _negation(node: dict[str, Any]) -> None:
    if "not" not in node:
        return
    negated = _negated(node["not"])
    if negated is None:
        return  # the regex engine may still serve it
    del node["not"]
    if negated:
        node["allOf"] = [*node.get("allOf", []), *negated]


def _negated(schema: Any) -> list[Any] | None:
    """Schemas whose conjunction accepts only values `schema` rejects (a subset of
    `not schema`), or None where no such rewrite is known."""
    if schema is False:
        return []
    if schema is True:
        return [False]
    if not isinstance(schema, dict):
        return None
    keys = schema.keys() - _ANNOTATIONS
    if not keys:
        return [False]
    required = schema.get("required")
    if isinstance(required, list) and required and all(isinstance(r, str) for r in required):
        # An object lacking any one of them fails `schema`, whatever else it says.
        lacking = [{"properties": {name: False}} for name in dict.fromkeys(required)]
        one = lacking[0] if len(lacking) == 1 else {"anyOf": lacking}
        return [{"type": "object", **one}]
    if keys == {"type"}:
        types = _types(schema)
        if types is None:
            return None
        if types & _NUMERIC:
            types |= _NUMERIC
        others = sorted(_JSON_TYPES - types)
        return [{"type": others}] if others else [False]
    if keys == {"anyOf"} and isinstance(schema["anyOf"], list):
        parts = [_negated(branch) for branch in schema["anyOf"]]
        if any(part is None for part in parts):
            return None
        return [s for part in parts if part is not None for s in part]
    return None


_APPLICATORS = ("anyOf", "oneOf", "allOf")


def _redundant_type(node: dict[str, Any], root: Any) -> None:
    types = _types(node)
    if types is None:
        return
    rest = node.keys() - _ANNOTATIONS - {"type", "$ref", *_APPLICATORS}
    if rest:
        return
    if "number" in types:  # every integer is a number (not the other way round)
        types = types | {"integer"}

    def implies(branch: Any) -> bool:
        target = _resolve(branch, root)
        if not isinstance(target, dict):
            return False
        declared = _types(target)
        return declared is not None and declared <= types

    ref_only = True
    implied = False
    if "$ref" in node:
        implied = implies({"$ref": node["$ref"]})
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if branches is None:
            continue
        if not isinstance(branches, list) or not branches:
            return
        if not all(implies(b) for b in branches):
            ref_only = False
        else:
            implied = True
    branches = node.get("allOf")
    if isinstance(branches, list) and any(implies(b) for b in branches):
        implied = True
    if implied and ref_only:
        del node["type"]


def _pattern_duplicates(node: dict[str, Any]) -> None:
    properties, patterns = node.get("properties"), node.get("patternProperties")
    if not isinstance(properties, dict) or not isinstance(patterns, dict) or not patterns:
        return
    import re

    compiled = []
    for pattern, schema in patterns.items():
        try:
            compiled.append((re.compile(pattern), _without_annotations(schema)))
        except (re.error, TypeError):
            return  # a pattern Python cannot read: no claim about what it matches
    kept = {}
    for name, schema in properties.items():
        matching = [s for regex, s in compiled if regex.search(name)]
        if matching and all(s == _without_annotations(schema) for s in matching):
            continue
        kept[name] = schema
    if len(kept) < len(properties):
        node["properties"] = kept


def _without_annotations(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    return schema


def _conditional(node: dict[str, Any]) -> None:
    if "if" not in node:
        return
    condition = node.pop("if")
    then = node.pop("then", None)
    node.pop("else", None)
    node["allOf"] = [*node.get("allOf", []), condition, *([then] if then is not None else [])]


def _closed_names(node: dict[str, Any]) -> None:
    """`propertyNames` / `min/maxProperties` on an object: only declared properties."""
    names = node.get("propertyNames")
    counted = "minProperties" in node or "maxProperties" in node
    if names is None and not counted:
        return
    if "patternProperties" in node or not isinstance(node.get("properties", {}), dict):
        return
    properties = dict(node.get("properties", {}))
    if names is not None:
        import jsonschema

        required = set(node.get("required", []))
        for name in list(properties):
            if not jsonschema.Draft202012Validator(names).is_valid(name):
                if name in required:
                    return  # a required property the names forbid: no sound rewrite
                del properties[name]
        node.pop("propertyNames")
        node["properties"] = properties
    node["additionalProperties"] = False


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
    if _may_be_number(node) and not _NOT_A_NUMBER_LEAF & node.keys():
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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value * sign >= NUMBER_LIMIT:
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


# ------------------------------------------------------------------ oneOf
_JSON_TYPES = frozenset({"null", "boolean", "object", "array", "number", "string"})


@dataclass(frozen=True)
class _Branch:
    types: frozenset[str] | None  # None: any type
    required: frozenset[str]
    fixed: dict[str, tuple[Any, ...]]  # property -> the only values it may take


def _exclusive_one_of(node: dict[str, Any], root: Any) -> None:
    branches = node.get("oneOf")
    if not isinstance(branches, list) or not branches:
        return
    infos = [_branch(b, root) for b in branches]
    outer = node.get("required")
    outer_required = {r for r in outer if isinstance(r, str)} if isinstance(outer, list) else set()
    kept: list[Any] = []
    for i, branch in enumerate(branches):
        forbidden: list[str] = []
        needs_object = False
        for j, other in enumerate(infos):
            if j == i:
                continue
            how = _separate(infos[i], other, outer_required)
            if how is None:
                break
            if isinstance(how, tuple):  # not "disjoint": (property to forbid, object only)
                prop, object_only = how
                forbidden.append(prop)
                needs_object = needs_object or object_only
        else:
            if not forbidden:
                kept.append(branch)
                continue
            kept.append(_forbidding(branch, root, forbidden, needs_object))
    if not kept:
        return  # no sound rewrite: the regex engine may still serve it
    del node["oneOf"]
    if "anyOf" in node:
        node["allOf"] = [*node.get("allOf", []), {"anyOf": kept}]
    else:
        node["anyOf"] = kept


def _forbidding(branch: Any, root: Any, forbidden: list[str], needs_object: bool) -> Any:
    """`branch` with the `forbidden` properties absent (and only objects, if asked).

    A branch that only references a plain object schema gets a copy of that schema
    with the properties set to `false`, not `allOf: [$ref, ...]`: llguidance cannot
    intersect a recursive definition with anything, and the copy says the same."""
    witness: dict[str, Any] = {"properties": dict.fromkeys(forbidden, False)}
    if needs_object:
        witness["type"] = "object"
    target = _resolve(branch, root)
    if (
        target is not branch
        and isinstance(target, dict)
        and not {"$ref", "$id", "id"} & target.keys()
        and isinstance(target.get("properties", {}), dict)
        and (not needs_object or target.get("type") == "object")
    ):
        return {**target, "properties": {**target.get("properties", {}), **witness["properties"]}}
    return {"allOf": [branch, witness]}


def _separate(
    mine: _Branch, other: _Branch, outer_required: set[str]
) -> str | tuple[str, bool] | None:
    """How a value of `mine` is kept from matching `other`: "disjoint" (it never can),
    (property to forbid, whether values must also be objects), or None (no way)."""
    if mine.types is not None and other.types is not None and not (mine.types & other.types):
        return "disjoint"
    objects = frozenset({"object"})
    only_objects = mine.types == objects or other.types == objects
    for prop, values in mine.fixed.items():
        theirs = other.fixed.get(prop)
        disjoint = theirs is not None and not any(_json_equal(v, w) for v in values for w in theirs)
        if disjoint and prop in mine.required and only_objects:
            return "disjoint"
    candidates = sorted(other.required - mine.required - outer_required)
    if not candidates:
        return None
    return candidates[0], not only_objects


def _branch(schema: Any, root: Any) -> _Branch:
    """What a branch says for sure. A `$ref` beside other keywords says nothing: draft-7
    validators ignore such siblings."""
    node = _resolve(schema, root)
    if not isinstance(node, dict) or "$ref" in node:
        return _Branch(None, frozenset(), {})
    mine = _own_branch(node, root)
    for part in node.get("allOf", []) if isinstance(node.get("allOf"), list) else []:
        other = _branch(part, root)  # every conjunct holds: what each says for sure adds up
        types = (
            mine.types
            if other.types is None
            else (other.types if mine.types is None else mine.types & other.types)
        )
        mine = _Branch(types, mine.required | other.required, {**other.fixed, **mine.fixed})
    return mine


def _own_branch(node: dict[str, Any], root: Any) -> _Branch:
    kinds = _types(node)
    types: frozenset[str] | None = None
    if kinds is not None:
        types = frozenset("number" if t == "integer" else t for t in kinds) & _JSON_TYPES
    elif "const" in node:
        types = frozenset({_json_type(node["const"])})
    elif isinstance(node.get("enum"), list):
        types = frozenset(_json_type(v) for v in node["enum"])
    required = node.get("required", [])
    if not isinstance(required, list):
        required = []
    fixed: dict[str, tuple[Any, ...]] = {}
    properties = node.get("properties")
    for prop, sub in (properties if isinstance(properties, dict) else {}).items():
        sub = _resolve(sub, root)
        if not isinstance(sub, dict) or "$ref" in sub:
            continue
        if "const" in sub:
            fixed[prop] = (sub["const"],)
        elif isinstance(sub.get("enum"), list):
            fixed[prop] = tuple(sub["enum"])
    return _Branch(types, frozenset(r for r in required if isinstance(r, str)), fixed)


def _resolve(schema: Any, root: Any, hops: int = 8) -> Any:
    """Follow same-document `$ref`s of a node that is only a reference."""
    while hops and isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if not ref.startswith("#") or len(schema) > 1:
            return schema
        target: Any = root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                return schema
        schema, hops = target, hops - 1
    return schema


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _json_equal(a: Any, b: Any) -> bool:
    return _json_type(a) == _json_type(b) and a == b
