"""Hostile schemas: each compiles or ends in a one-line UserError, within a memory cap.

The cases of the hardening issue: a wide object (1,000 optional properties once took
7.8 GB on the regex route), a pattern demanding a million characters, a bound near the
float limit that was called unsatisfiable, nesting past llguidance's recursion limit.
Memory is checked in a child process under `resource.setrlimit` (see `memory_cap`).
"""

from __future__ import annotations

import json
import sys

import jsonschema
import pytest
from memory_cap import MIB, run_capped

from agent.constrained import compile_output, resolve_output_type, target_for
from agent.errors import UserError
from schemas.compiler import SchemaTooLarge, schema_to_regex, schema_to_regex_for_vocab
from schemas.regex_check import accepts


def wide(n: int) -> dict:
    return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(n)}}


def nested_objects(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


@pytest.mark.parametrize("engine", ["auto", "llguidance", "regex"])
def test_1000_optional_properties_compile_or_are_refused_within_200_mb(tiny, engine):
    result = run_capped(
        setup="""
            from agent import load_model
            from agent.constrained import compile_output, resolve_output_type, target_for
            from agent.errors import UserError
            target = target_for(load_model("tiny"))
            target.llg_tokenizer  # built once per model, before the cap
        """,
        body=f"""
            schema = {{"type": "object",
                      "properties": {{f"p{{i}}": {{"type": "string"}} for i in range(1000)}}}}
            try:
                compiled = compile_output(resolve_output_type(schema), target, engine="{engine}")
                result = {{"route": compiled.route}}
            except UserError as exc:
                result = {{"error": type(exc).__name__, "message": str(exc)}}
        """,
        allowance=200 * MIB,
    )
    if engine == "regex":  # refused from its size estimate, before any automaton
        assert result["error"] == "SchemaTooLarge"
        assert "use the llguidance engine" in result["message"]
        assert "\n" not in result["message"]
    else:
        assert result == {"route": "llguidance"}


def test_wide_object_refused_for_the_automaton_from_its_estimate(tiny):
    target = target_for(tiny)
    spec = resolve_output_type(wide(1000))
    with pytest.raises(SchemaTooLarge, match="automaton would need about 26,891 states"):
        compile_output(spec, target, engine="regex")
    # The same object, narrow enough: compiled on the regex route.
    assert compile_output(resolve_output_type(wide(20)), target, engine="regex").route == "regex"


def test_wide_object_refused_from_its_names_before_the_regex_is_built():
    """With a 100k vocabulary the names alone are over the limit: no value is compiled."""
    with pytest.raises(SchemaTooLarge, match="property names alone need over 7,890"):
        schema_to_regex_for_vocab(wide(1000), 100_000)
    assert schema_to_regex_for_vocab(wide(100), 100_000).startswith(r"\{")


def test_regex_of_a_wide_object_is_linear_in_its_properties():
    """Optional members were quadratic in memory (every suffix of the object was kept)."""
    small, large = len(schema_to_regex(wide(100))), len(schema_to_regex(wide(400)))
    assert large < 5 * small


def test_pattern_of_a_million_characters_is_refused(tiny):
    schema = {"type": "string", "pattern": "^a{1000000}$"}
    for engine in ("auto", "regex"):
        with pytest.raises(UserError, match="at least 1,000,000 characters") as info:
            compile_output(resolve_output_type(schema), target_for(tiny), engine=engine)
        assert "\n" not in str(info.value)
    nested = {"type": "string", "pattern": "^(?:ab{100}){200}$"}  # 20,200 characters
    with pytest.raises(UserError, match="at least 20,200 characters"):
        schema_to_regex(nested)


def test_minimum_near_the_float_limit_is_satisfiable(tiny):
    schema = {
        "type": "object",
        "properties": {"n": {"type": "number", "minimum": 1e308}},
        "required": ["n"],
    }
    jsonschema.validate({"n": 1e308}, schema)  # the reason it must not be "unsatisfiable"
    compiled = compile_output(resolve_output_type(schema), target_for(tiny))
    assert compiled.route.startswith("regex")
    regex = schema_to_regex(schema)
    big = str(15 * 10**307)
    assert accepts(regex, '{"n":' + big + "}")
    jsonschema.validate(json.loads('{"n":' + big + "}"), schema)
    below = str(10**308)  # below float(1e308), which is 1.00000000000000001e308
    assert not accepts(regex, '{"n":' + below + "}")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads('{"n":' + below + "}"), schema)
    assert accepts(regex, '{"n":' + str(17 * 10**307) + "}")
    above = str(int(sys.float_info.max) * 10)  # past the largest finite number: not made
    assert not accepts(regex, '{"n":' + above + "}")


def test_nesting_past_llguidance_recursion_limit_is_one_line(tiny):
    schema = nested_objects(63)  # 126 levels of JSON: under our limit, over llguidance's
    spec = resolve_output_type(schema)
    with pytest.raises(UserError, match="nested this deeply") as info:
        compile_output(spec, target_for(tiny), engine="llguidance")
    assert "\n" not in str(info.value)
    assert "recursion limit exceeded" in str(info.value)
    # The default path turns to the regex engine, which reads it.
    assert compile_output(spec, target_for(tiny)).route.startswith("regex")


@pytest.mark.parametrize("levels", [150, 400])
def test_deeper_nesting_is_refused_before_any_engine(tiny, levels):
    with pytest.raises(UserError, match="nests deeper than the limit of 128 levels") as info:
        compile_output(resolve_output_type(nested_objects(levels)), target_for(tiny))
    assert "\n" not in str(info.value)


def test_schema_check_is_inside_the_compile_deadline(tiny):
    """Meta-validation of 10,000 properties takes seconds: a short deadline refuses it
    in one line instead of waiting it out (it once ran before the deadline started)."""
    with pytest.raises(UserError, match=r"checking the schema took more than 0\.05 s") as info:
        compile_output(resolve_output_type(wide(10_000)), target_for(tiny), timeout=0.05)
    assert "\n" not in str(info.value)


def test_enum_of_100000_strings_compiles_on_the_default_path(tiny):
    schema = {"enum": [f"value-{i}" for i in range(100_000)]}
    assert compile_output(resolve_output_type(schema), target_for(tiny)).route == "llguidance"


def test_an_object_too_large_for_llguidance_is_refused_as_such(tiny):
    """Past llguidance's symbol limit (about 12,000 optional properties, before its row
    limit of 50,000 items), the refusal says the grammar is too large, not that it may
    be unsatisfiable, and not a Rust assertion's text."""
    from llguidance import LLMatcher

    from agent.constrained.llg import compile_llguidance

    target = target_for(tiny)
    grammar = LLMatcher.grammar_from_json_schema(json.dumps(wide(13_000)))
    with pytest.raises(UserError, match=r"too large for llguidance \(over 65,000 symbols\)"):
        compile_llguidance(target, grammar, target.eos_ids, json_output=True, timeout=120)
