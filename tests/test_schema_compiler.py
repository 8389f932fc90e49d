"""The schema layer's coverage features, checked on the regex it emits.

`accepts` runs the regex through outlines-core itself (the engine that builds the
token index), so these tests see exactly the language the decoder will enforce.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from agent import SamplingParams, generate_structured
from schemas.compiler import schema_to_regex, schema_to_regex_for_vocab
from schemas.errors import UnsupportedSchemaError
from schemas.regex_ast import clamp_length, content_length_bounds
from schemas.regex_check import accepts


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_tagged_union_without_required_tags_is_made_disjoint():
    schema = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"kind": {"const": "a"}, "a": {"type": "boolean"}},
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"kind": {"const": "b"}, "b": {"type": "boolean"}},
                "additionalProperties": False,
            },
        ]
    }
    regex = schema_to_regex(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({})  # {} matches both branches...
    assert not accepts(regex, "{}")  # ...so the grammar never emits it
    for value in ({"kind": "a", "a": True}, {"b": False}, {"kind": "b", "b": True}):
        assert validator.is_valid(value)
        assert accepts(regex, compact(value)), value


@pytest.mark.parametrize(
    ("fragment", "low", "high"),
    [("[a-z0-9_.]+", 0, 12), ("[A-Z]{2}-[0-9]+", 4, 8), ("[a-z]+@[a-z]+", 3, 12), ("x*", 2, 5)],
)
def test_clamp_length_stays_inside_pattern_and_bounds(fragment, low, high):
    clamped = clamp_length(fragment, low, high)
    assert clamped is not None
    lo, hi = content_length_bounds(clamped)
    assert lo >= low and hi is not None and hi <= high
    # A sub-language: the clamped regex only accepts strings the pattern accepts.
    for sample in ("ab_1", "AB-12345", "ab@cd", "xxx", "a" * 13, ""):
        if accepts(f'"{clamped}"', f'"{sample}"'):
            assert accepts(f'"{fragment}"', f'"{sample}"')
            assert low <= len(sample) <= high


def test_clamp_length_refuses_what_it_cannot_narrow():
    assert clamp_length("[a-z]{5}", 0, 3) is None  # fixed length over the maximum
    assert clamp_length("a|bc", 0, 1) is None  # top-level alternation


def test_pattern_with_max_length_compiles_to_the_intersection():
    schema = {"type": "string", "pattern": "^[a-zA-Z0-9_\\.]+$", "maxLength": 12}
    regex = schema_to_regex(schema)
    assert accepts(regex, '"abc.def_123"')
    assert not accepts(regex, '"' + "a" * 13 + '"')
    assert not accepts(regex, '"a b"')


def test_unbounded_integers_stay_parseable():
    regex = schema_to_regex({"type": "integer"})
    assert accepts(regex, "-" + "9" * 15)
    assert not accepts(regex, "1" * 16)  # would lose precision in float64 parsers


def test_fractional_multiple_of_without_bounds_is_narrowed_soundly():
    schema = {"type": "number", "multipleOf": 1.5}
    regex = schema_to_regex(schema)
    assert accepts(regex, "4.5") and accepts(regex, "0")
    assert not accepts(regex, "2")


def test_deep_recursion_falls_back_to_fewer_unrollings():
    node = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 8},
            "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 8},
            "left": {"$ref": "#/$defs/node"},
            "right": {"$ref": "#/$defs/node"},
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    schema = {"$defs": {"node": node}, "$ref": "#/$defs/node"}
    regex = schema_to_regex_for_vocab(schema, 1024)
    assert accepts(regex, '{"name":"a","left":{"name":"b"}}')


def test_size_error_names_the_construct_when_nothing_fits():
    huge = {"type": "object", "properties": {f"p{i}": {"$ref": "#"} for i in range(60)}}
    with pytest.raises(UnsupportedSchemaError) as info:
        schema_to_regex_for_vocab(huge, 1024)
    assert info.value.construct in {"size", "anyOf/oneOf"}


def test_long_fixed_length_strings_compile_quickly(tiny):
    """36 counted characters once blew the index builder up exponentially."""
    schema = {"type": "string", "minLength": 36, "maxLength": 36}
    result = generate_structured(
        tiny,
        [{"role": "user", "content": "id?"}],
        schema,
        max_tokens=80,
        compile_timeout=20,
        sampling=SamplingParams(temperature=1.0, seed=3),
    )
    assert len(result.value) == 36


@pytest.mark.parametrize(
    "words",
    [["body", "bodyValue"], ["b"], ["a-b", "a]", "^x", ""], ["", "x"], ["é", "日本"]],
)
def test_json_string_except_accepts_every_key_but_the_words(words):
    from schemas.regex_builder import json_string_except

    regex = json_string_except(words)
    probes = {w + tail for w in [*words, "bod", "zz"] for tail in ("", "x", "-", "]")}
    probes |= {w[:-1] for w in words if w}
    for key in sorted(probes):
        assert accepts(regex, json.dumps(key, ensure_ascii=False)) == (key not in words), key
    assert not accepts(regex, r'"\u0062"')  # escapes could spell a forbidden word


def test_not_required_forbids_the_key_in_an_open_object():
    # `not: {required: [a, b]}`: an object may have a or b, never both. The compiler
    # forbids the last one; free keys must not spell it (a maskbench schema caught it).
    schema = {"type": "object", "not": {"required": ["body", "bodyValue"]}}
    regex = schema_to_regex(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert accepts(regex, '{"body":"x"}')
    assert accepts(regex, '{"bodyValu":1,"bodyValuex":2}')
    for value in ({"body": "x", "bodyValue": None}, {"bodyValue": 1}):
        assert not accepts(regex, compact(value))
    assert not validator.is_valid({"body": "x", "bodyValue": None})
