"""Structured generation through the public API with the random-weight tiny model.

Random weights are the worst case for a grammar: whatever the model prefers, the output
must parse and validate, or the call must fail before generating.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from agent import (
    BudgetTooSmallError,
    Regex,
    SamplingParams,
    extract,
    generate_structured,
    stream_structured,
)
from agent.constrained.compile import GrammarCompileTimeout, clear_memory_cache, compile_regex
from agent.constrained.target import target_for
from agent.errors import UserError
from agent.runtime import TextChunk
from schemas import shipped_schema, shipped_schema_names
from schemas.errors import InvalidSchemaError, UnsatisfiableSchemaError, UnsupportedSchemaError

PROMPT = [{"role": "user", "content": "Reply in JSON."}]
HOT = SamplingParams(temperature=1.0, seed=7)


def validates(schema: dict, value: object) -> None:
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


def whitespace_outside_strings(text: str) -> str:
    """The whitespace characters found between JSON tokens (not inside strings)."""
    found, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch.isspace():
            found.append(ch)
    return "".join(found)


# ------------------------------------------------------------------ output types
class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=130)
    colour: Colour


def test_json_schema_output_parses_and_validates(tiny):
    schema = shipped_schema("invoice")
    result = generate_structured(tiny, PROMPT, schema, max_tokens=400, sampling=HOT)
    assert isinstance(result.value, dict)
    assert json.loads(result.text) == result.value
    validates(schema, result.value)
    assert result.stats.constrained
    assert result.stats.finish_reason == "stop"


def test_pydantic_model_returns_an_instance(tiny):
    result = generate_structured(tiny, PROMPT, Person, max_tokens=120, sampling=HOT)
    assert isinstance(result.value, Person)
    assert 0 <= result.value.age <= 130
    assert isinstance(result.value.colour, Colour)
    assert Person.model_validate_json(result.text) == result.value


@pytest.mark.parametrize(
    ("output_type", "check"),
    [
        (Literal["yes", "no", "maybe"], lambda v: v in ("yes", "no", "maybe")),
        (list[int], lambda v: isinstance(v, list) and all(isinstance(i, int) for i in v)),
        (bool, lambda v: isinstance(v, bool)),
        (["alpha", "beta", "gamma"], lambda v: v in ("alpha", "beta", "gamma")),
        (Regex(r"[A-Z]{3}-[0-9]{4}"), lambda v: re.fullmatch(r"[A-Z]{3}-[0-9]{4}", v)),
    ],
    ids=["literal", "list-int", "bool", "choices", "regex"],
)
def test_every_output_type(tiny, output_type, check):
    result = generate_structured(tiny, PROMPT, output_type, max_tokens=64, sampling=HOT)
    assert check(result.value), result.text


def test_outlines_regex_objects_are_accepted(tiny):
    from outlines.types import Regex as OutlinesRegex

    result = generate_structured(tiny, PROMPT, OutlinesRegex(r"(ab|cd){2}"), max_tokens=16)
    assert result.value in {"abab", "abcd", "cdab", "cdcd"}


# ------------------------------------------------------------------ guarantee
def test_forced_runs_are_fast_forwarded_in_one_pass(tiny):
    schema = {
        "type": "object",
        "properties": {
            "a_rather_long_property_name": {"type": "boolean"},
            "another_long_property_name": {"enum": ["first value", "second value"]},
        },
        "required": ["a_rather_long_property_name", "another_long_property_name"],
    }
    chunks = []
    result = None
    for item in stream_structured(tiny, PROMPT, schema, max_tokens=64, sampling=HOT):
        if isinstance(item, TextChunk):
            chunks.append(item)
        else:
            result = item
    assert result is not None
    validates(schema, result.value)
    forced = [c for c in chunks if c.forced]
    assert any(len(c.token_ids) > 1 for c in forced)  # whole runs, not one by one
    stats = result.stats
    assert stats.forced_tokens == sum(len(c.token_ids) for c in forced)
    assert stats.forced_fraction > 0.5
    # One model call per sampled token, its following forced run included, and one for
    # a forced run that opens the output; none after the end.
    sampled = stats.generated_tokens - stats.forced_tokens
    assert stats.decode_forward_passes == sampled - 1 + int(chunks[0].forced)
    assert stats.mask_us_per_token > 0


def test_whitespace_is_compact_by_default(tiny):
    schema = {"type": "object", "additionalProperties": True}  # free-form JSON
    for seed in range(3):
        sampling = SamplingParams(temperature=1.0, seed=seed)
        result = generate_structured(tiny, PROMPT, schema, max_tokens=200, sampling=sampling)
        assert isinstance(result.value, dict)
        assert whitespace_outside_strings(result.text) == ""


def test_whitespace_option_is_bounded(tiny):
    schema = {"type": "array", "items": {"type": "integer"}, "maxItems": 4}
    result = generate_structured(
        tiny, PROMPT, schema, max_tokens=80, sampling=HOT, whitespace=r"[ ]?"
    )
    validates(schema, result.value)
    assert re.search(r"\s\s", whitespace_outside_strings(result.text)) is None


def test_unsatisfiable_schema_fails_before_generating(fresh_tiny):
    schema = {"allOf": [{"type": "string"}, {"type": "integer"}]}
    with pytest.raises(UnsatisfiableSchemaError):
        generate_structured(fresh_tiny, PROMPT, schema, max_tokens=32)
    assert fresh_tiny._state.tokens == []  # nothing was prefilled


def test_invalid_and_unsupported_schemas_name_the_problem(fresh_tiny):
    with pytest.raises(InvalidSchemaError, match="minLength"):
        generate_structured(fresh_tiny, PROMPT, {"type": "string", "minLength": -1})
    with pytest.raises(UnsupportedSchemaError) as info:
        generate_structured(
            fresh_tiny,
            PROMPT,
            {"allOf": [{"pattern": "^a+$"}, {"pattern": "^b+$"}], "type": "string"},
        )
    assert "pattern" in str(info.value)
    assert fresh_tiny._state.tokens == []


def test_budget_too_small_fails_before_generating(fresh_tiny):
    with pytest.raises(BudgetTooSmallError, match="max_tokens"):
        generate_structured(fresh_tiny, PROMPT, shipped_schema("event"), max_tokens=3)
    assert fresh_tiny._state.tokens == []


def test_output_always_finishes_within_a_tight_budget(tiny):
    schema = {"type": "array", "items": {"type": "string"}}
    for budget in (4, 7, 12):
        result = generate_structured(
            tiny, PROMPT, schema, max_tokens=budget, sampling=SamplingParams(1.0, seed=budget)
        )
        assert result.stats.generated_tokens <= budget
        assert isinstance(result.value, list)


def test_cancelled_generation_is_not_returned_as_success(tiny):
    with pytest.raises(UserError, match="before the output was complete"):
        generate_structured(
            tiny, PROMPT, shipped_schema("contact"), max_tokens=200, should_stop=lambda: True
        )


# ------------------------------------------------------------------ speed
def test_compiles_are_cached_in_memory_and_on_disk(tiny):
    vocab = target_for(tiny).regex_vocabulary(tiny.eos_token_ids)
    regex = rf'\{{"id":"{uuid.uuid4().hex}","n":(0|[1-9][0-9]{{0,5}})\}}'
    clear_memory_cache()
    _, cold = compile_regex(regex, vocab)
    _, memory = compile_regex(regex, vocab)
    clear_memory_cache()
    _, disk = compile_regex(regex, vocab)
    assert not cold.cached and memory.cached and disk.cached  # how much faster: benchmarks


def test_compile_timeout_is_a_clear_error_and_the_compiler_recovers(tiny):
    vocab = target_for(tiny).regex_vocabulary(tiny.eos_token_ids)
    heavy = r'"[a-z0-9 ]{0,300}"(,"[a-z0-9 ]{0,300}"){0,40}' + uuid.uuid4().hex
    with pytest.raises(GrammarCompileTimeout, match="raise the timeout"):
        compile_regex(heavy, vocab, timeout=0.05)
    grammar, _ = compile_regex("(yes|no)" + uuid.uuid4().hex[:4], vocab, timeout=30)
    assert grammar.min_tokens() >= 1


# ------------------------------------------------------------------ extraction API
def test_extract_returns_a_dict_for_a_shipped_schema(tiny):
    for name in shipped_schema_names():
        value = extract("Ann Lee, ann@example.com, paid 20 EUR on 2024-05-01.", name, tiny)
        assert isinstance(value, dict)
        validates(shipped_schema(name), value)


def test_extract_returns_an_instance_for_a_pydantic_model(tiny):
    value = extract("Ann is 31 and likes green.", Person, tiny, max_tokens=120)
    assert isinstance(value, Person)


def test_extract_rejects_a_missing_schema_file(tiny):
    with pytest.raises(UserError, match="neither a file nor a shipped schema"):
        extract("text", "no/such/schema.json", tiny)
