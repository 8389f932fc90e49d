"""The schema features the README advertises, on both grammar engines, with random weights.

`engine="auto"` is the default path (llguidance, its sound rewrites of the keywords it
refuses, the regex compiler's regex masked by llguidance); `engine="regex"` is the regex
compiler with an outlines-core automaton alone. For every feature and engine, hot samples
from the random-weight tiny model must validate against the *original* schema (with
format checks), which is the whole claim: random weights are the worst case.
"""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest

from agent import SamplingParams, generate_structured
from agent.constrained import compile_output, resolve_output_type, target_for
from agent.constrained.completion import Plan
from agent.constrained.json_lexer import JsonLexState
from agent.constrained.masks import PackedMaskCache, allowed, bias, pack, unpack_ids
from agent.structured import compile_output_type
from schemas.narrow import narrow_for_llguidance, rewrite_refused

PROMPT = [{"role": "user", "content": "JSON please."}]

FEATURES = {
    "not": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "secret": {"type": "string"},
            "size": {"type": ["integer", "string"], "not": {"type": "string"}},
        },
        "required": ["name", "size"],
        "not": {"required": ["secret"]},
    },
    "if-then-else": {
        "type": "object",
        "properties": {"country": {"enum": ["US", "CA"]}, "postal": {"type": "string"}},
        "required": ["country", "postal"],
        "additionalProperties": False,
        "if": {"properties": {"country": {"const": "US"}}},
        "then": {"properties": {"postal": {"pattern": "^[0-9]{5}$"}}},
        "else": {"properties": {"postal": {"pattern": "^[A-Z][0-9][A-Z] [0-9][A-Z][0-9]$"}}},
    },
    "oneOf-exclusive": {
        "type": "object",
        "properties": {
            "radius": {"type": "number"},
            "width": {"type": "number"},
            "height": {"type": "number"},
        },
        "additionalProperties": False,
        "oneOf": [{"required": ["radius"]}, {"required": ["width", "height"]}],
    },
    "dependentRequired": {
        "type": "object",
        "properties": {"card": {"type": "string"}, "billing": {"type": "string"}},
        "additionalProperties": False,
        "dependentRequired": {"card": ["billing"]},
    },
    "dependencies-schema": {
        "type": "object",
        "properties": {"unit": {"enum": ["c", "f"]}, "value": {"type": "integer"}},
        "additionalProperties": False,
        "dependencies": {"value": {"required": ["unit"]}},
    },
    "propertyNames": {
        "type": "object",
        "properties": {"ab": {"type": "integer"}, "XY": {"type": "integer"}},
        "propertyNames": {"pattern": "^[a-z]+$"},
    },
    "uniqueItems": {
        "type": "array",
        "items": {"enum": ["a", "b", "c"]},
        "uniqueItems": True,
        "minItems": 2,
    },
    "ref-recursion": {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 8},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["name"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    },
    "formats": {
        "type": "object",
        "properties": {
            name: {"type": "string", "format": name}
            for name in ("date-time", "email", "uuid", "ipv4", "uri", "hostname")
        },
        "required": ["date-time", "email", "uuid", "ipv4", "uri", "hostname"],
        "additionalProperties": False,
    },
    "pattern": {"type": "string", "pattern": r"^[A-Z]{2}-\d{3}$"},
}


def _validate(schema: dict, value: object) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize("engine", ["auto", "regex"])
@pytest.mark.parametrize("feature", list(FEATURES))
def test_feature_outputs_validate_on_both_engines(tiny, feature, engine):
    schema = FEATURES[feature]
    compiled = compile_output_type(tiny, schema, engine=engine)
    if engine == "regex":
        assert compiled.engine == "regex"
    for seed in range(3):
        result = generate_structured(
            tiny, PROMPT, schema, max_tokens=160, engine=engine,
            sampling=SamplingParams(temperature=1.0, seed=seed),
        )  # fmt: skip
        assert result.stats.grammar_engine == compiled.engine
        _validate(schema, result.value)


