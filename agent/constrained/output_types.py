"""What the caller asks for -> an engine-neutral request, and how to read the output back.

Accepted output types:
- a JSON Schema (dict or bool);
- a pydantic model class (its JSON Schema; the value is a validated instance);
- a Python type pydantic understands: `int`, `list[int]`, `Literal["a", "b"]`,
  `Optional[...]`, `TypedDict`, dataclasses, enums (the value is validated);
- a regex: `Regex("...")`, or any object with a `pattern` string such as
  `outlines.types.Regex` (the value is the text);
- a list of choices (strings): the value is the chosen string;
- a context-free grammar in Lark syntax: `CFG("...")`, or `outlines.types.CFG` (the
  value is the text);
- Outlines' own output types: `outlines.types.JsonSchema` (its schema, and its
  `whitespace_pattern` is ignored: edge-agent's `whitespace` option says that), `CFG`,
  `Regex` and the ready-made types (`outlines.types.email`, `date`, ...), and the terms
  of its regex DSL (`either`, `one_or_more`, `Choice`, ...), turned into a regex by
  Outlines itself, so a pattern means here what it means there.

Python types keep edge-agent's meaning (`Literal["a", "b"]` is the JSON string `"a"`);
`agent.integrations.outlines` gives them Outlines' meaning (the bare text `a`) for
programs written against `outlines.Generator`.

Nothing here compiles: `agent.constrained.select` turns the request into a grammar with
llguidance, or with the regex engine when llguidance refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.errors import UserError

OutputKind = Literal["json", "regex", "choice", "cfg"]


@dataclass(frozen=True)
class Regex:
    """Ask for text matching a regular expression (Rust regex syntax, fully anchored)."""

    pattern: str


@dataclass(frozen=True)
class CFG:
    """Ask for text in a context-free grammar, written in Lark syntax (llguidance's
    dialect: `start` is the top rule; `%import common.X` and `%ignore` work).

    Only llguidance compiles grammars; the output is still never cut by `max_tokens`,
    because every token must leave a verified way to finish (see
    `agent.constrained.completion`), and a grammar with no findable finish is refused
    before anything is generated.
    """

    definition: str


@dataclass(frozen=True)
class OutputSpec:
    """A request for constrained output and the parser for its text."""

    kind: OutputKind
    parse: Callable[[str], Any]
    json_schema: Any = None  # kind "json"
    pattern: str | None = None  # kinds "regex" and "choice": a fully anchored regex
    grammar: str | None = None  # kind "cfg": a Lark grammar
    choices: tuple[str, ...] | None = None  # kind "choice"
    # The schema is valid by construction (built from schemas checked when they came
    # in, such as a tool registry's): compiling skips the meta-schema check.
    checked: bool = False

    @property
    def key(self) -> str:
        """What identifies the grammar (key order is part of it: a grammar asks for
        properties in schema order)."""
        if self.kind == "json":
            return "json:" + json.dumps(self.json_schema)
        if self.kind == "cfg":
            return f"cfg:{self.grammar}"
        return f"{self.kind}:{self.pattern}"

    def describe(self) -> str:
        """The request in words, for a prompt that asks the model for it."""
        if self.kind == "json":
            return "one JSON value that follows this JSON Schema:\n" + json.dumps(
                self.json_schema, separators=(",", ":")
            )
        if self.kind == "choice":
            return "exactly one of: " + ", ".join(self.choices or ())
        if self.kind == "cfg":
            return f"text in this grammar (Lark syntax):\n{self.grammar}"
        return f"text matching this regular expression: {self.pattern}"


class OutputValidationError(UserError):
    """Generated text failed validation (a grammar bug: never expected)."""


def _json_validator(schema: Any) -> Callable[[str], Any]:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)

    def parse(text: str) -> Any:
        value = json.loads(text)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            raise OutputValidationError(
                f"generated JSON does not validate: {errors[0].message[:200]}"
            )
        return value

    return parse


def _identity(text: str) -> str:
    return text


def resolve_output_type(output_type: Any) -> OutputSpec:
    """Turn any supported output type into an OutputSpec."""
    if isinstance(output_type, OutputSpec):
        return output_type
    if isinstance(output_type, CFG):
        return cfg_spec(output_type.definition)
    if _from_outlines(output_type):
        return _outlines_term_spec(output_type)
    if isinstance(output_type, Regex) or (
        hasattr(output_type, "pattern") and isinstance(output_type.pattern, str)
    ):
        pattern = output_type.pattern
        if not pattern:
            raise UserError("the regex is empty")
        return OutputSpec("regex", _identity, pattern=pattern)
    if isinstance(output_type, (dict, bool)):
        return OutputSpec("json", _json_validator(output_type), json_schema=output_type)
    if isinstance(output_type, Sequence) and not isinstance(output_type, str):
        return choice_spec(list(output_type))
    if isinstance(output_type, str):
        raise UserError(
            "a string output type is ambiguous: pass a JSON Schema dict, Regex(...), "
            "CFG(...) or a list of choices"
        )
    return _pydantic_spec(output_type)


def _pydantic_spec(output_type: Any) -> OutputSpec:
    from pydantic import BaseModel, TypeAdapter

    if isinstance(output_type, type) and issubclass(output_type, BaseModel):
        model = output_type
        return OutputSpec("json", model.model_validate_json, json_schema=model.model_json_schema())
    try:
        adapter = TypeAdapter(output_type)
        schema = adapter.json_schema()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"unsupported output type {output_type!r}: {reason}") from None
    return OutputSpec("json", adapter.validate_json, json_schema=schema)


def choice_spec(choices: Sequence[str]) -> OutputSpec:
    """One of `choices`, exactly (the value is the chosen string)."""
    from schemas.regex_builder import alternation, literal

    if not choices or not all(isinstance(c, str) for c in choices):
        raise UserError("choices must be a non-empty list of strings")
    regex = alternation(literal(c) for c in choices)
    assert regex is not None
    return OutputSpec("choice", _identity, pattern=regex, choices=tuple(choices))


def cfg_spec(definition: str) -> OutputSpec:
    """A Lark grammar (the value is the text)."""
    if not isinstance(definition, str) or not definition.strip():
        raise UserError("the grammar is empty")
    return OutputSpec("cfg", _identity, grammar=definition)


def _from_outlines(output_type: Any) -> bool:
    """Whether `output_type` is one of Outlines' terms (checked without importing
    Outlines, which takes seconds: only a program that made one has it loaded)."""
    module = getattr(type(output_type), "__module__", "") or ""
    return module == "outlines" or module.startswith("outlines.")


def _outlines_term_spec(term: Any) -> OutputSpec:
    """An Outlines term: JsonSchema and CFG as themselves, every other term (Regex, the
    ready-made types, the DSL's sequences and alternatives) as the regex Outlines
    itself makes of it."""
    from outlines.types.dsl import CFG as OutlinesCFG
    from outlines.types.dsl import JsonSchema, Term, to_regex

    if isinstance(term, OutlinesCFG):
        return cfg_spec(term.definition)
    if isinstance(term, JsonSchema):
        schema = json.loads(term.schema)
        return OutputSpec("json", _json_validator(schema), json_schema=schema)
    if not isinstance(term, Term):
        raise UserError(f"unsupported output type {type(term).__name__} from Outlines")
    try:
        pattern = to_regex(term)
    except (TypeError, ValueError) as exc:
        raise UserError(f"unsupported output type {term!r}: {exc}") from None
    if not pattern:
        raise UserError("the regex is empty")
    return OutputSpec("regex", _identity, pattern=pattern)
