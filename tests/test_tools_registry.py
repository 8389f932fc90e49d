"""@tool schema derivation, definitions (OpenAI, BFCL), the registry and call schemas."""

from __future__ import annotations

import json
import re
import socket
import textwrap
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from agent.errors import UserError
from schemas.compiler import schema_to_regex
from tools import Tool, ToolDefinitionError, ToolLoadError, ToolRegistry, tool


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Point(BaseModel):
    """A point in the plane."""

    x: float
    y: float = 0.0


class Tree(BaseModel):
    """A recursive model: stays a $ref."""

    label: str
    children: list[Tree] = []


# ------------------------------------------------------------------ derivation
def test_types_defaults_and_required():
    @tool
    def f(
        n: int,
        x: float,
        s: str,
        b: bool,
        mode: Literal["fast", "slow"],
        color: Color,
        point: Point,
        tags: list[str],
        weights: dict[str, float],
        limit: int | None = None,
        unit: str = "cm",
        flag: bool = False,
    ) -> None:
        """Do something."""

    p = f.parameters
    props = p["properties"]
    assert p["type"] == "object" and p["additionalProperties"] is False
    assert p["required"] == ["n", "x", "s", "b", "mode", "color", "point", "tags", "weights"]
    assert props["n"] == {"type": "integer"}
    assert props["x"] == {"type": "number"}
    assert props["s"] == {"type": "string"}
    assert props["b"] == {"type": "boolean"}
    assert props["mode"] == {"enum": ["fast", "slow"], "type": "string"}
    assert props["color"] == {"enum": ["red", "green"], "type": "string"}  # inlined
    assert props["point"]["type"] == "object"
    assert props["point"]["required"] == ["x"]
    assert props["point"]["properties"]["y"] == {"default": 0.0, "type": "number"}
    assert props["point"]["description"] == "A point in the plane."
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["weights"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["limit"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert props["unit"] == {"type": "string", "default": "cm"}
    assert props["flag"] == {"type": "boolean", "default": False}
    assert "title" not in json.dumps(p)  # pydantic titles are noise for the model
    jsonschema.Draft202012Validator.check_schema(p)


def test_enum_default_is_written_as_its_value():
    @tool
    def paint(color: Color = Color.GREEN) -> str:
        return color.value

    assert paint.parameters["properties"]["color"]["default"] == "green"


def test_recursive_model_keeps_ref_and_defs():
    @tool
    def grow(tree: Tree) -> int:
        return len(tree.children)

    p = grow.parameters
    assert "Tree" in p["$defs"]
    # Inlined once at the parameter; the recursion itself goes through $defs.
    assert p["properties"]["tree"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    jsonschema.Draft202012Validator.check_schema(p)
    validator = jsonschema.Draft202012Validator(p)
    assert validator.is_valid({"tree": {"label": "a", "children": [{"label": "b"}]}})
    assert not validator.is_valid({"tree": {"label": "a", "children": [{"nolabel": 1}]}})


def test_google_docstring():
    @tool
    def search(query: str, limit: int = 10) -> list[str]:
        """Search the notes.

        Uses the local index only.

        Args:
            query (str): What to look for;
                several words are fine.
            limit: At most this many results.

        Returns:
            The matching titles.
        """
        return []

    assert search.description == "Search the notes.\n\nUses the local index only."
    props = search.parameters["properties"]
    assert props["query"]["description"] == "What to look for; several words are fine."
    assert props["limit"]["description"] == "At most this many results."


def test_numpy_docstring():
    @tool
    def area(width: float, height: float, unit: str = "m") -> float:
        """Area of a rectangle.

        Parameters
        ----------
        width, height : float
            The sides,
            in `unit`.
        unit : str, optional
            Length unit.

        Returns
        -------
        float
        """
        return width * height

    assert area.description == "Area of a rectangle."
    props = area.parameters["properties"]
    assert props["width"]["description"] == "The sides, in `unit`."
    assert props["height"]["description"] == "The sides, in `unit`."
    assert props["unit"]["description"] == "Length unit."


def test_sphinx_docstring_and_annotated_descriptions():
    @tool
    def move(steps: int, direction: Annotated[str, "north, south, east or west"]) -> str:
        """Move the robot.

        :param steps: How far.
        """
        return "ok"

    props = move.parameters["properties"]
    assert move.description == "Move the robot."
    assert props["steps"]["description"] == "How far."
    assert props["direction"]["description"] == "north, south, east or west"


def test_annotated_field_constraints_reach_the_schema():
    @tool
    def pick(n: Annotated[int, Field(ge=1, le=5, description="How many")]) -> int:
        return n

    assert pick.parameters["properties"]["n"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "description": "How many",
    }


def test_overrides_and_options():
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    }

    @tool(
        name="weather", description="Weather now.", schema=schema, timeout=3, requires_approval=True
    )
    def get_weather(city):  # no annotation needed with an explicit schema
        return f"sunny in {city}"

    assert isinstance(get_weather, Tool)
    assert get_weather.name == "weather"
    assert get_weather.description == "Weather now."
    assert get_weather.parameters == schema
    assert get_weather.timeout == 3.0 and get_weather.requires_approval
    assert get_weather("Paris") == "sunny in Paris"  # still callable like the function
    assert get_weather.openai() == {
        "type": "function",
        "function": {"name": "weather", "description": "Weather now.", "parameters": schema},
    }


def test_async_function_is_a_tool():
    @tool
    async def fetch(url: str) -> str:
        """Fetch."""
        return url

    assert fetch.is_async and fetch.parameters["required"] == ["url"]


def test_schema_override_must_match_the_function():
    with pytest.raises(ToolDefinitionError, match=r"tool 'f', parameter 'b': is required"):

        @tool(schema={"type": "object", "properties": {"a": {"type": "string"}}})
        def f(a, b):
            return a

    with pytest.raises(ToolDefinitionError, match=r"parameter 'zzz': is in schema="):

        @tool(schema={"type": "object", "properties": {"a": {}, "zzz": {}}})
        def g(a):
            return a

    with pytest.raises(ToolDefinitionError, match="must describe an object"):

        @tool(schema={"type": "string"})
        def h(a):
            return a

    with pytest.raises(ToolDefinitionError, match="invalid schema="):

        @tool(schema={"type": "object", "properties": {"a": {"type": "strnig"}}})
        def k(a):
            return a


def test_unsupported_annotations_name_tool_and_parameter():
    with pytest.raises(ToolDefinitionError) as info:

        @tool
        def connect(sock: socket.socket, port: int) -> None:
            pass

    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "tool 'connect'" in message and "parameter 'sock'" in message
    assert "socket" in message and "schema=" in message

    with pytest.raises(ToolDefinitionError, match=r"tool 'apply', parameter 'fn'"):

        @tool
        def apply(fn: Callable[[int], int]) -> None:
            pass

    with pytest.raises(ToolDefinitionError, match=r"parameter 'city': has no type annotation"):

        @tool
        def weather(city):
            pass

    with pytest.raises(ToolDefinitionError, match=r"parameter 'values': \*args"):

        @tool
        def total(*values: int) -> int:
            return sum(values)

    with pytest.raises(ToolDefinitionError, match="timeout must be a positive number"):
        tool(name="t", timeout=0)(lambda: None)
    with pytest.raises(ToolDefinitionError, match="tool name"):
        tool(name="has space")(lambda: None)
    with pytest.raises(ToolDefinitionError, match=r"tool '<lambda>'.*pass name="):
        tool(lambda: None)


def test_unresolvable_forward_reference_is_a_definition_error():
    def f(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(ToolDefinitionError, match="tool 'f', parameter 'x': cannot resolve"):
        tool(f)


# ------------------------------------------------------------------ definitions
OPENAI_DEF = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
BFCL_DEF = {
    "name": "spotify.play",
    "description": "Play songs.",
    "parameters": {
        "type": "dict",
        "properties": {
            "artist": {"type": "string"},
            "duration": {"type": "float", "description": "minutes", "default": 1.5},
            "position": {"type": "tuple", "items": {"type": "float"}},
            "extra": {"type": "any"},
            "options": {"type": "HashMap"},
            "ids": {"type": "ArrayList", "items": {"type": "long"}},
            "description": {"type": "String", "optional": True},
        },
        "required": ["artist"],
    },
}


def test_add_definitions_openai_and_bfcl():
    registry = ToolRegistry()
    added = registry.add_definitions([OPENAI_DEF, BFCL_DEF])
    assert [t.name for t in added] == ["get_weather", "spotify.play"]
    assert registry.names() == ["get_weather", "spotify.play"]
    assert registry["get_weather"].parameters == OPENAI_DEF["function"]["parameters"]
    play = registry.get("spotify.play")
    assert play is not None and not play.has_implementation
    p = play.parameters
    assert p["type"] == "object"
    assert p["properties"]["duration"] == {
        "type": "number",
        "description": "minutes",
        "default": 1.5,
    }
    assert p["properties"]["position"] == {"type": "array", "items": {"type": "number"}}
    assert p["properties"]["extra"] == {}
    assert p["properties"]["options"] == {"type": "object"}
    assert p["properties"]["ids"] == {"type": "array", "items": {"type": "integer"}}
    # A *property* called "description" is a property, not the annotation keyword.
    assert p["properties"]["description"] == {"type": "string"}
    assert BFCL_DEF["parameters"]["type"] == "dict"  # the caller's dict is not modified
    assert registry.openai_tools()[1]["function"]["parameters"] == p


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "blob"}}}},
            r"tool 'f', parameter 'x': unknown type name 'blob'",
        ),
        (
            {
                "name": "g",
                "parameters": {
                    "type": "dict",
                    "properties": {"a": {"type": "array", "items": {"type": "Thing"}}},
                },
            },
            r"tool 'g', parameter 'a.items': unknown type name 'Thing'",
        ),
        ({"description": "no name"}, r"needs a non-empty string 'name'"),
        ({"name": "h", "parameters": "x"}, r"tool 'h': 'parameters' must be a JSON object"),
        ({"name": "i", "parameters": {"type": "string"}}, r"tool 'i': 'parameters' must describe"),
        (
            {"name": "j", "parameters": {"type": "dict", "required": "a"}},
            r"tool 'j': invalid parameters schema",
        ),
        ({"name": "bad name", "parameters": {}}, r"tool name"),
        ("not a dict", r"must be a JSON object"),
    ],
)
def test_malformed_definitions(definition, message):
    registry = ToolRegistry()
    with pytest.raises(ToolDefinitionError, match=message) as info:
        registry.add_definitions([OPENAI_DEF, definition])
    assert isinstance(info.value, UserError)
    assert "(definition #1)" in str(info.value)
    assert len(registry) == 0  # nothing added when one definition is bad