def test_default_path_serves_refused_keywords_without_the_automaton(tiny):
    """What llguidance refuses is rewritten soundly or served by the regex compiler's
    regex under llguidance masks; the slow automaton is not needed for these."""
    routes = {name: compile_output_type(tiny, s).route for name, s in FEATURES.items()}
    assert routes["pattern"] == routes["formats"] == routes["ref-recursion"] == "llguidance"
    for name in ("not", "if-then-else", "oneOf-exclusive", "dependentRequired", "propertyNames"):
        assert routes[name] == "llguidance-rewrite", (name, routes[name])
    assert routes["uniqueItems"] == "regex+llguidance"
    # A negation with no sound llguidance rewrite goes to the regex compiler.
    not_enum = {"enum": ["a", "b", "c"], "not": {"enum": ["a", "b"]}}
    assert compile_output_type(tiny, not_enum).route == "regex+llguidance"


# ------------------------------------------------------------------ rewrites
def test_rewrites_only_narrow(tiny):
    """Each rewrite generates values of the original schema; here checked exhaustively
    on small cases with the rewritten schema's own validator."""
    rewritten = rewrite_refused(FEATURES["oneOf-exclusive"])
    assert "oneOf" not in json.dumps(rewritten)
    circle, rect = {"radius": 1}, {"width": 1, "height": 2}
    both = {"radius": 1, "width": 1, "height": 2}
    validator = jsonschema.Draft202012Validator(rewritten)
    original = jsonschema.Draft202012Validator(FEATURES["oneOf-exclusive"])
    for value in (circle, rect, both, {}, {"width": 1}):
        if validator.is_valid(value):
            assert original.is_valid(value), value
    assert validator.is_valid(circle) and validator.is_valid(rect)
    assert not validator.is_valid(both)


NEGATIONS = [
    {"not": {}},
    {"not": True},
    {"not": {"description": "anything"}},
    {"not": False},
    {"not": {"type": "string"}},
    {"not": {"type": ["integer", "null"]}},
    {"not": {"required": ["a"]}},
    {"not": {"required": ["a", "b"]}},
    {"not": {"required": ["a"], "properties": {"a": {"const": 1}}}},
    {"not": {"anyOf": [{"required": ["a"]}, {"type": "string"}]}},
    {"type": ["object", "string"], "not": {"required": ["a"]}},
]
SAMPLES = [None, True, 0, 1, 2.5, "", "x", [], [1], {}, {"a": 1}, {"a": 2}, {"b": 1},
           {"a": 1, "b": 1}, {"c": "x"}]  # fmt: skip


@pytest.mark.parametrize("schema", NEGATIONS, ids=lambda s: json.dumps(s))
def test_negation_rewrites_only_narrow_and_are_exact_where_promised(schema):
    rewritten = rewrite_refused(schema)
    assert "not" not in json.dumps(rewritten)
    original = jsonschema.Draft202012Validator(schema)
    narrowed = jsonschema.Draft202012Validator(rewritten)
    kept = [v for v in SAMPLES if narrowed.is_valid(v)]
    assert all(original.is_valid(v) for v in kept), kept
    negated = schema["not"]
    plain = negated in ({}, True, False) or (
        isinstance(negated, dict) and set(negated) <= {"required", "description"}
    )
    if plain:  # nothing but `required` (or nothing at all): the rewrite is exact
        assert kept == [v for v in SAMPLES if original.is_valid(v)]


def _people(items: dict) -> dict:
    """A recursive definition: a person's friends are people."""
    return {
        "$defs": {
            "person": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "friends": {"$ref": "#/$defs/people"}},
            },
            "people": {"type": "array", "items": items},
        },
    }


