"""Property tests: for generated schemas and tool registries, every output validates.

Hypothesis builds schemas from the keywords real schemas use (nested objects with
required and optional properties, arrays with counts, strings with lengths, formats
and patterns, numbers with ranges and multipleOf, enums, const, anyOf/oneOf/allOf,
$ref into $defs, and the keywords llguidance refuses and the default path rewrites or
hands to the regex compiler: `not`, `if/then/else`, dependencies, `propertyNames`,
`oneOf` told apart by required properties). Each is compiled for the random-weight tiny
model on each engine path and sampled hot under a drawn budget. The claim under test:
the result validates (jsonschema with format checks) within the budget, or the call
fails before generating with a schema or budget error.
"""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import BudgetTooSmallError, SamplingParams, generate_structured
from schemas.errors import SchemaCompileError

PROMPT = [{"role": "user", "content": "JSON please."}]
NAMES = st.sampled_from(["id", "name", "tags", "price", "when", "ok", "kind", "note"])
FORMATS = st.sampled_from(["date", "date-time", "email", "uuid", "ipv4", "time", "uri"])
PATTERNS = st.sampled_from([r"^[a-z]+$", r"^[A-Z]{2}-\d{3}$", r"^(red|green)$", r"^\w+@\w+$"])


def _strings() -> st.SearchStrategy[dict]:
    def build(lo: int, extra: int, fmt: str | None, pattern: str | None) -> dict:
        schema: dict = {"type": "string"}
        if fmt:
            return {**schema, "format": fmt}
        if pattern:
            return {**schema, "pattern": pattern}
        return {**schema, "minLength": lo, "maxLength": lo + extra}

    return st.builds(
        build,
        st.integers(0, 5),
        st.integers(0, 12),
        st.none() | FORMATS,
        st.none() | PATTERNS,
    )


def _numbers() -> st.SearchStrategy[dict]:
    def build(kind: str, lo: int | None, span: int, multiple: int | None) -> dict:
        schema: dict = {"type": kind}
        if lo is not None:
            schema["minimum"] = lo
            schema["maximum"] = lo + span * (multiple or 1)
        if multiple:
            schema["multipleOf"] = multiple if kind == "integer" else multiple / 4
        return schema

    return st.builds(
        build,
        st.sampled_from(["integer", "number"]),
        st.none() | st.integers(-1000, 1000),
        st.integers(1, 500),
        st.none() | st.integers(2, 7),
    )


