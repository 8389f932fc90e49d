"""What the caller asks for -> an engine-neutral request, and how to read the output back.

Accepted output types:
- a JSON Schema (dict or bool);
- a pydantic model class (its JSON Schema; the value is a validated instance);
- a Python type pydantic understands: `int`, `list[int]`, `Literal["a", "b"]`,
  `Optional[...]`, `TypedDict`, dataclasses, enums (the value is validated);
- a regex: `Regex("...")`, or any object with a `pattern` string such as
  `outlines.types.Regex` (the value is the text);
- a list of choices (strings): the value is the chosen string.

Nothing here compiles: `agent.constrained.select` turns the request into a grammar with
llguidance, or with the regex engine when llguidance refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.errors import UserError

OutputKind = Literal["json", "regex", "choice"]


@dataclass(frozen=True)
class Regex:
    """Ask for text matching a regular expression (Rust regex syntax, fully anchored)."""

    pattern: str


@dataclass(frozen=True)
class OutputSpec:
    """A request for constrained output and the parser for its text."""

    kind: OutputKind
    parse: Callable[[str], Any]
    json_schema: Any = None  # kind "json"
    pattern: str | None = None  # kinds "regex" and "choice": a fully anchored regex
    # The schema is valid by construction (built from schemas checked when they came
    # in, such as a tool registry's): compiling skips the meta-schema check.
    checked: bool = False


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
        choices = list(output_type)
        if not choices or not all(isinstance(c, str) for c in choices):
            raise UserError("choices must be a non-empty list of strings")
        from schemas.regex_builder import alternation, literal

        regex = alternation(literal(c) for c in choices)
        assert regex is not None
        return OutputSpec("choice", _identity, pattern=regex)
    if isinstance(output_type, str):
        raise UserError(
            "a string output type is ambiguous: pass a JSON Schema dict, Regex(...) or a "
            "list of choices"
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
        raise UserError(f"unsupported output type {output_type!r}: {exc}") from None
    return OutputSpec("json", adapter.validate_json, json_schema=schema)