EXACT_REWRITES = {
    # `type` beside references that already declare it
    "redundant type": _people({"type": "object", "anyOf": [{"$ref": "#/$defs/person"}]})
    | {"$ref": "#/$defs/person"},
    # a declared property with the same schema as the pattern matching its name
    "pattern duplicate": _people({"$ref": "#/$defs/person"})
    | {
        "type": "object",
        "properties": {
            "by": {"$ref": "#/$defs/people", "description": "authors"},
            "n": {"type": "integer"},
        },
        "patternProperties": {"^[a-z]*$": {"$ref": "#/$defs/people"}},
        "required": ["by"],
    },
}
SAMPLES_REFS = [
    {}, {"name": "a"}, {"name": "a", "friends": [{"name": "b"}]}, {"friends": [3]},
    {"by": []}, {"by": [{"name": "x"}]}, {"by": [1]}, {"by": "x"},
    {"by": [], "n": 1}, {"by": [], "n": "1"}, {"by": [], "other": [{"friends": []}]},
    {"by": [], "other": 5}, {"by": [], "OTHER": 5}, "text", 3, [],
]  # fmt: skip


@pytest.mark.parametrize("name", list(EXACT_REWRITES))
def test_reference_rewrites_are_exact_and_llguidance_takes_them(name):
    from llguidance import LLMatcher

    from agent.constrained.select import _json_grammar

    schema = EXACT_REWRITES[name]
    rewritten = rewrite_refused(schema)
    assert LLMatcher.validate_grammar(_json_grammar(schema, ""))  # refused as written
    assert not LLMatcher.validate_grammar(_json_grammar(rewritten, ""))
    original = jsonschema.Draft202012Validator(schema)
    narrowed = jsonschema.Draft202012Validator(rewritten)
    for value in SAMPLES_REFS:
        assert narrowed.is_valid(value) == original.is_valid(value), value


def test_negations_without_a_sound_rewrite_are_left_for_the_regex_compiler():
    for schema in ({"not": {"enum": [1, 2]}}, {"not": {"$ref": "#/$defs/x"}, "$defs": {"x": {}}},
                   {"not": {"type": "string", "maxLength": 3}}):  # fmt: skip
        assert rewrite_refused(schema) == schema


def test_oneof_branches_that_cannot_be_told_apart_are_not_rewritten():
    schema = {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]}
    assert rewrite_refused(schema) == schema  # left to the regex compiler


def test_narrowing_turns_formats_into_sound_patterns_and_bounds_numbers():
    narrowed = narrow_for_llguidance(
        {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date"},
                "n": {"type": "integer"},
                "big": {"type": "number", "minimum": 1e20},
                "x": {"not": {"type": "string", "format": "email"}},
                "unknown": {"type": "string", "format": "made-up"},
            },
        }
    )
    props = narrowed["properties"]
    assert "format" not in props["when"] and props["when"]["pattern"].startswith("^(?:")
    assert props["n"]["maximum"] == 10**15 and props["n"]["minimum"] == -(10**15)
    assert "maximum" not in props["big"]  # a bound would empty the range
    assert props["x"]["not"] == {"type": "string", "format": "email"}  # never under `not`
    assert "format" not in props["unknown"]


# ------------------------------------------------------------------ budget
@pytest.mark.parametrize("engine", ["auto", "regex"])
def test_tight_budgets_always_finish(tiny, engine):
    """At every budget from the shortest output up, outputs complete and validate."""
    schema = FEATURES["formats"] | {"required": ["email", "uuid"]}
    compiled = compile_output_type(tiny, schema, engine=engine)
    shortest = compiled.grammar.min_tokens()
    for budget in range(shortest, shortest + 12, 3):
        result = generate_structured(
            tiny, PROMPT, schema, max_tokens=budget, engine=engine,
            sampling=SamplingParams(temperature=1.0, seed=budget),
        )  # fmt: skip
        assert result.stats.generated_tokens <= budget
        assert result.stats.finish_reason == "stop"
        _validate(schema, result.value)


