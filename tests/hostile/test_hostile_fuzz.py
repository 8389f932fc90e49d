"""Property-based fuzzing: any tool arguments through the registry, and any model output
through the call parser, end in a result or an error result, never an exception; any
JSON value given as a schema compiles or is a one-line UserError; any document is
indexed or skipped with a reason.

Bounded (`max_examples`, no deadline) so the suite is the same on a loaded machine.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.constrained import compile_output, resolve_output_type, target_for
from agent.errors import UserError
from agent.retriever import ingest, open_index
from agent.tool_parser import CALL_END, CALL_START, parse_output, parse_payload
from schemas.compiler import schema_to_regex
from tools import ToolRegistry, tool
from tools.builtin.calculator import calculator
from tools.calls import ToolCall

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


@tool
def typed(count: int, names: list[str], options: dict[str, float] | None = None) -> str:
    """A tool with typed parameters."""
    return f"{count}:{len(names)}:{len(options or {})}"


REGISTRY = ToolRegistry([typed, calculator])


@FUZZ
@given(
    name=st.sampled_from(["typed", "calculator", "missing"]) | st.text(max_size=10),
    arguments=json_values | st.text(max_size=200) | st.binary(max_size=50),
)
def test_any_arguments_give_a_result(name, arguments):
    calls = [ToolCall("x", name, arguments), ToolCall("ok", "typed", {"count": 1, "names": []})]
    results = asyncio.run(REGISTRY.execute_many(calls))
    assert [r.call_id for r in results] == ["x", "ok"]
    assert results[1].content == "1:0:0"
    first = results[0]
    assert first.ok or (first.error and first.content == f"Error: {first.error}")


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


payloads = (
    st.text(max_size=300)
    | st.text(alphabet='[]{}(),:"=\\ abcf0123.-', max_size=300)
    | st.integers(min_value=0, max_value=20_000).map(_nested)
    | st.builds(lambda v: f"f(x={v})", st.text(max_size=40))
)


@FUZZ
@given(payload=payloads)
def test_any_model_output_parses_to_calls_or_errors(payload):
    for calls in (
        parse_payload(payload),
        parse_output(payload).calls,
        parse_output(f"text {CALL_START}{payload}{CALL_END} more").calls,
        parse_output(f"{CALL_START}{payload}").calls,
    ):
        for call in calls:
            assert isinstance(call.name, str)
            assert call.error is None or "\n" not in call.error
            assert isinstance(call.arguments, dict)


# -- schemas through the compiler ----------------------------------------------------

KEYWORDS = [
    "type", "properties", "items", "required", "enum", "const", "anyOf", "allOf", "oneOf",
    "not", "minimum", "maximum", "exclusiveMinimum", "multipleOf", "minLength", "maxLength",
    "pattern", "format", "$ref", "additionalProperties", "minItems", "maxItems", "if",
    "then", "else", "$defs", "prefixItems", "uniqueItems", "patternProperties",
    "propertyNames", "dependentRequired", "minProperties", "maxProperties", "contains",
]  # fmt: skip
WEIRD_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 5e-324, 0.1, 10**400, 2**53 + 1])
    | st.sampled_from(["string", "object", "array", "integer", "number", "boolean", "null"])
    | st.sampled_from(["^a{1000000}$", "(", "[z-a]", "\\", "^(a|b)*c$", "(?=x)", "#/$defs/a"])
    | st.sampled_from(["date-time", "email", "uuid", "#", "#/properties/a", "x"])
    | st.text(max_size=12)
)
hostile_schemas = st.recursive(
    WEIRD_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYWORDS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=30,
).filter(lambda s: isinstance(s, (dict, bool)))


@pytest.fixture(scope="module")
def tiny_target(tiny):
    return target_for(tiny)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema=hostile_schemas)
def test_any_schema_compiles_or_is_a_one_line_user_error(schema, tiny_target):
    """The regex compiler, and the default path on a model: a grammar or a UserError."""
    try:
        regex = schema_to_regex(schema)
        assert isinstance(regex, str)
    except UserError as exc:
        assert "\n" not in str(exc)
    try:
        compiled = compile_output(resolve_output_type(schema), tiny_target, timeout=5)
        assert compiled.route
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)


# -- documents through ingest ---------------------------------------------------------

documents = st.tuples(
    st.sampled_from(["txt", "md", "py", "html", "pdf", "json"]),
    st.binary(max_size=3000)
    | st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | st.sampled_from([b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF", b"<html><script>", b"\xef\xbb\xbf"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=documents)
def test_any_document_is_indexed_or_skipped_with_a_reason(document, tmp_path_factory):
    kind, data = document
    root = tmp_path_factory.mktemp("docs")
    path = root / f"doc.{kind}"
    path.write_bytes(data)
    summary = ingest([path], root / "index")
    reasons = dict(summary.skipped)
    assert summary.added + len(reasons) == 1
    if reasons:
        assert "\n" not in reasons[str(path)] and reasons[str(path)]
    else:
        with open_index(root / "index") as index:
            assert index.counts()["documents"] == 1
