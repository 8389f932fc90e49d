"""Every function definition of the BFCL data set loads into a ToolRegistry and its call
schema compiles to a grammar regex; a sample compiles all the way to a token automaton
for the tiny model.

Data: ../shared/data/bfcl beside the checkout (see its SOURCE.md), or the folder named
by EDGE_AGENT_BFCL_DATA: the BFCL v4 files of the gorilla repository's
`berkeley-function-call-leaderboard/bfcl_eval/data/`, the same files as `bfcl_eval/data/`
in the PyPI wheel `bfcl-eval` (2026.3.23). Without them the tests skip and say how to
get them (`pytest -rs`).

Question files are JSON Lines whose records carry a `function` list;
`multi_turn_func_doc/*.json` hold one definition per line for the multi-turn classes;
`BFCL_v4_format_sensitivity.json` (a single JSON object of test ids) and
`possible_answer/` hold no definitions.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import jsonschema
import pytest
from shared_data import SHARED_DATA

from schemas.compiler import SchemaCompiler, check_schema, schema_to_regex
from tools import ToolRegistry

BFCL = Path(os.environ.get("EDGE_AGENT_BFCL_DATA") or SHARED_DATA / "bfcl")
JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object", "null"}
GET_THE_DATA = (
    f"BFCL v4 data not found at {BFCL}. Get it from the gorilla repository "
    "(github.com/ShishirPatil/gorilla, folder berkeley-function-call-leaderboard/bfcl_eval/"
    "data/) or from the PyPI wheel: `pip download --no-deps bfcl-eval==2026.3.23` and unzip "
    "its bfcl_eval/data/; put the files in ../shared/data/bfcl beside the checkout or set "
    "EDGE_AGENT_BFCL_DATA to their folder"
)

pytestmark = pytest.mark.skipif(
    not (BFCL / "BFCL_v4_simple_python.json").is_file(), reason=GET_THE_DATA
)


def definition_groups() -> list[tuple[str, list[dict]]]:
    """(where, definitions) for every record with functions and every func-doc file."""
    groups: list[tuple[str, list[dict]]] = []
    for path in sorted(BFCL.glob("BFCL_v4_*.json")):
        text = path.read_text(encoding="utf-8")
        if not text.lstrip().startswith("{") or path.name.endswith("format_sensitivity.json"):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if "function" in record:
                groups.append((f"{path.name}:{n} ({record['id']})", record["function"]))
    for path in sorted((BFCL / "multi_turn_func_doc").glob("*.json")):
        lines = path.read_text(encoding="utf-8").splitlines()
        groups.append((path.name, [json.loads(line) for line in lines if line.strip()]))
    return groups


@pytest.fixture(scope="module")
def loaded() -> list[tuple[str, ToolRegistry]]:
    registries = []
    for where, definitions in definition_groups():
        registry = ToolRegistry()
        registry.add_definitions(definitions)  # raises (failing the test) on any bad one
        assert len(registry) == len(definitions), where
        registries.append((where, registry))
    return registries


def _types(schema, found: set) -> None:
    if isinstance(schema, dict):
        if "type" in schema:
            t = schema["type"]
            found.update(t if isinstance(t, list) else [t])
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    _types(sub, found)
            elif key in ("items", "additionalProperties", "not"):
                _types(value, found)
            elif key in ("anyOf", "oneOf", "allOf"):
                for sub in value:
                    _types(sub, found)


def test_every_bfcl_definition_loads_and_compiles(loaded, tiny, capsys):
    from agent.constrained import compile_output, resolve_output_type, target_for

    target = target_for(tiny)
    total = sum(len(r) for _, r in loaded)
    # Identical definitions recur across records; each distinct call schema is checked
    # and compiled once (the result cannot differ for an identical schema).
    distinct: dict[str, tuple[str, str]] = {}
    seen_types: set[str] = set()
    for where, registry in loaded:
        for name in registry.names():
            _types(registry[name].parameters, seen_types)
            schema = registry.call_schema(name)
            distinct.setdefault(json.dumps(schema, sort_keys=True), (where, name))
    failures = []
    for text, (where, name) in distinct.items():
        schema = json.loads(text)
        try:
            check_schema(schema)
            regex = SchemaCompiler(schema).compile()
            assert regex
            spec = resolve_output_type(schema)
            compiled = compile_output(spec, target, engine="llguidance")
            assert compiled.grammar.min_tokens() > 0
        except Exception as exc:  # collect them all: the report names every failure
            failures.append(f"{where} {name}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} call schemas failed:\n" + "\n".join(failures[:20])
    assert seen_types <= JSON_TYPES, seen_types - JSON_TYPES  # every BFCL type name mapped
    assert total == 8888  # SOURCE.md: 8,888 definitions counted with repeats
    with capsys.disabled():
        print(
            f"\nBFCL: {total} function definitions loaded; {len(distinct)} distinct call "
            f"schemas, all compiled by both grammar engines"
        )


def test_bfcl_type_names_are_mapped(loaded):
    """Spot checks of the mapping on known records (dict, float, tuple, any, Java names)."""
    by_name = {}
    for where, registry in loaded:
        for t in registry:
            if "live_irrelevance_646-205-0" in where or t.name not in by_name:
                by_name[t.name] = t
    bmi = by_name["determine_body_mass_index"].parameters
    assert bmi["type"] == "object" and bmi["properties"]["weight"]["type"] == "number"
    auth = by_name["requests.get"].parameters["properties"]["auth"]
    assert auth["type"] == "array" and auth["items"] == {"type": "string"}
    add_default = by_name["default.add_default_value"].parameters["properties"]
    assert "type" not in add_default["default_value"]  # any: no constraint
    ids = by_name["PmsProductServiceImpl.updateNewStatus"].parameters["properties"]["ids"]
    assert ids["type"] == "array" and ids["items"]["type"] == "integer"  # ArrayList<long>
    # An enum of strings on an integer parameter: the enum wins over the declared type.
    adults = by_name["Hotels_2_SearchHouse"].parameters["properties"]["number_of_adults"]
    assert "dontcare" in adults["enum"] and "type" not in adults


def test_record_level_call_schemas_compile(loaded):
    """The anyOf over all tools of a record (what one agent step decodes) compiles and
    accepts a call to each of its tools; a sample of multi-tool records."""
    multi = [(w, r) for w, r in loaded if len(r) > 1]
    rng = random.Random(4)
    for where, registry in rng.sample(multi, 40):
        schema = registry.call_schema()
        assert len(schema["anyOf"]) == len(registry), where
        assert schema_to_regex(schema), where
        validator = jsonschema.Draft202012Validator(schema)
        first = registry.tools()[0]
        required = first.parameters.get("required", [])
        props = first.parameters.get("properties", {})
        if all(r in props and props[r].get("type") == "string" for r in required):
            call = {"name": first.name, "arguments": {r: "x" for r in required}}
            enum_free = all("enum" not in props[r] for r in required)
            if enum_free:
                assert validator.is_valid(call), where
        assert not validator.is_valid({"name": "not-a-tool", "arguments": {}}), where


def test_sample_compiles_to_token_automaton(loaded, tiny):
    """The full path on 20 schemas with the default engine (llguidance) for the tiny
    model's vocabulary; three of them also decode a call that the registry accepts."""
    from agent.sampling import SamplingParams
    from agent.structured import compile_output_type, generate_structured

    rng = random.Random(7)
    sample = rng.sample(loaded, 20)
    decoded = 0
    for i, (where, registry) in enumerate(sample):
        name = rng.choice(registry.names())
        schema = registry.call_schema(name)
        compiled = compile_output_type(tiny, schema)
        spec, grammar = compiled.spec, compiled.grammar
        assert compiled.engine == "llguidance", where
        assert grammar.min_tokens() > 0, where
        assert spec.json_schema["properties"]["name"] == {"const": name}
        if i < 3 and grammar.min_tokens() < 200:
            result = generate_structured(
                tiny, "Call a tool.", schema, max_tokens=400, sampling=SamplingParams(seed=i)
            )
            call = result.value
            assert call["name"] == name, where
            assert registry[name].validation_errors(call["arguments"]) == [], where
            decoded += 1
    assert decoded == 3