def test_a_long_required_value_entered_late_still_fits(tiny):
    """An optional property whose value needs many tokens may only be started while
    it still fits: the plan check refuses it near the end of the budget."""
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 40, "maxLength": 40},
        },
        "required": ["a"],
        "additionalProperties": False,
    }
    for seed in range(8):
        result = generate_structured(
            tiny, PROMPT, schema, max_tokens=30, engine="llguidance",
            sampling=SamplingParams(temperature=1.0, seed=seed),
        )  # fmt: skip
        assert result.stats.generated_tokens <= 30
        _validate(schema, result.value)


def test_numbers_stay_parseable_with_random_weights(tiny):
    """Free-form values: numbers are capped so every output parses back to finite
    values, however long the budget."""
    schema = {"type": "array", "items": {"type": "number"}}
    for seed in range(3):
        result = generate_structured(
            tiny, PROMPT, schema, max_tokens=200,
            sampling=SamplingParams(temperature=1.0, seed=seed),
        )  # fmt: skip
        for value in result.value:
            assert np.isfinite(value)
            assert len(repr(value)) < 40


# ------------------------------------------------------------------ masks and pieces
def test_packed_masks_become_the_same_bias():
    ids = [0, 1, 31, 32, 33, 1000, 100_269]
    words = pack(ids, 100_270)
    assert unpack_ids(words).tolist() == ids
    assert np.flatnonzero(np.array(bias(words, 100_270)) == 0).tolist() == ids
    wider = np.array(bias(words, 100_300))  # ids past the words are disallowed
    assert np.flatnonzero(wider == 0).tolist() == ids
    assert all(allowed(words, i) for i in ids) and not allowed(words, 2)


def test_masked_logits_are_never_sampled_and_stay_finite():
    import mlx.core as mx

    from agent.runtime import apply_logit_bias

    width = 1000
    logits = mx.array(np.random.default_rng(0).normal(size=(1, width)).astype(np.float32))
    words = pack([3, 500], width)
    masked = apply_logit_bias(logits, bias(words, width))
    assert bool(mx.isfinite(masked).all().item())
    assert int(mx.argmax(masked, axis=-1).item()) in (3, 500)
    draws = mx.random.categorical(masked, num_samples=2000, key=mx.random.key(0))
    assert set(np.array(draws).ravel().tolist()) <= {3, 500}


def test_mask_cache_stays_within_its_byte_budget():
    cache = PackedMaskCache(max_bytes=10_000)
    for key in range(20):
        cache.put(key, np.zeros(1000, dtype=np.uint32))  # 4,000 bytes each
    assert cache.nbytes <= 10_000
    assert cache.get(19) is not None and cache.get(0) is None


def test_regex_engine_masks_share_the_process_budget(tiny):
    from agent.constrained import masks

    before = masks.MASK_CACHE.max_bytes
    try:
        masks.MASK_CACHE.max_bytes = 4096
        for seed in range(2):
            generate_structured(
                tiny, PROMPT, {"type": "array", "items": {"type": "string"}}, max_tokens=40,
                engine="regex", sampling=SamplingParams(temperature=1.0, seed=seed),
            )  # fmt: skip
            assert masks.MASK_CACHE.nbytes <= 4096
    finally:
        masks.MASK_CACHE.max_bytes = before


def test_json_lexer_tracks_values_keys_and_numbers():
    state = JsonLexState().after(b'{"name":"Ann')
    assert state.in_string and not state.in_key and state.in_value
    key = JsonLexState().after(b'{"na')
    assert key.in_string and key.in_key and not key.in_value
    escaped = JsonLexState().after(b'["a\\u00')
    assert escaped.in_string and not escaped.in_value  # mid-escape: not a place to end
    number = JsonLexState().after(b"[12345")
    assert number.in_value and number.number_chars == 5
    assert number.bytes_to_value_end(b"6,7") == 2
    assert JsonLexState().after(b"[" + b"9" * 30).number_too_long


def test_plan_follows_tokens_of_its_own_bytes():
    plan = Plan(b'","b":1}', [10, 11, 12])
    assert plan.after(10, b'","').data == b'b":1}'  # type: ignore[union-attr]
    assert plan.after(99, b'"').data == b',"b":1}'  # type: ignore[union-attr]
    assert plan.after(99, b"x") is None


