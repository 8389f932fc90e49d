"""JSON Schema -> one regex whose every match is a valid instance (compact JSON).

Soundness first: every string the regex accepts parses as JSON and validates against
the schema. Where a keyword cannot be expressed exactly, the compiler narrows what it
generates (a *subset* of the valid instances: fewer optional properties, shorter arrays,
anchored patterns) and never widens it; where even a sound subset is out of reach it
raises `UnsupportedSchemaError` naming the keyword, before anything is generated.

How keywords are handled:
- `$ref` (local pointers, `$defs`/`definitions`, `$id` bases via `referencing`) and
  `allOf` are expanded into a list of conjuncts and merged; recursion is unrolled to a
  bounded depth, after which only optional positions can be dropped.
- `anyOf` is an alternation of the merged branches; `oneOf` keeps only branches that are
  provably exclusive of the others (dropping optional properties that would let a value
  match another branch); `if/then/else` generates `if`+`then` values (and `else` values
  when they provably fail `if`); `not` is supported for the forms that reduce to removing
  types, values or properties.
- Objects emit declared properties in schema order (required ones always), honour
  `additionalProperties: false`, `patternProperties`, `propertyNames`, `min/maxProperties`
  and dependencies by promoting or dropping optional properties.
- Arrays: `items`, `prefixItems` (and draft-4 tuple `items`), `min/maxItems`,
  `contains`, and `uniqueItems` (increasing sequences of enumerable items, else at most
  one item).
- Strings, numbers and formats come from `schemas.patterns`, `schemas.numbers` and
  `schemas.formats`; `enum`/`const` candidates are filtered by validating them against
  the whole schema, so any combination of keywords is exact for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import reduce
from typing import Any, Literal

import jsonschema
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from agent.limits import MAX_SCHEMA_DEPTH, value_depth
from schemas import regex_builder as rb
from schemas.errors import (
    InvalidSchemaError,
    SchemaCompileError,
    UnsatisfiableSchemaError,
    UnsupportedSchemaError,
)

_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
_OBJECT_KW = (
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
    "propertyNames",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
)
_ARRAY_KW = (
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedItems",
)
_STRING_KW = ("minLength", "maxLength", "pattern", "format", "contentEncoding")
_NUMBER_KW = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_FORBID = "x-edge-agent-forbid-properties"  # internal: keys a branch must not emit


@dataclass(frozen=True)
class RegexOptions:
    """Knobs that trade coverage of valid instances for automaton size."""

    whitespace: str = ""  # regex between JSON tokens; "" = compact JSON
    max_ref_depth: int = 3  # how many times one $ref may be unrolled on a path
    any_value_depth: int = 2  # nesting depth of values under an unconstrained schema
    max_items: int = 64  # arrays: cap on counted repetitions (larger counts are narrowed)
    max_string_length: int = 256  # strings: cap on counted length bounds
    max_alternatives: int = 256  # anyOf/oneOf/enum expansion budget
    max_regex_length: int = 2_000_000
    max_seconds: float = 10.0  # expanding one schema (e.g. $refs fanning out at every level)
    # Automaton states the property names alone may take (None: no limit). Each name's
    # characters are states the automaton cannot share, so their sum is a lower bound on
    # its size, known before any value is compiled: a schema whose names alone are over
    # the limit is refused before its regex is built (`schema_to_regex_for_vocab`).
    max_states: int | None = None


@dataclass(frozen=True)
class Node:
    """A subschema and the resolver its `$ref`s are relative to."""

    schema: Any
    resolver: Any


@dataclass
class Merged:
    """The intersection of a list of conjuncts, keyword by keyword."""

    types: set[str] | None = None
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    multiple_of: list[float] = field(default_factory=list)
    min_length: int = 0
    max_length: int | None = None
    patterns: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    # arrays
    prefix: list[list[Node]] = field(default_factory=list)
    items: list[Node] = field(default_factory=list)
    items_forbidden: bool = False  # items beyond the prefix are not allowed
    min_items: int = 0
    max_items: int | None = None
    unique_items: bool = False
    contains: list[Node] = field(default_factory=list)
    min_contains: int = 1
    # objects: one entry per conjunct that constrains objects
    object_parts: list[dict[str, Any]] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    min_properties: int = 0
    max_properties: int | None = None
    property_names: list[Node] = field(default_factory=list)
    dependent_required: dict[str, list[str]] = field(default_factory=dict)
    dependent_schemas: dict[str, list[Node]] = field(default_factory=dict)
    # combinators, kept for the caller to expand
    any_of: list[list[Node]] = field(default_factory=list)
    one_of: list[list[Node]] = field(default_factory=list)
    nots: list[Node] = field(default_factory=list)
    conditionals: list[tuple[Node, Node | None, Node | None]] = field(default_factory=list)
    keywords: set[str] = field(default_factory=set)


class _Unsat(Exception):
    """Internal: this branch admits no value."""


class SchemaTooLarge(UnsupportedSchemaError):
    """Too large for the regex engine in a way narrower options cannot fix (the
    expansion ran out of time, or the property names alone need too many states)."""


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _as_int_bound(value: Any, lower: bool, exclusive: bool) -> int:
    """The tightest integer bound implied by a numeric bound."""
    if lower:
        b = math.floor(value) + 1 if exclusive else math.ceil(value)
    else:
        b = math.ceil(value) - 1 if exclusive else math.floor(value)
    return int(b)


class SchemaCompiler:
    """Compiles one root schema; keeps its registry and validator for enum filtering."""

    def __init__(self, schema: Any, options: RegexOptions | None = None) -> None:
        self.options = options or RegexOptions()
        self.root = schema
        self.validator_cls = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator
        )
        self.draft4 = self.validator_cls in (
            jsonschema.Draft4Validator,
            jsonschema.Draft3Validator,
        )
        resource = Resource.from_contents(schema, default_specification=DRAFT202012)
        self.registry = Registry().with_resource("", resource)
        base = schema.get("$id", "") if isinstance(schema, dict) else ""
        if base:
            self.registry = self.registry.with_resource(base, resource)
        self.root_resolver = self.registry.resolver(base_uri=base)
        self._validators: dict[int, Any] = {}
        self.ws = self.options.whitespace
        self._alternatives = 0
        self._name_states = 0  # lower bound on automaton states: property names so far
        self._deadline = time.monotonic() + self.options.max_seconds

    # ----------------------------------------------------------------- entry
    def compile(self) -> str:
        try:
            regex = self.value([Node(self.root, self.root_resolver)], "#", ())
        except _Unsat:
            regex = None
        if regex is None:
            raise UnsatisfiableSchemaError("no JSON value satisfies this schema")
        if len(regex) > self.options.max_regex_length:
            raise UnsupportedSchemaError(
                "size", "#", f"the grammar would be {len(regex):,} characters long"
            )
        return regex

    # ------------------------------------------------------------- expansion
    def _expand(
        self, nodes: list[Node], path: str, refs: tuple[str, ...]
    ) -> tuple[list[Node], tuple[str, ...]]:
        """Inline `$ref` and `allOf` until only plain conjuncts remain."""
        out: list[Node] = []
        stack = list(reversed(nodes))
        while stack:
            node = stack.pop()
            schema, resolver = node.schema, node.resolver
            is_root = schema is self.root
            if schema is True or schema == {}:
                continue
            if schema is False:
                raise _Unsat
            if not isinstance(schema, dict):
                raise InvalidSchemaError(f"expected a schema object, got {schema!r:.60}", path)
            schema = dict(schema)
            sid = schema.get("$id") if not self.draft4 else schema.get("id")
            if isinstance(sid, str) and sid and not sid.startswith("#") and not is_root:
                with contextlib.suppress(Exception):  # an $id we cannot use: keep the base
                    resolver = resolver.in_subresource(
                        Resource.from_contents(schema, default_specification=DRAFT202012)
                    )
            for key in ("$ref", "$recursiveRef", "$dynamicRef"):
                if key not in schema:
                    continue
                ref = schema.pop(key)
                if not isinstance(ref, str):
                    raise InvalidSchemaError(f"{key} must be a string", path)
                if self.draft4 and key == "$ref":
                    # Draft 4: keywords beside $ref are ignored.
                    schema = {}
                target, target_resolver = self._resolve(ref, resolver, path)
                key_id = f"{id(target)}"
                if refs.count(key_id) >= self.options.max_ref_depth:
                    raise _Unsat  # recursion bound: only optional positions survive
                refs = (*refs, key_id)
                stack.append(Node(target, target_resolver))
            if "allOf" in schema:
                subs = schema.pop("allOf")
                if not isinstance(subs, list):
                    raise InvalidSchemaError("allOf must be a list", path)
                stack.extend(Node(sub, resolver) for sub in reversed(subs))
            out.append(Node(schema, resolver))
        return out, refs

    def _resolve(self, ref: str, resolver: Any, path: str) -> tuple[Any, Any]:
        try:
            resolved = resolver.lookup(ref)
        except Unresolvable:
            if ref.split("#")[0]:
                raise UnsupportedSchemaError(
                    "$ref", path, f"'{ref}' points outside this document"
                ) from None
            raise InvalidSchemaError(f"$ref '{ref}' does not resolve", path) from None
        except Exception as exc:  # malformed pointer
            raise InvalidSchemaError(f"$ref '{ref}' does not resolve: {exc}", path) from None
        return resolved.contents, resolved.resolver

    # ----------------------------------------------------------------- merge
    def _merge(self, conjuncts: list[Node], path: str) -> Merged:
        m = Merged()
        for node in conjuncts:
            s = node.schema
            m.keywords.update(s)
            self._merge_one(m, s, node.resolver, path)
        return m

    def _merge_one(self, m: Merged, s: dict[str, Any], res: Any, path: str) -> None:
        def node(sub: Any) -> Node:
            return Node(sub, res)

        if "type" in s:
            t = s["type"]
            types = {t} if isinstance(t, str) else set(t)
            if "any" in types:
                types = set(_TYPES)
            if "number" in types:
                types.add("integer")
            if not types <= set(_TYPES):
                raise InvalidSchemaError(f"unknown type {sorted(types - set(_TYPES))}", path)
            m.types = types if m.types is None else m.types & types
        values: list[Any] | None = None
        if "const" in s:
            values = [s["const"]]
        if "enum" in s:
            enum = s["enum"]
            if not isinstance(enum, list):
                raise InvalidSchemaError("enum must be a list", path)
            values = (
                enum
                if values is None
                else [v for v in values if any(_json_equal(v, e) for e in enum)]
            )
        if values is not None:
            m.enum = (
                list(values)
                if m.enum is None
                else [v for v in m.enum if any(_json_equal(v, e) for e in values)]
            )
        # numbers (draft 4 spells exclusive bounds as booleans)
        for key in ("minimum", "maximum"):
            if key in s and isinstance(s[key], (int, float)) and not isinstance(s[key], bool):
                excl_key = "exclusiveMinimum" if key == "minimum" else "exclusiveMaximum"
                if s.get(excl_key) is True:
                    self._tighten(m, "exclusive_" + key, s[key])
                else:
                    self._tighten(m, key, s[key])
        for key, attr in (
            ("exclusiveMinimum", "exclusive_minimum"),
            ("exclusiveMaximum", "exclusive_maximum"),
        ):
            value = s.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._tighten(m, attr, value)
        if isinstance(s.get("multipleOf"), (int, float)) and s["multipleOf"] > 0:
            m.multiple_of.append(s["multipleOf"])
        # strings
        if isinstance(s.get("minLength"), int):
            m.min_length = max(m.min_length, s["minLength"])
        if isinstance(s.get("maxLength"), int):
            m.max_length = (
                s["maxLength"] if m.max_length is None else min(m.max_length, s["maxLength"])
            )
        if isinstance(s.get("pattern"), str) and s["pattern"] not in m.patterns:
            m.patterns.append(s["pattern"])
        if isinstance(s.get("format"), str) and s["format"] not in m.formats:
            m.formats.append(s["format"])
        # arrays
        items = s.get("items")
        prefix = s.get("prefixItems")
        if isinstance(items, list):  # draft 4-2019 tuple form
            prefix, items = items, s.get("additionalItems")
        if isinstance(prefix, list):
            for i, sub in enumerate(prefix):
                if i < len(m.prefix):
                    m.prefix[i].append(node(sub))
                else:
                    m.prefix.append([*m.items, node(sub)])
            tail = items
        else:
            tail = items
        if tail is False:
            known = len(prefix) if isinstance(prefix, list) else 0
            m.max_items = known if m.max_items is None else min(m.max_items, known)
        elif tail is not None:
            m.items.append(node(tail))
            for slot in m.prefix[len(prefix) if isinstance(prefix, list) else 0 :]:
                slot.append(node(tail))
        if isinstance(s.get("minItems"), int):
            m.min_items = max(m.min_items, s["minItems"])
        if isinstance(s.get("maxItems"), int):
            m.max_items = s["maxItems"] if m.max_items is None else min(m.max_items, s["maxItems"])
        if s.get("uniqueItems") is True:
            m.unique_items = True
        if "contains" in s:
            m.contains.append(node(s["contains"]))
            if isinstance(s.get("minContains"), int):
                m.min_contains = max(m.min_contains, s["minContains"])
        # objects
        if any(
            k in s
            for k in (
                "properties",
                "additionalProperties",
                "patternProperties",
                "unevaluatedProperties",
            )
        ):
            additional = s.get("additionalProperties", s.get("unevaluatedProperties", True))
            m.object_parts.append(
                {
                    "properties": s.get("properties") or {},
                    "patterns": s.get("patternProperties") or {},
                    "additional": additional,
                    "resolver": res,
                }
            )
        required = s.get("required")
        if isinstance(required, list):
            for key in required:
                if isinstance(key, str) and key not in m.required:
                    m.required.append(key)
        if isinstance(s.get(_FORBID), list):
            m.forbidden.update(s[_FORBID])
        if isinstance(s.get("minProperties"), int):
            m.min_properties = max(m.min_properties, s["minProperties"])
        if isinstance(s.get("maxProperties"), int):
            m.max_properties = (
                s["maxProperties"]
                if m.max_properties is None
                else min(m.max_properties, s["maxProperties"])
            )
        if "propertyNames" in s:
            m.property_names.append(node(s["propertyNames"]))
        deps = dict(s.get("dependencies") or {})
        deps.update(s.get("dependentRequired") or {})
        for key, dep in deps.items():
            if isinstance(dep, list):
                m.dependent_required.setdefault(key, []).extend(dep)
            else:
                m.dependent_schemas.setdefault(key, []).append(node(dep))
        for key, dep in (s.get("dependentSchemas") or {}).items():
            m.dependent_schemas.setdefault(key, []).append(node(dep))
        # combinators
        if isinstance(s.get("anyOf"), list):
            m.any_of.append([node(b) for b in s["anyOf"]])
        if isinstance(s.get("oneOf"), list):
            m.one_of.append([node(b) for b in s["oneOf"]])
        if "not" in s:
            m.nots.append(node(s["not"]))
        if "if" in s:
            then = node(s["then"]) if "then" in s else None
            other = node(s["else"]) if "else" in s else None
            m.conditionals.append((node(s["if"]), then, other))

    @staticmethod
    def _tighten(m: Merged, attr: str, value: float) -> None:
        current = getattr(m, attr)
        if current is None:
            setattr(m, attr, value)
        elif attr in ("minimum", "exclusive_minimum"):
            setattr(m, attr, max(current, value))
        else:
            setattr(m, attr, min(current, value))

    # ---------------------------------------------------------------- values
    def value(self, nodes: list[Node], path: str, refs: tuple[str, ...]) -> str | None:
        """Regex for values satisfying every node; None when there are none."""
        if time.monotonic() > self._deadline:
            raise SchemaTooLarge(
                "size", path, f"expanding the schema took over {self.options.max_seconds:g} s"
            )
        try:
            conjuncts, refs = self._expand(nodes, path, refs)
            regex = self._value(conjuncts, path, refs)
        except _Unsat:
            return None
        if regex is not None and len(regex) > self.options.max_regex_length:
            raise UnsupportedSchemaError(
                "size", path, f"the grammar would be over {len(regex):,} characters long"
            )
        return regex

    def _value(self, conjuncts: list[Node], path: str, refs: tuple[str, ...]) -> str | None:
        m = self._merge(conjuncts, path)
        if m.any_of or m.one_of or m.conditionals or m.nots:
            return self._combinators(conjuncts, m, path, refs)
        return self._typed(conjuncts, m, path, refs)

    def _strip(self, conjuncts: list[Node], keys: tuple[str, ...]) -> list[Node]:
        return [
            Node({k: v for k, v in c.schema.items() if k not in keys}, c.resolver)
            for c in conjuncts
        ]

    def _count_name_states(self, keys: list[str], path: str) -> None:
        """Refuse, before any value is compiled, an automaton whose property names
        alone (a quote, the name, a quote, a colon, a separator) are over the limit."""
        limit = self.options.max_states
        if limit is None:
            return
        self._name_states += sum(len(key) + 4 for key in keys)
        if self._name_states > limit:
            raise SchemaTooLarge(
                "size",
                path,
                f"the property names alone need over {self._name_states:,} automaton "
                f"states, over the limit of {limit:,} for this vocabulary; use the "
                "llguidance engine (the default) or fewer properties",
            )

    def _count_alternatives(self, n: int, path: str) -> None:
        self._alternatives += n
        if self._alternatives > self.options.max_alternatives * 16:
            raise UnsupportedSchemaError(
                "anyOf/oneOf", path, "too many combinations of alternatives"
            )

    def _combinators(
        self, conjuncts: list[Node], m: Merged, path: str, refs: tuple[str, ...]
    ) -> str | None:
        if m.nots:
            return self._apply_not(conjuncts, m, path, refs)
        if m.conditionals:
            return self._conditional(conjuncts, m, path, refs)
        if m.any_of:
            branches = m.any_of[0]
            rest = self._without_first(conjuncts, "anyOf")
            self._count_alternatives(len(branches), path)
            options = [
                self.value([*rest, b], f"{path}/anyOf/{i}", refs) for i, b in enumerate(branches)
            ]
            return rb.alternation(o for o in options if o is not None)
        return self._one_of(conjuncts, m, path, refs)

    def _without_first(self, conjuncts: list[Node], keyword: str) -> list[Node]:
        """The conjuncts with the first occurrence of `keyword` removed."""
        out, done = [], False
        for c in conjuncts:
            if not done and keyword in c.schema:
                out.append(Node({k: v for k, v in c.schema.items() if k != keyword}, c.resolver))
                done = True
            else:
                out.append(c)
        return out

    def _one_of(
        self, conjuncts: list[Node], m: Merged, path: str, refs: tuple[str, ...]
    ) -> str | None:
        branches = m.one_of[0]
        rest = self._without_first(conjuncts, "oneOf")
        self._count_alternatives(len(branches), path)
        options = []
        for i, branch in enumerate(branches):
            others = [b for j, b in enumerate(branches) if j != i]
            exclusive = self._exclusive_branch(rest, branch, others, path, refs)
            if exclusive is None:
                continue
            regex = self.value(exclusive, f"{path}/oneOf/{i}", refs)
            if regex is not None:
                options.append(regex)
        if not options:
            # Either nothing is satisfiable or every branch overlaps another.
            if all(self.value([*rest, b], path, refs) is None for b in branches):
                return None
            raise UnsupportedSchemaError(
                "oneOf", path, "its branches overlap, so a value could match several"
            )
        return rb.alternation(options)

    def _exclusive_branch(
        self,
        rest: list[Node],
        branch: Node,
        others: list[Node],
        path: str,
        refs: tuple[str, ...],
    ) -> list[Node] | None:
        """Conjuncts generating values of `branch` that match none of `others`, or None."""
        nodes = [*rest, branch]
        forbid: set[str] = set()
        required: set[str] = set()
        for other in others:
            verdict = self._excludes(nodes, other, path, refs)
            if verdict is None:
                key = self._distinguishing_key(nodes, other, path, refs)
                if key is None or key in forbid:
                    return None
                required.add(key)
                nodes = [*nodes, Node({"required": [key]}, branch.resolver)]
                continue
            forbid |= verdict
        if forbid & required:
            return None
        if forbid:
            nodes.append(Node({_FORBID: sorted(forbid)}, branch.resolver))
        return nodes

    def _excludes(
        self, nodes: list[Node], other: Node, path: str, refs: tuple[str, ...]
    ) -> set[str] | None:
        """Properties to forbid so values of `nodes` never validate against `other`.

        Returns None when exclusion cannot be shown; an empty set when it holds as is.
        """
        try:
            mine_c, _ = self._expand(nodes, path, refs)
            theirs_c, _ = self._expand([other], path, refs)
        except _Unsat:
            return set()
        mine = self._merge(mine_c, path)
        theirs = self._merge(theirs_c, path)
        my_types = self._generated_types(mine)
        their_types = theirs.types
        if their_types is not None and not (my_types & their_types):
            return set()
        if mine.enum is not None:
            if all(not self._validates(v, [other]) for v in mine.enum):
                return set()
            return None
        if theirs.enum is not None and all(not self._validates(v, nodes) for v in theirs.enum):
            return set()
        if my_types == {"object"} or (their_types is not None and their_types <= {"object"}):
            declared = self._declared_keys(mine)
            required = set(mine.required)
            # A key they require that we never emit excludes them...
            for key in theirs.required:
                if key not in declared or key in mine.forbidden:
                    return set()
            # ...or one we can stop emitting.
            for key in theirs.required:
                if key not in required:
                    return {key}
            # Required on both sides with values that cannot agree.
            for key in theirs.required:
                mine_vals = self._enum_of_property(mine, key)
                their_schema = self._property_nodes(theirs, key)
                if (
                    mine_vals is not None
                    and their_schema is not None
                    and all(not self._validates(v, their_schema) for v in mine_vals)
                ):
                    return set()
            # They forbid a key we always emit.
            for part in theirs.object_parts:
                if part["additional"] is False:
                    allowed = set(part["properties"])
                    for key in required:
                        if key not in allowed and not any(
                            re.search(p, key) for p in part["patterns"]
                        ):
                            return set()
        return None

    def _distinguishing_key(
        self, nodes: list[Node], other: Node, path: str, refs: tuple[str, ...]
    ) -> str | None:
        """A property that, once required here, no value of `other` can share.

        Typical of tagged unions: each branch declares its own tag (`"kind": {"const":
        "a"}`) or its own properties under `additionalProperties: false`, but makes none
        of them required, so `{}` would match every branch. Requiring the tag (or an own
        property the other branch forbids) makes the branches disjoint.
        """
        try:
            mine_c, _ = self._expand(nodes, path, refs)
            theirs_c, _ = self._expand([other], path, refs)
        except _Unsat:
            return None
        mine = self._merge(mine_c, path)
        theirs = self._merge(theirs_c, path)
        if self._generated_types(mine) != {"object"}:
            return None
        candidates = [k for k in sorted(self._declared_keys(mine)) if k not in mine.forbidden]
        for key in candidates:  # a key they forbid outright
            if key in theirs.forbidden:
                return key
            for part in theirs.object_parts:
                if (
                    part["additional"] is False
                    and key not in part["properties"]
                    and not any(re.search(p, key) for p in part["patterns"])
                ):
                    return key
        for key in candidates:  # a key whose values cannot agree
            mine_vals = self._enum_of_property(mine, key)
            their_schema = self._property_nodes(theirs, key)
            if (
                mine_vals
                and their_schema is not None
                and all(not self._validates(v, their_schema) for v in mine_vals)
            ):
                return key
        return None

    def _enum_of_property(self, m: Merged, key: str) -> list[Any] | None:
        nodes = self._property_nodes(m, key)
        if nodes is None:
            return None
        try:
            conj, _ = self._expand(nodes, "#", ())
        except _Unsat:
            return []
        merged = self._merge(conj, "#")
        if merged.enum is None:
            return None
        return [v for v in merged.enum if self._validates(v, nodes)]

    def _property_nodes(self, m: Merged, key: str) -> list[Node] | None:
        nodes: list[Node] = []
        for part in m.object_parts:
            res = part["resolver"]
            if key in part["properties"]:
                nodes.append(Node(part["properties"][key], res))
        return nodes or None

    def _apply_not(
        self, conjuncts: list[Node], m: Merged, path: str, refs: tuple[str, ...]
    ) -> str | None:
        negated = m.nots[0]
        rest = self._without_first(conjuncts, "not")
        schema = negated.schema
        if schema is True or schema == {}:
            return None
        if schema is False:
            return self.value(rest, path, refs)
        if not isinstance(schema, dict):
            raise InvalidSchemaError("not must be a schema", path)
        keys = set(schema) - {"description", "title", "$comment"}
        extra: dict[str, Any] | None = None
        if keys == {"type"}:
            t = schema["type"]
            banned = {t} if isinstance(t, str) else set(t)
            if "number" in banned:
                banned.add("integer")
            extra = {
                "type": [t for t in _TYPES if t not in banned and t != "number"]
                + ([] if "number" in banned or "integer" in banned else ["number"])
            }
        elif keys == {"required"} and isinstance(schema["required"], list):
            names = [k for k in schema["required"] if isinstance(k, str)]
            if not names:
                return None
            extra = {_FORBID: [names[-1]]}
        elif keys == {"anyOf"} and all(
            isinstance(b, dict) and set(b) == {"required"} for b in schema["anyOf"]
        ):
            extra = {_FORBID: sorted({k for b in schema["anyOf"] for k in b["required"]})}
        elif keys <= {"enum", "const"} or keys == {"type", "enum"}:
            banned_values = list(schema.get("enum", [])) + (
                [schema["const"]] if "const" in schema else []
            )
            merged = self._merge(self._expand(rest, path, refs)[0], path)
            if merged.enum is None:
                # Only values outside a finite set: fine for types that cannot produce
                # those values.
                banned_types = {_json_type(v) for v in banned_values}
                generated = self._generated_types(merged)
                if not (generated & banned_types) or (
                    "number" in banned_types
                    and generated <= {"integer"}
                    and all(
                        not float(v).is_integer()
                        for v in banned_values
                        if _json_type(v) == "number"
                    )
                ):
                    return self.value(rest, path, refs)
                raise UnsupportedSchemaError("not", path, "excluding values from an open set")
            extra = {
                "enum": [
                    v for v in merged.enum if not any(_json_equal(v, b) for b in banned_values)
                ]
            }
        else:
            # Sound fallback: if values of the rest can never satisfy the negated schema,
            # the `not` holds for all of them.
            verdict = self._excludes(rest, negated, path, refs)
            if verdict is None:
                raise UnsupportedSchemaError("not", path, f"negation of {sorted(keys)}")
            if verdict:
                extra = {_FORBID: sorted(verdict)}
            else:
                return self.value(rest, path, refs)
        return self.value([*rest, Node(extra, negated.resolver)], path, refs)

    def _conditional(
        self, conjuncts: list[Node], m: Merged, path: str, refs: tuple[str, ...]
    ) -> str | None:
        cond, then, other = m.conditionals[0]
        rest, done = [], False
        for c in conjuncts:
            if not done and "if" in c.schema:
                keep = {k: v for k, v in c.schema.items() if k not in ("if", "then", "else")}
                rest.append(Node(keep, c.resolver))
                done = True
            else:
                rest.append(c)
        options = []
        # Values that satisfy `if` must satisfy `then`.
        with_if = [*rest, cond] + ([then] if then is not None else [])
        options.append(self.value(with_if, f"{path}/then", refs))
        # Values that fail `if` must satisfy `else`: only when that is provable.
        else_nodes = [*rest] + ([other] if other is not None else [])
        verdict = self._excludes(else_nodes, cond, path, refs)
        if verdict is not None:
            if verdict:
                else_nodes.append(Node({_FORBID: sorted(verdict)}, cond.resolver))
            options.append(self.value(else_nodes, f"{path}/else", refs))
        return rb.alternation(o for o in options if o is not None)

    # ----------------------------------------------------------------- typed
    def _generated_types(self, m: Merged) -> set[str]:
        """The JSON types this compiler emits for `m` (a subset of what it allows)."""
        if m.enum is not None:
            return {_json_type(v) for v in m.enum}
        if m.types is not None:
            types = set(m.types)
        else:
            inferred: set[str] = set()
            kw = m.keywords
            if any(k in kw for k in _OBJECT_KW) or m.object_parts:
                inferred.add("object")
            if any(k in kw for k in _ARRAY_KW):
                inferred.add("array")
            if any(k in kw for k in _STRING_KW):
                inferred.add("string")
            if any(k in kw for k in _NUMBER_KW):
                inferred |= {"number", "integer"}
            types = inferred or set(_TYPES)
        return types

    def _typed(
        self, conjuncts: list[Node], m: Merged, path: str, refs: tuple[str, ...]
    ) -> str | None:
        if m.enum is not None:
            return self._enum(conjuncts, m.enum, path)
        types = self._generated_types(m)
        options: list[str | None] = []
        for t in ("object", "array", "string", "number", "integer", "boolean", "null"):
            if t not in types:
                continue
            if t == "integer" and "number" in types:
                continue  # number covers integers
            builder: Callable[..., str | None] = getattr(self, f"_{t}")
            options.append(builder(m, path, refs))
        return rb.alternation(o for o in options if o is not None)

    def _enum(self, conjuncts: list[Node], enum: list[Any], path: str) -> str | None:
        if len(enum) > self.options.max_alternatives * 16:
            raise UnsupportedSchemaError("enum", path, f"{len(enum)} values")
        stripped = self._strip(conjuncts, ("enum", "const"))
        kept = [v for v in enum if self._validates(v, stripped)]
        return rb.alternation(rb.json_literal(v) for v in kept)

    def _validator(self, node: Node) -> Any:
        key = id(node.schema)
        validator = self._validators.get(key)
        if validator is None or validator.schema is not node.schema:
            validator = self.validator_cls(
                node.schema,
                registry=self.registry,
                format_checker=self.validator_cls.FORMAT_CHECKER,
            )
            validator = validator.evolve(_resolver=node.resolver)
            self._validators[key] = validator
        return validator

    def _validates(self, value: Any, nodes: list[Node]) -> bool:
        try:
            return all(self._validator(n).is_valid(value) for n in nodes)
        except Exception:  # a schema the validator itself cannot handle
            return False

    def _null(self, m: Merged, path: str, refs: tuple[str, ...]) -> str:
        return rb.NULL

    def _boolean(self, m: Merged, path: str, refs: tuple[str, ...]) -> str:
        return rb.BOOLEAN

    def _integer(self, m: Merged, path: str, refs: tuple[str, ...]) -> str | None:
        from schemas.numbers import integer_regex

        low = high = None
        if m.minimum is not None:
            low = _as_int_bound(m.minimum, lower=True, exclusive=False)
        if m.exclusive_minimum is not None:
            b = _as_int_bound(m.exclusive_minimum, lower=True, exclusive=True)
            low = b if low is None else max(low, b)
        if m.maximum is not None:
            high = _as_int_bound(m.maximum, lower=False, exclusive=False)
        if m.exclusive_maximum is not None:
            b = _as_int_bound(m.exclusive_maximum, lower=False, exclusive=True)
            high = b if high is None else min(high, b)
        # Unbounded sides stop at 16 digits: longer integers are valid JSON but lose
        # precision in most parsers (JavaScript, float64) and break Python's int parsing
        # beyond 4300 digits, so a sound subset keeps to safe integers.
        if low is None:
            low = min(-_SAFE_INT, high) if high is not None else -_SAFE_INT
        if high is None:
            high = max(_SAFE_INT, low)
        if low > high:
            return None
        step = None
        if m.multiple_of:
            ints = []
            for k in m.multiple_of:
                if float(k).is_integer():
                    ints.append(int(k))
                elif not float(1 / k).is_integer():
                    raise UnsupportedSchemaError("multipleOf", path, f"{k} on integers")
            step = reduce(math.lcm, ints) if ints else None
        try:
            return integer_regex(low, high, step)
        except ValueError as exc:
            if "empty" in str(exc):
                return None
            narrowed = _some_multiples(m, integer=True)
            if narrowed is None:
                raise UnsupportedSchemaError("multipleOf", path, str(exc)) from None
            return narrowed

    def _number(self, m: Merged, path: str, refs: tuple[str, ...]) -> str | None:
        from schemas.numbers import number_regex

        bounded = any(
            v is not None for v in (m.minimum, m.maximum, m.exclusive_minimum, m.exclusive_maximum)
        )
        if not bounded and not m.multiple_of:
            return rb.NUMBER
        # As for integers: an unbounded side stops at 16 digits (see _integer).
        lows = [v for v in (m.minimum, m.exclusive_minimum) if v is not None]
        highs = [v for v in (m.maximum, m.exclusive_maximum) if v is not None]
        if not lows:
            m = replace(m, minimum=min([-_SAFE_INT - 1, *highs]))
        if not highs:
            # Past the safe range, up to the largest finite number: `minimum: 1e308`
            # keeps values (whole numbers of 309 digits), not the empty [1e308, 1e308].
            top = _SAFE_INT + 1 if max(lows, default=0) <= _SAFE_INT else sys.float_info.max
            m = replace(m, maximum=max([top, *lows]))
        if len(m.multiple_of) > 1:
            if all(float(k).is_integer() for k in m.multiple_of):
                return self._integer(m, path, refs)
            raise UnsupportedSchemaError("multipleOf", path, "several non-integer multipleOf")
        try:
            return number_regex(
                minimum=m.minimum,
                maximum=m.maximum,
                exclusive_minimum=m.exclusive_minimum,
                exclusive_maximum=m.exclusive_maximum,
                multiple_of=m.multiple_of[0] if m.multiple_of else None,
            )
        except ValueError as exc:
            if "empty" in str(exc):
                return None
            narrowed = _some_multiples(m, integer=False) if m.multiple_of else None
            if narrowed is None:
                raise UnsupportedSchemaError(
                    "multipleOf" if m.multiple_of else "minimum/maximum", path, str(exc)
                ) from None
            return narrowed

    def _string(self, m: Merged, path: str, refs: tuple[str, ...]) -> str | None:
        content = self._string_content(m, path)
        return None if content is None else f'"{content}"'

    def _string_content(self, m: Merged, path: str) -> str | None:
        from schemas.formats import format_content_regex
        from schemas.patterns import UnsupportedPattern, pattern_to_regex

        low, high = m.min_length, m.max_length
        if high is not None and low > high:
            return None
        fragments: list[str] = []
        for fmt in m.formats:
            regex = format_content_regex(fmt)
            if regex is not None:
                fragments.append(regex)
        for pattern in m.patterns:
            try:
                fragments.append(pattern_to_regex(pattern))
            except UnsupportedPattern as exc:
                raise UnsupportedSchemaError("pattern", path, str(exc)) from None
            except re.error as exc:
                raise InvalidSchemaError(
                    f"pattern {pattern!r} is not a regex: {exc}", path
                ) from None
        if len(fragments) > 1:
            raise UnsupportedSchemaError(
                "pattern/format", path, "several patterns or formats on one string"
            )
        if fragments:
            fragment = fragments[0]
            if low == 0 and high is None:
                return fragment
            from schemas.regex_ast import content_length_bounds

            fmin, fmax = content_length_bounds(fragment)
            if fmin >= low and (high is None or (fmax is not None and fmax <= high)):
                return fragment
            from schemas.regex_ast import clamp_length

            clamped = clamp_length(fragment, low, high)
            if clamped is not None:
                return clamped
            raise UnsupportedSchemaError(
                "pattern/format with minLength/maxLength",
                path,
                "the pattern's lengths are not within the bounds",
            )
        cap = self.options.max_string_length
        if high is not None and high > max(low, cap):
            high = max(low, cap)  # narrower than allowed: sound
        if low > 4 * cap:
            raise UnsupportedSchemaError("minLength", path, f"{low} characters")
        char = rb.JSON_CHAR if high is None and low == 0 else rb.JSON_CHAR_BOUNDED
        return rb.repeat(char, low, high)

    def _array(self, m: Merged, path: str, refs: tuple[str, ...]) -> str | None:
        low, high = m.min_items, m.max_items
        if high is not None and low > high:
            return None
        item_nodes = m.items
        prefix = m.prefix
        if m.contains:
            need = m.min_contains
            if need > 0:
                prefix = [list(p) for p in prefix]
                while len(prefix) < need:
                    prefix.append(list(item_nodes))
                for i in range(need):
                    prefix[i] = [*prefix[i], *m.contains]
                low = max(low, need)
            if "maxContains" in m.keywords:
                raise UnsupportedSchemaError("maxContains", path)
        if m.unique_items:
            unique = self._unique_array(m, prefix, item_nodes, low, high, path, refs)
            if unique is not False:
                return unique
            if low > 1:
                raise UnsupportedSchemaError(
                    "uniqueItems", path, "minItems > 1 with items that are not enumerable"
                )
            high = 1 if high is None else min(high, 1)
        slots = [
            self.value(nodes, f"{path}/prefixItems/{i}", refs) for i, nodes in enumerate(prefix)
        ]
        item = (
            self.value(item_nodes, f"{path}/items", refs)
            if item_nodes
            else self._any(self.options.any_value_depth - 1)
        )
        if m.items_forbidden and high is None:
            high = len(prefix)
        return self._array_regex(slots, item, low, high)

    def _array_regex(
        self, slots: list[str | None], item: str | None, low: int, high: int | None
    ) -> str | None:
        ws, sep = self.ws, f"{self.ws},{self.ws}"
        # The largest usable length: stop at the first impossible slot.
        limit = high
        for i, slot in enumerate(slots):
            if slot is None:
                limit = i if limit is None else min(limit, i)
                break
        if item is None:
            limit = len(slots) if limit is None else min(limit, len(slots))
        if limit is not None and limit < low:
            return None
        cap = self.options.max_items
        if limit is not None and limit - low > cap:
            limit = low + cap
        if limit is None and low > cap * 4:
            raise UnsupportedSchemaError("minItems", path="#", detail=f"{low} items")

        def element(i: int) -> str:
            return slots[i] if i < len(slots) else item  # type: ignore[return-value]

        # tail(i): elements i.. each preceded by a separator
        def tail(i: int) -> str:
            if limit is not None and i >= limit:
                return ""
            if i >= len(slots):
                more_low = max(0, low - i)
                more_high = None if limit is None else limit - i
                return rb.repeat(sep + item, more_low, more_high) if item is not None else ""
            body = sep + element(i) + tail(i + 1)
            return body if i < low else rb.optional(body)

        if limit == 0:
            inner = ""
        else:
            first = element(0) + tail(1)
            inner = first if low > 0 else rb.optional(first)
        return rf"\[{ws}{inner}{ws}\]"

    def _unique_array(
        self,
        m: Merged,
        prefix: list[list[Node]],
        item_nodes: list[Node],
        low: int,
        high: int | None,
        path: str,
        refs: tuple[str, ...],
    ) -> str | Literal[False] | None:
        """Unique arrays of enumerable items as strictly increasing subsequences.

        Returns False when the items are not enumerable (caller narrows instead).
        """
        if prefix or not item_nodes:
            return False
        values = self._finite_values(item_nodes, path, refs)
        if values is None:
            return False
        n = len(values)
        high = n if high is None else min(high, n)
        if low > high:
            return None
        literals = [rb.json_literal(v) for v in values]
        if low == 0 and high >= n and n <= 24:
            items = [(lit, False) for lit in literals]
            inner = rb.sequence_with_separators(items, f"{self.ws},{self.ws}")
            return rf"\[{self.ws}{inner}{self.ws}\]"
        if n > 12:
            return False
        # Count-bounded: enumerate combinations by length (small n only).
        from itertools import combinations

        options = []
        for k in range(low, high + 1):
            for combo in combinations(literals, k):
                options.append(",".join(combo))
                if len(options) > self.options.max_alternatives:
                    return False
        inner = rb.alternation(options)
        if inner is None:
            return None
        return rf"\[{self.ws}{inner}{self.ws}\]"

    def _finite_values(
        self, nodes: list[Node], path: str, refs: tuple[str, ...]
    ) -> list[Any] | None:
        try:
            conj, _ = self._expand(nodes, path, refs)
        except _Unsat:
            return []
        merged = self._merge(conj, path)
        if merged.any_of or merged.one_of or merged.nots or merged.conditionals:
            return None
        if merged.enum is not None:
            kept = [v for v in merged.enum if self._validates(v, nodes)]
            out: list[Any] = []
            for v in kept:
                if not any(_json_equal(v, o) for o in out):
                    out.append(v)
            return out
        if merged.types == {"boolean"}:
            return [False, True]
        if merged.types == {"null"}:
            return [None]
        return None

    def _declared_keys(self, m: Merged) -> list[str]:
        keys: dict[str, None] = {}  # ordered, and linear in the number of keys
        for part in m.object_parts:
            keys.update(dict.fromkeys(part["properties"]))
        keys.update(dict.fromkeys(m.required))
        return list(keys)

    def _key_nodes(self, m: Merged, key: str) -> list[Node] | None:
        """Schemas the value of `key` must satisfy; None when a conjunct forbids the key."""
        nodes: list[Node] = []
        for part in m.object_parts:
            res = part["resolver"]
            matched = False
            if key in part["properties"]:
                nodes.append(Node(part["properties"][key], res))
                matched = True
            for pattern, sub in part["patterns"].items():
                try:
                    if re.search(pattern, key):
                        nodes.append(Node(sub, res))
                        matched = True
                except re.error:
                    continue
            if not matched:
                additional = part["additional"]
                if additional is False:
                    return None
                if additional is not True:
                    nodes.append(Node(additional, res))
        return nodes

    def _object(self, m: Merged, path: str, refs: tuple[str, ...]) -> str | None:
        ws = self.ws
        keys = self._declared_keys(m)
        required = list(m.required)
        if not keys:
            return self._free_object(m, path, refs)
        self._count_name_states(keys, path)
        # Property names must satisfy propertyNames.
        if m.property_names:
            for key in list(keys):
                if not self._validates(key, m.property_names):
                    if key in required:
                        return None
                    keys.remove(key)
        # Dependencies: an optional key with dependencies is dropped (sound); a
        # required one pulls its dependencies in.
        changed = True
        while changed:
            changed = False
            for key, deps in m.dependent_required.items():
                if key in required:
                    for dep in deps:
                        if dep not in required:
                            required.append(dep)
                            changed = True
                            if dep not in keys:
                                keys.append(dep)
        extra_conjuncts: list[Node] = []
        for key, subs in m.dependent_schemas.items():
            if key in required:
                extra_conjuncts.extend(subs)
        for key in list(keys):
            optional_dep = key in m.dependent_required or key in m.dependent_schemas
            if key not in required and (optional_dep or key in m.forbidden):
                keys.remove(key)
        for key in required:
            if key in m.forbidden:
                return None
        if extra_conjuncts:
            raise UnsupportedSchemaError("dependentSchemas", path, "on a required property")
        # Values.
        entries: list[tuple[str, str, bool]] = []
        for key in keys:
            nodes = self._key_nodes(m, key)
            is_required = key in required
            if nodes is None:
                if is_required:
                    return None
                continue
            value = self.value(nodes, f"{path}/properties/{key}", refs)
            if value is None:
                if is_required:
                    return None
                continue
            key_regex = rb.json_literal(key)
            entries.append((f"{key_regex}{ws}:{ws}{value}", key, is_required))
        # min/maxProperties by promoting or dropping optional properties.
        n_required = sum(1 for e in entries if e[2])
        if m.max_properties is not None:
            if n_required > m.max_properties:
                return None
            budget = m.max_properties - n_required
            kept = []
            for e in entries:
                if e[2]:
                    kept.append(e)
                elif budget > 0:
                    kept.append(e)
                    budget -= 1
            entries = kept
        if m.min_properties > n_required:
            need = m.min_properties - n_required
            promoted = []
            for fragment, key, req in entries:
                if not req and need > 0:
                    promoted.append((fragment, key, True))
                    need -= 1
                else:
                    promoted.append((fragment, key, req))
            if need > 0:
                return None
            entries = promoted
        inner = rb.object_members([(fragment, req) for fragment, _, req in entries], f"{ws},{ws}")
        if inner is None:
            return None
        return rf"\{{{ws}{inner}{ws}\}}"

    def _free_object(self, m: Merged, path: str, refs: tuple[str, ...]) -> str | None:
        """An object with no declared properties: generic keys, bounded in count."""
        ws, sep = self.ws, f"{self.ws},{self.ws}"
        pattern_parts: list[tuple[str, Node]] = []
        additional: list[Node] = []
        closed = False
        for part in m.object_parts:
            for pattern, sub in part["patterns"].items():
                pattern_parts.append((pattern, Node(sub, part["resolver"])))
            if part["additional"] is False:
                closed = True
            elif part["additional"] is not True:
                additional.append(Node(part["additional"], part["resolver"]))
        if len(m.object_parts) > 1 and pattern_parts:
            raise UnsupportedSchemaError("patternProperties", path, "in several allOf branches")
        if m.forbidden and any(
            _searches(pattern, key) for pattern, _ in pattern_parts for key in m.forbidden
        ):
            raise UnsupportedSchemaError("patternProperties", path, "matching a forbidden key")
        pairs: list[str] = []
        if pattern_parts:
            from schemas.patterns import UnsupportedPattern, pattern_to_regex

            all_pattern_nodes = [n for _, n in pattern_parts]
            for pattern, _ in pattern_parts:
                try:
                    key_content = pattern_to_regex(pattern)
                except UnsupportedPattern as exc:
                    raise UnsupportedSchemaError("patternProperties", path, str(exc)) from None
                # A key may match several patterns: its value must satisfy all of them.
                value = self.value(all_pattern_nodes, f"{path}/patternProperties", refs)
                if value is not None:
                    pairs.append(f'"{key_content}"{ws}:{ws}{value}')
        if not closed and not pattern_parts:
            key = self._key_regex(m, path)
            if key is not None:
                value_nodes = additional
                value = (
                    self.value(value_nodes, f"{path}/additionalProperties", refs)
                    if value_nodes
                    else self._any(self.options.any_value_depth - 1)
                )
                if value is not None:
                    pairs.append(f"{key}{ws}:{ws}{value}")
        low, high = m.min_properties, m.max_properties
        if low > 1:
            raise UnsupportedSchemaError(
                "minProperties", path, "more than one property without declared properties"
            )
        pair = rb.alternation(pairs)
        if pair is None or high == 0:
            return None if low > 0 else rf"\{{{ws}\}}"
        if high is None and low == 0:
            # Any number of pairs. A repeated key collapses when parsed, which no
            # remaining keyword can object to.
            body = rb.optional(pair + rb.repeat(sep + pair, 0, None))
        else:
            # With a count bound, repeated keys could make the parsed object smaller
            # than generated: emit at most one pair.
            body = pair if low > 0 else rb.optional(pair)
        return rf"\{{{ws}{body}{ws}\}}"

    def _key_regex(self, m: Merged, path: str) -> str | None:
        """Free keys: any name propertyNames allows, except those a `not` forbids."""
        if not m.property_names:
            return rb.json_string_except(m.forbidden) if m.forbidden else rb.JSON_STRING
        try:
            conj, _ = self._expand(m.property_names, path, ())
        except _Unsat:
            return None
        names = self._merge(conj, path)
        if names.enum is not None:
            kept = [
                v
                for v in names.enum
                if isinstance(v, str)
                and v not in m.forbidden
                and self._validates(v, m.property_names)
            ]
            return rb.alternation(rb.json_literal(v) for v in kept)
        if names.any_of or names.one_of or names.nots or names.conditionals:
            raise UnsupportedSchemaError("propertyNames", path)
        if m.forbidden:
            raise UnsupportedSchemaError("propertyNames", path, "with keys a `not` forbids")
        content = self._string_content(names, path)
        return None if content is None else f'"{content}"'

    def _any(self, depth: int) -> str:
        """Any JSON value nested at most `depth` levels (compact)."""
        ws, sep = self.ws, f"{self.ws},{self.ws}"
        scalars = [rb.NULL, rb.BOOLEAN, rb.NUMBER, rb.JSON_STRING]
        if depth < 0:
            return rb.alternation(scalars)  # type: ignore[return-value]
        inner = self._any(depth - 1)
        array = rf"\[{ws}(?:{inner}(?:{sep}{inner})*)?{ws}\]"
        obj = rf"\{{{ws}(?:{rb.JSON_STRING}{ws}:{ws}{inner})?{ws}\}}"
        return rb.alternation([*scalars, array, obj])  # type: ignore[return-value]


def _searches(pattern: str, key: str) -> bool:
    """Whether a patternProperties pattern matches `key` (an unreadable one may)."""
    try:
        return re.search(pattern, key) is not None
    except re.error:
        return True


_SAFE_INT = 10**15 - 1  # the largest magnitude an unbounded number side may reach
_MULTIPLES = 64  # how many multiples a narrowed multipleOf keeps


def _some_multiples(m: Merged, integer: bool) -> str | None:
    """A sound subset for a multipleOf the digit-level construction cannot express.

    The values are the multiples from 0 up (or, when the range excludes zero, the first
    ones inside it), each checked by jsonschema itself, so floating-point
    rounding can never let an invalid one through. None when none qualifies.
    """
    from fractions import Fraction

    check: dict[str, Any] = {"type": "integer" if integer else "number"}
    for key, value in (
        ("minimum", m.minimum),
        ("maximum", m.maximum),
        ("exclusiveMinimum", m.exclusive_minimum),
        ("exclusiveMaximum", m.exclusive_maximum),
    ):
        if value is not None:
            check[key] = value
    if m.multiple_of:
        check["allOf"] = [{"multipleOf": k} for k in m.multiple_of]
    validator = jsonschema.Draft202012Validator(check)
    steps = [Fraction(str(k)) for k in m.multiple_of] or [Fraction(1)]
    step = steps[0]
    for other in steps[1:]:  # a common multiple of all steps
        num = math.lcm(step.numerator * other.denominator, other.numerator * step.denominator)
        step = Fraction(num, step.denominator * other.denominator)
    lows = [v for v in (m.minimum, m.exclusive_minimum) if v is not None]
    highs = [v for v in (m.maximum, m.exclusive_maximum) if v is not None]
    start = 0  # small values first when the range holds zero
    if lows and max(lows) > 0:
        start = math.ceil(Fraction(str(max(lows))) / step)
    elif highs and min(highs) < 0:
        start = math.floor(Fraction(str(min(highs))) / step) - _MULTIPLES + 1
    literals = []
    for c in range(start, start + 4 * _MULTIPLES):
        exact = c * step
        number = int(exact) if exact.denominator == 1 else float(exact)
        if not integer and isinstance(number, float) and not math.isfinite(number):
            continue
        text = json.dumps(number)
        if validator.is_valid(json.loads(text)):
            literals.append(rb.literal(text))
        if len(literals) >= _MULTIPLES:
            break
    return rb.alternation(literals) if literals else None


_CHECKED: OrderedDict[bytes, None] = OrderedDict()  # digests of schemas that passed
_CHECKED_ENTRIES = 4096
_CHECKED_LOCK = threading.Lock()


def clear_check_cache() -> None:
    """Forget which schemas passed (for cold-compile measurements)."""
    with _CHECKED_LOCK:
        _CHECKED.clear()


def check_schema(schema: Any) -> None:
    """Raise InvalidSchemaError when `schema` fails its own meta-schema.

    Meta-validation against 2020-12 is slow (a 50-tool call schema: ~0.8 s here), and
    the same schemas come back (a tool set on every step, a response format on every
    request): those that passed are remembered by digest.
    """
    if not isinstance(schema, (dict, bool)):
        raise InvalidSchemaError("a JSON Schema must be an object or a boolean")
    if value_depth(schema, stop_above=MAX_SCHEMA_DEPTH) > MAX_SCHEMA_DEPTH:
        # The meta-schema check and the compiler recurse once (or more) per level.
        raise InvalidSchemaError(
            f"the schema nests deeper than the limit of {MAX_SCHEMA_DEPTH} levels; "
            "flatten it (or use $defs and $ref)"
        )
    try:
        text = json.dumps(schema, sort_keys=True, ensure_ascii=False, default=repr)
    except (ValueError, RecursionError):
        text = None  # circular or too deep: the validator reports it
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest() if text else None
    if digest is not None:
        with _CHECKED_LOCK:
            if digest in _CHECKED:
                _CHECKED.move_to_end(digest)
                return
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        with warnings.catch_warnings():  # `re` warns of a pattern's `[[`: its author's
            warnings.simplefilter("ignore", FutureWarning)
            cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "#/" + "/".join(str(p) for p in exc.absolute_path) if exc.absolute_path else "#"
        raise InvalidSchemaError(f"invalid JSON Schema: {exc.message:.200}", where) from None
    except RecursionError:
        raise InvalidSchemaError(
            "the schema nests too deeply to check; flatten it (or use $defs and $ref)"
        ) from None
    if digest is not None:
        with _CHECKED_LOCK:
            _CHECKED[digest] = None
            while len(_CHECKED) > _CHECKED_ENTRIES:
                _CHECKED.popitem(last=False)


def schema_to_regex(schema: Any, options: RegexOptions | None = None) -> str:
    """Compile `schema` to a regex of compact JSON instances (see the module docstring)."""
    check_schema(schema)
    try:
        return SchemaCompiler(schema, options).compile()
    except SchemaCompileError:
        raise
    except RecursionError:
        raise UnsupportedSchemaError("size", "#", "the schema nests too deeply") from None


# Above this cost no automaton is built. The index builder's time and memory grow with
# states x (vocabulary size + about 16k): 100 optional string properties (2,591 states
# x 116k = 3e8 with a 100k vocabulary) take 4 s and 450 MB, 1,000 of them with a 1k
# vocabulary (26,891 x 17k = 4.7e8) 7 s.
AUTOMATON_LIMIT = 400_000_000
_STATE_OVERHEAD = 16_384
# (max_string_length, max_items) tried in turn until the token index fits its budget.
NARROWING_STEPS = ((256, 64), (128, 32), (64, 16), (32, 8), (16, 4))
# When the regex itself is too large (recursive $refs unrolled, free-form values nested
# deep), fewer unrollings and shallower free values are tried in turn: each is a
# subset of the previous language, so output stays valid.
SIZE_STEPS: tuple[dict[str, int], ...] = (
    {},
    {"max_ref_depth": 2},
    {"max_ref_depth": 1, "any_value_depth": 1},
    {"max_ref_depth": 1, "any_value_depth": 1, "max_alternatives": 64, "max_items": 8},
)


def _schema_to_regex_within_size(schema: Any, options: RegexOptions) -> str:
    from dataclasses import replace

    error: UnsupportedSchemaError | None = None
    for step in SIZE_STEPS:
        narrowed = {k: min(v, getattr(options, k)) for k, v in step.items()}
        try:
            return schema_to_regex(schema, replace(options, **narrowed))
        except UnsupportedSchemaError as exc:
            if exc.construct != "size" or isinstance(exc, SchemaTooLarge):
                raise  # narrower options would not make a slow expansion fast enough
            error = error or exc
    assert error is not None
    raise error


def schema_to_regex_for_vocab(
    schema: Any,
    vocab_size: int,
    options: RegexOptions | None = None,
    budget: int = 15_000_000,
    limit: int = AUTOMATON_LIMIT,
) -> str:
    """`schema_to_regex`, narrowing counted lengths until the token index is affordable.

    Building the token index walks every vocabulary entry from every automaton state,
    and a state inside free text keeps a transition for nearly every entry, so
    `maxLength: 500` inside `maxItems: 50` costs seconds and gigabytes with a 65k
    vocabulary. The budget bounds (estimated states x vocabulary size); narrower
    bounds generate a subset of the valid instances. Above `limit` even at the
    narrowest, the schema is refused (SchemaTooLarge) instead of handed to the index
    builder, and so is one whose property names alone are over it, before its regex
    is built.
    """
    from dataclasses import replace

    from schemas.regex_ast import estimate_states

    base = options or RegexOptions()
    per_state = vocab_size + _STATE_OVERHEAD
    if base.max_states is None:
        base = replace(base, max_states=max(limit // per_state, 1))
    regex = ""
    previous = None
    cost = 0
    for string_cap, items_cap in NARROWING_STEPS:
        opts = replace(
            base,
            max_string_length=min(base.max_string_length, string_cap),
            max_items=min(base.max_items, items_cap),
        )
        regex = _schema_to_regex_within_size(schema, opts)
        est = estimate_states(regex)
        cost = (est.wide + est.narrow) * vocab_size
        if cost <= budget or regex == previous:
            break  # affordable, or narrower counts no longer change anything
        previous = regex
    states = est.wide + est.narrow
    if states * per_state > limit:
        raise SchemaTooLarge(
            "size",
            "#",
            f"the automaton would need about {states:,} states over {vocab_size:,} tokens, "
            f"over the limit of {limit // per_state:,} states for this vocabulary; use the "
            "llguidance engine (the default) or a smaller schema",
        )
    return regex


__all__ = [
    "AUTOMATON_LIMIT",
    "RegexOptions",
    "SchemaCompiler",
    "SchemaTooLarge",
    "check_schema",
    "schema_to_regex",
]