def test_registry_contents_and_duplicates():
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    def plain(a: int) -> int:
        """A plain function becomes a tool on registration."""
        return a

    registry = ToolRegistry([ping])
    made = registry.register(plain)
    assert isinstance(made, Tool) and made.description.startswith("A plain function")
    assert "ping" in registry and "plain" in registry and "nope" not in registry
    assert len(registry) == 2 and registry.get("nope") is None
    assert [t.name for t in registry] == ["ping", "plain"]
    with pytest.raises(ToolDefinitionError, match="already registered"):
        registry.register(ping)
    replacement = Tool.from_function(lambda: "p2", name="ping")
    registry.register(replacement, replace=True)
    assert registry["ping"] is replacement
    with pytest.raises(ToolDefinitionError, match="already registered"):
        registry.add_definitions([{"name": "plain", "parameters": {}}])
    sub = registry.subset(["plain"])
    assert sub.names() == ["plain"]
    with pytest.raises(UserError, match="unknown tool"):
        registry.subset(["missing"])


# ------------------------------------------------------------------ call schema
def test_call_schema_shapes_and_validation():
    @tool
    def add(a: int, b: int = 0) -> int:
        """Add."""
        return a + b

    registry = ToolRegistry([add])
    registry.add_definitions([OPENAI_DEF])
    one = registry.call_schema("add")
    assert one == {
        "type": "object",
        "properties": {
            "name": {"const": "add"},
            "arguments": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }
    both = registry.call_schema()
    assert [b["properties"]["name"]["const"] for b in both["anyOf"]] == ["add", "get_weather"]
    # Definitions rarely close their objects; the call schema does, so the model
    # cannot invent arguments.
    weather_args = both["anyOf"][1]["properties"]["arguments"]
    assert weather_args["additionalProperties"] is False
    assert "description" not in json.dumps(both)  # compact: annotations dropped
    v = jsonschema.Draft202012Validator(both)
    assert v.is_valid({"name": "add", "arguments": {"a": 1}})
    assert v.is_valid({"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}})
    assert not v.is_valid({"name": "add", "arguments": {"a": "1"}})
    assert not v.is_valid({"name": "get_weather", "arguments": {"town": "Oslo"}})
    assert not v.is_valid({"name": "other", "arguments": {}})
    assert schema_to_regex(both) and schema_to_regex(one)
    with pytest.raises(UserError, match="unknown tool 'zzz'"):
        registry.call_schema("zzz")
    with pytest.raises(UserError, match="no tools"):
        ToolRegistry().call_schema()


def test_call_schema_of_recursive_models_can_be_embedded_anywhere():
    @tool
    def grow(tree: Tree) -> int:
        return 0

    @tool
    def shrink(tree: Tree, depth: int) -> int:
        return 0

    registry = ToolRegistry([grow, shrink])
    nested = {"label": "a", "children": [{"label": "b", "children": []}]}
    bad_tree = {"label": "a", "children": [{"children": []}]}
    for schema in (registry.call_schema(), registry.call_schema("shrink")):
        # Alone, and as the items of an array of calls (one agent step's payload).
        for wrapped in (schema, {"type": "array", "items": schema, "minItems": 1}):
            v = jsonschema.Draft202012Validator(wrapped)
            good = {"name": "shrink", "arguments": {"tree": nested, "depth": 1}}
            bad = {"name": "shrink", "arguments": {"tree": bad_tree, "depth": 1}}
            if wrapped is schema:
                assert v.is_valid(good) and not v.is_valid(bad)
            else:
                assert v.is_valid([good, good]) and not v.is_valid([good, bad])
            regex = schema_to_regex(wrapped)
            text = json.dumps(good if wrapped is schema else [good], separators=(",", ":"))
            assert re.fullmatch(regex, text)
    args = registry.call_schema("grow")["properties"]["arguments"]
    assert args["$id"] == "urn:edge-agent:tool:grow"


def test_call_schema_compiles_to_a_grammar_for_the_tiny_model(tiny):
    from agent.structured import compile_output_type

    @tool
    def paint(color: Color, point: Point) -> str:
        """Paint a point."""
        return "ok"

    registry = ToolRegistry([paint])
    registry.add_definitions([BFCL_DEF])
    compiled = compile_output_type(tiny, registry.call_schema())
    assert compiled.engine == "llguidance"
    assert compiled.grammar.min_tokens() > 0


ROUTE = {
    "name": "get_traffic_info",
    "description": "Traffic between two places.",
    "parameters": {
        "type": "dict",
        "properties": {
            "start_location": {"type": "string", "description": "Where the trip starts."},
            "end_location": {"type": "string", "description": "Where it ends."},
            "mode": {
                "type": "dict",
                "properties": {"vehicle": {"type": "string"}, "avoid": {"type": "string"}},
                "required": ["vehicle", "avoid"],
            },
        },
        "required": ["start_location", "end_location", "mode"],
    },
}


def _reordered(definition: dict, order: list[str]) -> dict:
    copy = json.loads(json.dumps(definition))
    props = copy["parameters"]["properties"]
    copy["parameters"]["properties"] = {name: props[name] for name in order}
    return copy


def _keys(schema: dict) -> list[str]:
    return list(schema["properties"]["arguments"]["properties"])


def test_definitions_keep_their_property_order():
    """The prompt and the grammar list parameters in the definition's own order (a
    model asked for `end_location` first swaps the cities), nested objects included,
    and a definition with the same content in another order keeps its own order."""
    registry = ToolRegistry()
    registry.add_definitions([ROUTE])
    schema = registry.call_schema()
    assert _keys(schema) == ["start_location", "end_location", "mode"]
    nested = schema["properties"]["arguments"]["properties"]["mode"]["properties"]
    assert list(nested) == ["vehicle", "avoid"]
    listed = registry.openai_tools()[0]["function"]["parameters"]
    assert list(listed["properties"]) == ["start_location", "end_location", "mode"]
    assert list(listed["properties"]["start_location"]) == ["type", "description"]
    other = ToolRegistry()
    other.add_definitions([_reordered(ROUTE, ["mode", "end_location", "start_location"])])
    assert _keys(other.call_schema()) == ["mode", "end_location", "start_location"]
    assert _keys(registry.call_schema()) == ["start_location", "end_location", "mode"]


def test_constrained_calls_follow_each_definitions_order(tiny):
    """Through the agent's call path on one model: the compiled grammar of one order is
    not reused for the same definition in another order."""
    from agent import Agent
    from agent.events import ToolCallEvent

    def first_call_keys(definition: dict) -> list[str]:
        registry = ToolRegistry()
        registry.add_definitions([definition])
        agent = Agent(tiny, registry, tool_choice="required", max_steps=1, max_tokens=80)
        result = agent.run("Traffic from Boston to New York?")
        (call,) = result.of_type(ToolCallEvent)
        raw = agent.messages[1].content
        pairs = json.loads(
            raw[raw.index("[") : raw.rindex("]") + 1], object_pairs_hook=lambda kv: kv
        )
        assert call.name == "get_traffic_info"
        return [key for key, _ in dict(pairs[0])["arguments"]]

    assert first_call_keys(ROUTE) == ["start_location", "end_location", "mode"]
    flipped = _reordered(ROUTE, ["end_location", "mode", "start_location"])
    assert first_call_keys(flipped) == ["end_location", "mode", "start_location"]


# ------------------------------------------------------------------ load_module
def test_load_module(tmp_path):
    module = tmp_path / "my_tools.py"
    module.write_text(
        textwrap.dedent(
            '''
            from __future__ import annotations
            from enum import Enum
            from pydantic import BaseModel
            from tools import tool

            class Size(Enum):
                S = "s"
                L = "l"

            class Order(BaseModel):
                item: str
                size: Size = Size.S

            @tool
            def order(o: Order) -> str:
                """Place an order."""
                return o.item

            @tool(requires_approval=True)
            async def cancel(order_id: int) -> str:
                """Cancel an order."""
                return "cancelled"

            def helper():  # not a tool
                return 1
            '''
        )
    )
    registry = ToolRegistry()
    loaded = registry.load_module(module)
    assert [t.name for t in loaded] == ["order", "cancel"]
    assert registry.names() == ["order", "cancel"]
    assert registry["cancel"].requires_approval
    props = registry["order"].parameters["properties"]["o"]["properties"]
    assert props["size"] == {"enum": ["s", "l"], "type": "string", "default": "s"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, r"does not exist"),
        ("def broken(:\n", r"syntax error at line 1"),
        ("import no_such_module_xyz\n", r"failed to import \(line 1\): ModuleNotFoundError"),
        ("x = 1\nraise RuntimeError('boom')\n", r"\(line 2\): RuntimeError: boom"),
        ("def f():\n    return 1\n", r"defines no tools"),
        (
            "from tools import tool\n@tool\ndef f(x):\n    return x\n",
            r"tool 'f', parameter 'x': has no type annotation",
        ),
    ],
)
def test_load_module_errors(tmp_path, source, message):
    path = tmp_path / "bad_tools.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(ToolLoadError, match=message) as info:
        ToolRegistry().load_module(path)
    assert isinstance(info.value, UserError)
    assert "bad_tools.py" in str(info.value)


def test_load_module_rejects_a_directory(tmp_path):
    with pytest.raises(ToolLoadError, match="is not a file"):
        ToolRegistry().load_module(tmp_path)


def test_a_tool_made_directly_has_its_parameters_checked():
    # Grammars built from a registry skip the meta-schema check, so every way of making
    # a tool must check its parameters.
    with pytest.raises(ToolDefinitionError, match=r"tool 'bad': invalid parameters schema"):
        Tool("bad", "d", {"type": "object", "properties": {"n": {"type": "integr"}}})
    with pytest.raises(ToolDefinitionError, match="must be a JSON Schema object"):
        Tool("bad", "d", ["not", "a", "schema"])  # type: ignore[arg-type]
    ok = Tool("ok", "d", {"type": "object", "properties": {"n": {"type": "integer"}}})
    registry = ToolRegistry([ok])
    from agent.call_constraint import call_output_spec

    spec = call_output_spec(registry.call_schema())
    assert spec.checked and spec.json_schema["items"]["properties"]["name"] == {"const": "ok"}


def test_schema_check_memo_never_passes_an_invalid_schema():
    from schemas.compiler import check_schema
    from schemas.errors import InvalidSchemaError

    good = {"type": "object", "properties": {"n": {"type": "integer"}}}
    bad = {"type": "object", "properties": {"n": {"type": "integr"}}}
    check_schema(good)
    check_schema(good)  # remembered
    for _ in range(2):
        with pytest.raises(InvalidSchemaError):
            check_schema(bad)