def test_every_mask_respects_special_tokens(tiny):
    """Structural tokens never appear inside constrained output, on either engine."""
    target = target_for(tiny)
    special = sorted(tiny.vocabulary.special_ids - tiny.eos_token_ids)
    spec = resolve_output_type({"type": "string"})
    for engine in ("llguidance", "regex"):
        constraint = compile_output(spec, target, engine=engine).grammar.start()
        constraint.advance(tiny.tokenizer.encode('"', add_special_tokens=False)[0])
        words = constraint.packed_mask(100)
        allowed = set(unpack_ids(words).tolist())
        assert not allowed & set(special), engine
        assert len(allowed) > 100  # inside a string nearly everything is allowed


def test_regex_output_types_use_llguidance(tiny):
    result = generate_structured(
        tiny, PROMPT, ["alpha", "beta"], max_tokens=8, sampling=SamplingParams(1.0, seed=1)
    )
    assert result.value in ("alpha", "beta") and result.stats.grammar_engine == "llguidance"
    from agent import Regex

    pattern = r"[a-z]{2,4}@[a-z]{2,5}\.(com|org)"
    result = generate_structured(
        tiny, PROMPT, Regex(pattern), max_tokens=20, sampling=SamplingParams(1.0, seed=2)
    )
    assert re.fullmatch(pattern, result.value)


# Patterns whose literal part comes after a wildcard: greedy planning alone goes round in
# circles inside the wildcard (these shapes are from JSONSchemaBench schemas that fell
# through to the automaton and took 2-37 s to compile before hints existed).
WILDCARD_PATTERNS = {
    "literal after lazy wildcard": r"^(.*?)\.alfred3?workflow$",
    "unanchored suffix": r"\.[a-zA-Z]{2,3}$",
    "alternation with a literal": r"^(([0-9]|[1-9][0-9])\.){3}[0-9]|0\.0\.0\.0\/0$",
    "literal after a required wildcard": r"^application\/vnd\.stone-romfile\..+-resource",
    "alternating classes": (
        r"^[_a-z0-9-]+(\.[_a-z0-9-]+)*@[_a-z0-9-]+(\.[_a-z0-9-]+)*(\.[a-z]{2,3})$"
    ),
    "a long counted class, unanchored": r"\d+-[A-Fa-f0-9]*-[A-Fa-f0-9]{24}",
}


@pytest.mark.parametrize("name", list(WILDCARD_PATTERNS))
def test_patterns_behind_wildcards_are_planned_by_llguidance(tiny, name):
    pattern = WILDCARD_PATTERNS[name]
    schema = {
        "type": "object",
        "properties": {"value": {"type": "string", "pattern": pattern}},
        "required": ["value"],
        "additionalProperties": False,
    }
    compiled = compile_output_type(tiny, schema)
    assert compiled.route == "llguidance"  # not the slow automaton
    # The plan (the shortest way the grammar knows to finish) is itself a valid value.
    assert re.search(pattern, json.loads(compiled.grammar.plan.data.decode())["value"])
    shortest = compiled.grammar.min_tokens()
    for seed, budget in enumerate((shortest, shortest + 4, 60)):
        result = generate_structured(
            tiny, PROMPT, schema, max_tokens=budget,
            sampling=SamplingParams(temperature=1.0, seed=seed),
        )  # fmt: skip
        assert result.stats.generated_tokens <= budget
        _validate(schema, result.value)
        assert re.search(pattern, result.value["value"])


def test_pattern_witnesses_match_their_patterns():
    from agent.constrained.hints import pattern_witness, witness_runs

    for pattern in WILDCARD_PATTERNS.values():
        witness = pattern_witness(pattern)
        assert witness is not None and re.search(pattern, witness), pattern
    assert witness_runs(r"^(.*?)\.alfred3?workflow$") == [".alfredworkflow"]
    assert witness_runs(r"\.[a-zA-Z]{2,3}$") == [".aa"]
    assert pattern_witness(r"(?=a)b") is None  # look-arounds are not followed