LEAVES = st.one_of(
    _strings(),
    _numbers(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(st.text(max_size=6) | st.integers(-9, 9), min_size=1, max_size=4, unique=True).map(
        lambda values: {"enum": values}
    ),
    st.integers(-5, 5).map(lambda v: {"const": v}),
)


def _extend(children: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    def obj(props: dict, required: list[str], extra: bool, min_props: int) -> dict:
        schema: dict = {
            "type": "object",
            "properties": props,
            "required": [k for k in required if k in props],
            "additionalProperties": extra,
        }
        if min_props:
            schema["minProperties"] = min(min_props, len(props))
        return schema

    def arr(items: dict, lo: int, extra: int, unique: bool) -> dict:
        schema = {"type": "array", "items": items, "minItems": lo, "maxItems": lo + extra}
        if unique and items.get("type") in ("integer", "string"):
            schema["uniqueItems"] = True
        return schema

    return st.one_of(
        st.builds(
            obj,
            st.dictionaries(NAMES, children, max_size=4),
            st.lists(NAMES, max_size=3, unique=True),
            st.booleans(),
            st.integers(0, 2),
        ),
        st.builds(arr, children, st.integers(0, 2), st.integers(0, 3), st.booleans()),
        st.lists(children, min_size=2, max_size=3).map(lambda s: {"anyOf": s}),
        st.tuples(children, children).map(
            lambda pair: {"oneOf": [{**pair[0], "title": "a"}, {"type": "null"}]}
        ),
        children.map(lambda s: {"allOf": [s, {"description": "merged"}]}),
        st.builds(_refused_keywords, children, children, st.sampled_from(_REFUSED)),
        st.lists(children, min_size=1, max_size=3).map(
            lambda s: {"type": "array", "prefixItems": s, "items": False, "minItems": len(s)}
        ),
    )


_REFUSED = ("not-type", "not-required", "if", "dependent", "names", "one-of-required")


def _refused_keywords(a: dict, b: dict, kind: str) -> dict:
    """An object using one keyword llguidance refuses (the default path must still
    serve it soundly, by a rewrite or through the regex compiler)."""
    props = {"p": a, "q": b, "r": {"type": "integer"}}
    base: dict = {"type": "object", "properties": props, "additionalProperties": False}
    if kind == "not-type":
        return base | {"properties": props | {"r": {"type": ["integer", "string"],
                                                     "not": {"type": "string"}}}}  # fmt: skip
    if kind == "not-required":
        return base | {"not": {"required": ["q"]}}
    if kind == "if":
        return base | {"required": ["r"], "if": {"properties": {"r": {"minimum": 0}}},
                       "then": {"required": ["p"]}, "else": {"required": ["q"]}}  # fmt: skip
    if kind == "dependent":
        return base | {"dependentRequired": {"p": ["q"]}}
    if kind == "names":
        return base | {"additionalProperties": True, "propertyNames": {"pattern": "^[pr]$"}}
    return base | {"oneOf": [{"required": ["p"]}, {"required": ["q", "r"]}]}


_TREES = st.recursive(LEAVES, _extend, max_leaves=6)
# $defs live at the root (a nested "#/$defs/..." would point at the root's, not its own).
SCHEMAS = _TREES | st.tuples(_TREES, _TREES).map(
    lambda pair: (
        {"$defs": {"item": pair[0]}, "type": "array", "items": {"$ref": "#/$defs/item"}}
        | ({} if pair[1].get("type") != "object" else {"maxItems": 3})
    )
)


def _validate(schema: dict, value: object) -> None:
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize("engine", ["auto", "regex"])
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schema=SCHEMAS, seed=st.integers(0, 2**16), budget=st.integers(8, 256))
def test_every_output_validates(tiny, engine, schema, seed, budget):
    try:
        result = generate_structured(
            tiny,
            PROMPT,
            schema,
            max_tokens=budget,
            engine=engine,
            sampling=SamplingParams(temperature=1.0, seed=seed),
        )
    except (SchemaCompileError, BudgetTooSmallError):
        return  # refused before generating: allowed by the contract, never invalid
    _validate(schema, result.value)
    assert result.stats.generated_tokens <= budget


def test_generated_schemas_mostly_compile(tiny):
    """The property above must not pass by refusing: most generated schemas compile."""
    compiled = refused = 0

    @settings(max_examples=60, deadline=None, derandomize=True, database=None)
    @given(schema=SCHEMAS)
    def count(schema):
        nonlocal compiled, refused
        from agent.structured import compile_output_type

        try:
            compile_output_type(tiny, schema)
            compiled += 1
        except SchemaCompileError:
            refused += 1

    count()
    assert compiled >= 0.8 * (compiled + refused), (compiled, refused)


# ------------------------------------------------------------------ tool registries
TOOL_NAMES = st.sampled_from(["search", "weather", "add", "book_flight", "note", "convert"])


def _tools() -> st.SearchStrategy[list[dict]]:
    def definition(name: str, props: dict, required: list[str]) -> dict:
        return {
            "type": "function",
            "function": {
                "name": name,
                "description": f"The {name} tool.",
                "parameters": {
                    "type": "object",
                    "properties": props,
                    "required": [k for k in required if k in props],
                },
            },
        }

    one = st.builds(
        definition,
        TOOL_NAMES,
        st.dictionaries(NAMES, _TREES, max_size=3),
        st.lists(NAMES, max_size=2, unique=True),
    )
    return st.lists(one, min_size=1, max_size=4, unique_by=lambda d: d["function"]["name"])


@pytest.mark.parametrize("engine", ["auto", "regex"])
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(definitions=_tools(), seed=st.integers(0, 2**16), slack=st.integers(0, 40))
def test_every_sampled_tool_call_parses_and_validates(tiny, engine, definitions, seed, slack):
    """A required call step over a random registry: the call block always parses into
    calls of registered tools whose arguments validate, within the step's budget."""
    from agent.call_constraint import CallTokens, ToolCallConstraint, compile_call_grammar
    from agent.tool_parser import parse_output
    from tools import ToolRegistry

    registry = ToolRegistry()
    registry.add_definitions(definitions)
    tokens = CallTokens.for_model(tiny)
    assert tokens is not None
    try:
        grammar = compile_call_grammar(tiny, tokens, registry.call_schema(), engine=engine)
    except SchemaCompileError:
        return  # refused before generating
    constraint = ToolCallConstraint(tokens, mode="required", call_grammar=grammar)
    budget = constraint.call_cost() + slack
    tiny.reset_cache()
    result = tiny.generate(
        "<|im_start|>user\nDo it.<|im_end|>\n<|im_start|>assistant\n",
        max_tokens=budget,
        constraint=constraint,
        sampling=SamplingParams(temperature=1.0, seed=seed),
    )
    assert len(result.token_ids) <= budget
    assert result.token_ids[-1] == tokens.call_end
    calls = parse_output(result.text, bare=False).calls
    assert calls
    for call in calls:
        assert call.error is None, call
        assert registry[call.name].validation_errors(call.arguments) == [], call
