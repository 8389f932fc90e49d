"""Property tests: for generated schemas, every constrained output validates.

Hypothesis builds schemas from the keywords real schemas use (nested objects with
required and optional properties, arrays with counts, strings with lengths, formats
and patterns, numbers with ranges and multipleOf, enums, const, anyOf/oneOf/allOf,
$ref into $defs). Each is compiled for the random-weight tiny model and sampled hot.
The claim under test: the result validates (jsonschema with format checks), or the
call fails before generating with a schema error.
"""

from __future__ import annotations

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import SamplingParams, generate_structured
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
        st.lists(children, min_size=1, max_size=3).map(
            lambda s: {"type": "array", "prefixItems": s, "items": False, "minItems": len(s)}
        ),
    )


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


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schema=SCHEMAS, seed=st.integers(0, 2**16))
def test_every_output_validates(tiny, schema, seed):
    try:
        result = generate_structured(
            tiny,
            PROMPT,
            schema,
            max_tokens=256,
            sampling=SamplingParams(temperature=1.0, seed=seed),
        )
    except SchemaCompileError:
        return  # refused before generating: allowed by the contract, never invalid
    _validate(schema, result.value)
    assert result.stats.generated_tokens <= 256


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