def test_an_integer_type_beside_a_number_reference_is_kept():
    schema = {
        "$defs": {"n": {"type": "number"}},
        "type": "object",
        "properties": {"x": {"type": "integer", "anyOf": [{"$ref": "#/$defs/n"}]}},
        "oneOf": [{"required": ["x"]}, {"required": ["y"]}],  # a rewrite runs
    }
    rewritten = rewrite_refused(schema)
    assert rewritten["properties"]["x"].get("type") == "integer"
    assert not jsonschema.Draft202012Validator(rewritten).is_valid({"x": 1.5})


def test_optional_recursion_is_planned_by_closing_objects(tiny):
    # Every property optional, one of them the object itself: a plan that opens a
    # property at each `{` recurses without end, and the request fell to the regex
    # route (recursion unrolled to a fixed depth, so narrower than the schema).
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/node"}, "name": {"type": "string"}},
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    }
    compiled = compile_output_type(tiny, schema)
    assert compiled.route == "llguidance"
    assert json.loads(compiled.grammar.plan.data) == {}
    for seed in range(3):
        result = generate_structured(
            tiny, PROMPT, schema, max_tokens=24, sampling=SamplingParams(1.0, seed=seed)
        )
        assert result.stats.generated_tokens <= 24
        _validate(schema, result.value)


def test_pattern_hints_come_from_the_schema_and_whole_witnesses_first():
    from agent.constrained.hints import MAX_HINTS, schema_hints

    date = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
    long_literals = {
        f"url{i}": {"type": "string", "pattern": f"^https://example.org/api/{'x' * 20}{i}/.+$"}
        for i in range(6)
    }
    schema = {
        "type": "object",
        "properties": {
            **long_literals,
            "due": {
                "type": "string",
                "pattern": date,
                # An annotation of a form library, not a pattern of the output.
                "form": {"validation": {"pattern": "Should be in the ISO 8601 format"}},
            },
        },
    }
    hints = schema_hints(schema)
    assert len(hints) <= MAX_HINTS
    assert b"0000-01-01" in hints  # not crowded out by longer literal runs
    assert not any(b"ISO 8601" in hint for hint in hints)


def test_a_required_date_behind_many_literal_patterns_is_planned_by_llguidance(tiny):
    date = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"  # unanchored start: a wildcard
    properties = {
        f"url{i}": {"type": "string", "pattern": f"^https://example.org/api/{'x' * 20}{i}/.+$"}
        for i in range(6)
    }
    properties["due"] = {"type": "string", "pattern": date}
    schema = {"type": "object", "properties": properties, "required": ["due"]}
    compiled = compile_output_type(tiny, schema)
    assert compiled.route == "llguidance"
    assert re.search(date, json.loads(compiled.grammar.plan.data)["due"])


def test_a_required_list_whose_first_key_recurses_is_planned(tiny):
    # Headers with optional sub-headers, at least one item, and the recursive key first
    # in byte order: a plan that takes the first key nests without end.
    schema = {
        "definitions": {
            "headers": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "headers": {"$ref": "#/definitions/headers"},
                        "id": {"type": "string"},
                        "text": {"type": "string"},
                    },
                    "required": ["id", "text"],
                    "additionalProperties": False,
                },
            }
        },
        "type": "object",
        "properties": {"headers": {"$ref": "#/definitions/headers"}},
        "required": ["headers"],
        "additionalProperties": False,
    }
    compiled = compile_output_type(tiny, schema)
    assert compiled.route == "llguidance"
    plan = json.loads(compiled.grammar.plan.data)
    _validate(schema, plan)
    assert "headers" not in plan["headers"][0]
    result = generate_structured(
        tiny, PROMPT, schema, max_tokens=compiled.grammar.min_tokens() + 8,
        sampling=SamplingParams(1.0, seed=0),
    )  # fmt: skip
    _validate(schema, result.value)
