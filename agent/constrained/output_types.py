"""What the caller asks for -> a regex, and how to turn matching text into a value.

Accepted output types:
- a JSON Schema (dict or bool);
- a pydantic model class (its JSON Schema; the value is a validated instance);
- a Python type pydantic understands: `int`, `list[int]`, `Literal["a", "b"]`,
  `Optional[...]`, `TypedDict`, dataclasses, enums (the value is validated);
- a regex: `Regex("...")`, or any object with a `pattern` string such as
  `outlines.types.Regex` (the value is the text);
- a list of choices (strings): the value is the chosen string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import UserError
from schemas.compiler import RegexOptions, schema_to_regex_for_vocab


@dataclass(frozen=True)
class Regex:
    """Ask for text matching a regular expression (Rust regex syntax, fully anchored)."""

    pattern: str


@dataclass(frozen=True)
class OutputSpec:
    """A compiled request: the grammar's regex and the parser for its output."""

    regex: str
    parse: Callable[[str], Any]
    json_schema: Any = None
    kind: str = "json"


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


def resolve_output_type(
    output_type: Any, vocab_size: int, options: RegexOptions | None = None
) -> OutputSpec:
    """Turn any supported output type into an OutputSpec (compiling schemas to regex)."""

    def schema_to_regex(schema: Any, opts: RegexOptions | None) -> str:
        return schema_to_regex_for_vocab(schema, vocab_size, opts)

    if isinstance(output_type, Regex) or (
        hasattr(output_type, "pattern") and isinstance(output_type.pattern, str)
    ):
        pattern = output_type.pattern
        if not pattern:
            raise UserError("the regex is empty")
        return OutputSpec(pattern, lambda text: text, kind="regex")
    if isinstance(output_type, (dict, bool)):
        return OutputSpec(
            schema_to_regex(output_type, options), _json_validator(output_type), output_type
        )
    if isinstance(output_type, Sequence) and not isinstance(output_type, str):
        choices = list(output_type)
        if not choices or not all(isinstance(c, str) for c in choices):
            raise UserError("choices must be a non-empty list of strings")
        from schemas.regex_builder import alternation, literal

        regex = alternation(literal(c) for c in choices)
        assert regex is not None
        return OutputSpec(regex, lambda text: text, kind="choice")
    if isinstance(output_type, str):
        raise UserError(
            "a string output type is ambiguous: pass a JSON Schema dict, Regex(...) or a "
            "list of choices"
        )
    return _pydantic_spec(output_type, schema_to_regex, options)


def _pydantic_spec(
    output_type: Any, schema_to_regex: Callable[..., str], options: RegexOptions | None
) -> OutputSpec:
    from pydantic import BaseModel, TypeAdapter

    if isinstance(output_type, type) and issubclass(output_type, BaseModel):
        schema = output_type.model_json_schema()
        model = output_type
        regex = schema_to_regex(schema, options)

        def parse_model(text: str) -> Any:
            return model.model_validate_json(text)

        return OutputSpec(regex, parse_model, schema)
    try:
        adapter = TypeAdapter(output_type)
        schema = adapter.json_schema()
    except Exception as exc:
        raise UserError(f"unsupported output type {output_type!r}: {exc}") from None
    regex = schema_to_regex(schema, options)
    return OutputSpec(regex, adapter.validate_json, schema)
