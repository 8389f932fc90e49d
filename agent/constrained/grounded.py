"""Grounding by construction: a JSON Schema whose chosen strings can only be quoted text.

A grounded string is a contiguous run of words of a source text, verbatim, or nothing:
the grammar allows no other characters, so a model (even one with random weights)
cannot invent a value there. llguidance's `%regex {"substring_chunks": [...]}` matches
any run of consecutive chunks; the chunks here are the source's words, spaces and
punctuation, each JSON-escaped on its own, so every run the grammar allows is the
escaping of a substring of the source and decodes back to exactly that substring (a
cut can never fall inside an escape sequence such as `\\n` or `\\"`).

The rest of the schema is spelled out around those strings as a Lark grammar: objects
and arrays that hold a grounded string become rules (properties in schema order), and
every other subschema is inlined with `%json {...}`, so llguidance keeps enforcing it.

Which strings are grounded: with `ground_all`, every plain string (no `enum`, `const`,
`pattern` or `format`, whose values need not be quotes); otherwise those marked
`"x-grounded": true`. `minLength`/`maxLength` are kept (intersected with the substring).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agent.constrained.output_types import OutputSpec, resolve_output_type
from schemas.errors import SchemaCompileError

GROUNDED_KEY = "x-grounded"
# A string with these keywords has values that need not be quotes of the text.
_VALUE_KEYWORDS = ("enum", "const", "pattern", "format")
_COMBINATORS = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref")
# Keywords that change nothing about an object or array a grammar rule spells out.
_ANNOTATIONS = frozenset(
    {"title", "description", "$schema", "$id", "$comment", "examples", "default",
     "$defs", "definitions", GROUNDED_KEY, "additionalProperties", "unevaluatedProperties"}
)  # fmt: skip
_OBJECT_KEYS = _ANNOTATIONS | {"type", "properties", "required"}
_ARRAY_KEYS = _ANNOTATIONS | {"type", "items", "minItems", "maxItems"}
_STRING_KEYS = _ANNOTATIONS | {"type", "minLength", "maxLength"}
_MAX_DEPTH = 32
# One JSON string character, escaped or not: counts decoded characters for the lengths.
_JSON_CHAR = r'(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})'  # "/" escaped for Lark
_WORDS = re.compile(r"\w+|\s|[^\w\s]", re.UNICODE)


def source_chunks(text: str) -> list[str]:
    """The text's words, single whitespace characters and single punctuation marks,
    each JSON-escaped on its own (their concatenation is the escaped text)."""
    return [json.dumps(piece, ensure_ascii=False)[1:-1] for piece in _WORDS.findall(text)]


def has_grounded_strings(schema: Any, *, ground_all: bool) -> bool:
    """Whether any string of `schema` is grounded (so a grammar is worth building).

    Raises `SchemaCompileError` for an `x-grounded` mark on what cannot be grounded,
    so that mistake is reported before a model loads.
    """
    from schemas.narrow import narrow_for_llguidance

    narrowed = narrow_for_llguidance(resolve_output_type(schema).json_schema)
    builder = _Builder(narrowed, "", ground_all)
    builder.build()  # walks every node: a misplaced mark is found wherever it is
    return bool(builder.terminals)


def grounded_spec(schema: Any, source: str, *, ground_all: bool) -> OutputSpec:
    """The output type for `schema` with its grounded strings quoted from `source`.

    The value is parsed and validated against `schema` itself, as for a plain schema;
    a schema whose `x-grounded` marks a string that cannot be grounded is refused.
    """
    from schemas.narrow import narrow_for_llguidance

    plain = resolve_output_type(schema)
    if plain.kind != "json":
        raise SchemaCompileError("grounding needs a JSON Schema")
    builder = _Builder(narrow_for_llguidance(plain.json_schema), source, ground_all)
    grammar = builder.build()
    return OutputSpec("cfg", plain.parse, grammar=grammar)


@dataclass
class _Builder:
    root: Any
    source: str
    ground_all: bool
    rules: list[str] = field(default_factory=list)
    terminals: dict[tuple[int, int | None], str] = field(default_factory=dict)
    counter: int = 0

    # ------------------------------------------------------------ decisions
    def _resolve(self, node: Any, depth: int) -> Any:
        """`node` with a lone local `$ref` followed (a `$ref` with siblings is left)."""
        while isinstance(node, dict) and set(node) - _ANNOTATIONS == {"$ref"}:
            ref = node["$ref"]
            if depth > _MAX_DEPTH or not isinstance(ref, str) or not ref.startswith("#/"):
                return node
            target: Any = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    return node
                target = target[part]
            node, depth = target, depth + 1
        return node

    def _groundable(self, node: dict[str, Any]) -> bool:
        return node.get("type") == "string" and set(node) <= _STRING_KEYS

    def _grounded(self, node: Any, depth: int) -> bool:
        node = self._resolve(node, depth)
        if not isinstance(node, dict):
            return False
        marked = node.get(GROUNDED_KEY)
        if marked is not None and not isinstance(marked, bool):
            raise SchemaCompileError(f"'{GROUNDED_KEY}' must be true or false, got {marked!r}")
        if marked and not self._groundable(node):
            raise SchemaCompileError(
                f"'{GROUNDED_KEY}' marks a schema that is not a plain string "
                f"({json.dumps(node)[:80]}); put it on strings without enum, const, "
                "pattern or format"
            )
        if marked is False:
            return False
        return bool(marked) or (self.ground_all and self._groundable(node))

    def _kind(self, node: Any, depth: int) -> str | None:
        """ "object"/"array" when `node` is spelled out as a rule, None for `%json`."""
        node = self._resolve(node, depth)
        if not isinstance(node, dict) or depth > _MAX_DEPTH:
            return None
        if node.get("type") == "object" and set(node) <= _OBJECT_KEYS:
            props = node.get("properties", {})
            if isinstance(props, dict) and any(
                self.has_grounded(p, depth + 1) for p in props.values()
            ):
                return "object"
        items = node.get("items")
        if (
            node.get("type") == "array"
            and set(node) <= _ARRAY_KEYS
            and isinstance(items, dict)
            and self.has_grounded(items, depth + 1)
        ):
            return "array"
        return None

    def has_grounded(self, node: Any, depth: int) -> bool:
        if depth > _MAX_DEPTH:
            return False
        if self._grounded(node, depth):
            return True
        return self._kind(node, depth) is not None

    # ------------------------------------------------------------ grammar
    def build(self) -> str:
        start = self._expr(self.root, 0)
        head = [f"start: {start}"]
        return "\n".join([*head, *self.rules, *self._terminal_rules()]) + "\n"

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def _expr(self, node: Any, depth: int) -> str:
        """A grammar expression for one value of `node`."""
        if self._grounded(node, depth):
            resolved = self._resolve(node, depth)
            return self._string_terminal(resolved.get("minLength", 0), resolved.get("maxLength"))
        kind = self._kind(node, depth)
        resolved = self._resolve(node, depth)
        if kind == "object":
            return self._object(resolved, depth)
        if kind == "array":
            return self._array(resolved, depth)
        return self._json(node)

    def _json(self, node: Any) -> str:
        if _marks_grounded(node):
            raise SchemaCompileError(
                f"'{GROUNDED_KEY}' is set on a string under anyOf, oneOf, allOf, not, a "
                "$ref with siblings or an object with other keywords, where it cannot be "
                "honoured; move it to a string reached through properties and items only"
            )
        name = self._name("json")
        schema: Any = node
        if isinstance(node, dict):
            schema = dict(node)
            if isinstance(self.root, dict):
                for key in ("$defs", "definitions"):  # local references resolve as at the root
                    if key in self.root and key not in schema:
                        schema[key] = self.root[key]
            # Compact JSON, as the plain-schema path asks llguidance for.
            schema.setdefault("x-guidance", {"whitespace_flexible": False})
        self.rules.append(f"{name}: %json {json.dumps(schema)}")
        return name

    def _object(self, node: dict[str, Any], depth: int) -> str:
        props: dict[str, Any] = node.get("properties", {})
        required = set(node.get("required", []))
        missing = required - set(props)
        if missing:  # required but undeclared: any value; let %json spell the whole node
            return self._json(node)
        name = self._name("obj")
        members = [
            f"{_lark_literal(json.dumps(key) + ':')} {self._expr(sub, depth + 1)}"
            for key, sub in props.items()
        ]
        keys = list(props)
        # first_i: members from i on, none written yet; after_i: some written (a comma
        # precedes the next). Linear in the number of properties.
        for i in range(len(keys), -1, -1):
            first, after = f"{name}_f{i}", f"{name}_a{i}"
            if i == len(keys):
                self.rules.append(f"{first}: ")
                self.rules.append(f"{after}: ")
                continue
            member, nxt_after, nxt_first = members[i], f"{name}_a{i + 1}", f"{name}_f{i + 1}"
            if keys[i] in required:
                self.rules.append(f"{first}: {member} {nxt_after}")
                self.rules.append(f'{after}: "," {member} {nxt_after}')
            else:
                self.rules.append(f"{first}: {member} {nxt_after} | {nxt_first}")
                self.rules.append(f'{after}: "," {member} {nxt_after} | {nxt_after}')
        self.rules.append(f'{name}: "{{" {name}_f0 "}}"')
        return name

    def _array(self, node: dict[str, Any], depth: int) -> str:
        item = self._expr(node["items"], depth + 1)
        low = int(node.get("minItems", 0))
        high = node.get("maxItems")
        name = self._name("arr")
        if high is not None and int(high) < low:
            raise SchemaCompileError(f"minItems {low} is above maxItems {high}")
        if high is None:
            more = "*" if low <= 1 else f"{{{low - 1},}}"
        else:
            more = f"{{{max(low - 1, 0)},{int(high) - 1}}}"
        if high is not None and int(high) == 0:
            self.rules.append(f'{name}: "[" "]"')
        elif low == 0:
            self.rules.append(f'{name}: "[" ({item} ("," {item}){more})? "]"')
        else:
            self.rules.append(f'{name}: "[" {item} ("," {item}){more} "]"')
        return name

    def _string_terminal(self, low: int, high: int | None) -> str:
        key = (int(low), None if high is None else int(high))
        found = self.terminals.get(key)
        if found is None:
            found = f"QUOTE_{len(self.terminals) + 1}"
            self.terminals[key] = found
        return found

    def _terminal_rules(self) -> list[str]:
        if not self.terminals:
            return []
        chunks = json.dumps({"substring_chunks": source_chunks(self.source)})
        lines = [f"SOURCE: %regex {chunks}"]
        for (low, high), name in self.terminals.items():
            if low == 0 and high is None:
                lines.append(f'{name}: "\\"" SOURCE "\\""')
                continue
            bounds = f"{{{low},{'' if high is None else high}}}"
            lines.append(f'{name}: "\\"" (SOURCE & /{_JSON_CHAR}{bounds}/) "\\""')
        return lines


def _marks_grounded(node: Any) -> bool:
    """Whether a subschema holds an `x-grounded: true` anywhere (keywords only)."""
    from schemas.walk import map_schema

    found = False

    def visit(sub: dict[str, Any], path: str) -> dict[str, Any]:
        nonlocal found
        found = found or sub.get(GROUNDED_KEY) is True
        return sub

    map_schema(node, visit)
    return found


def _lark_literal(text: str) -> str:
    """`text` as a Lark string literal."""
    return json.dumps(text)


def grounded_leaf_pointers(schema: Any, value: Any, *, ground_all: bool) -> set[str]:
    """JSON pointers of the string values in `value` that the grammar grounded."""
    from schemas.narrow import narrow_for_llguidance

    schema = narrow_for_llguidance(resolve_output_type(schema).json_schema)
    builder = _Builder(schema, "", ground_all)
    found: set[str] = set()

    def walk(node: Any, val: Any, pointer: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(val, str):
            if builder._grounded(node, depth):
                found.add(pointer)
            return
        kind = builder._kind(node, depth)
        resolved = builder._resolve(node, depth)
        if kind == "object" and isinstance(val, dict):
            for key, sub in resolved.get("properties", {}).items():
                if key in val:
                    walk(sub, val[key], f"{pointer}/{escape_pointer(key)}", depth + 1)
        elif kind == "array" and isinstance(val, list):
            for index, item in enumerate(val):
                walk(resolved["items"], item, f"{pointer}/{index}", depth + 1)

    walk(schema, value, "", 0)
    return found


def escape_pointer(key: str) -> str:
    """One JSON pointer reference token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
