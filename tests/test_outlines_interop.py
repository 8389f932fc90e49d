"""Outlines interop: Outlines' own `Generator` drives edge-agent models, and Outlines'
output types work in edge-agent's API, the Agent, `serve` and the CLI.

Every output is checked against its type by something other than the engine that made
it: pydantic validation, `re.fullmatch`, a Lark parser with the same grammar, JSON
Schema validation, membership. The tiny model has random weights, so its preferences
are the worst case for a grammar.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import subprocess
import sys
from typing import Literal

import jsonschema
import outlines
import outlines.grammars
import outlines.types as ot
import pytest
from lark import Lark
from outlines.generator import BlackBoxGenerator
from outlines.inputs import Chat
from pydantic import BaseModel, Field, TypeAdapter
from typing_extensions import TypedDict

from agent import Agent, BudgetTooSmallError, extract, generate_structured
from agent.constrained.output_types import CFG as EdgeCFG
from agent.constrained.output_types import resolve_output_type
from agent.integrations.outlines import EdgeAgentOutlinesModel, from_edge_agent
from schemas.errors import SchemaCompileError

SEEDS = (0, 1)
PROMPT = "Describe a person."
# A small grammar of nested lists: recursive, so only a plan proves it can finish.
LISTS = r"""
start: list
list: "[" [item ("," item)*] "]"
item: NUMBER | list
NUMBER: /[0-9]{1,3}/
"""


class Person(BaseModel):
    name: str = Field(max_length=20)
    age: int = Field(ge=0, le=120)


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Flags(TypedDict):
    ok: bool


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def lark_parses(grammar: str, text: str) -> bool:
    Lark(grammar, parser="earley").parse(text)
    return True


# (id, output type, the check every output must pass)
CASES = [
    ("pydantic", Person, lambda t: Person.model_validate_json(t)),
    ("dataclass", Point, lambda t: TypeAdapter(Point).validate_json(t)),
    ("typeddict", Flags, lambda t: TypeAdapter(Flags).validate_json(t)),
    ("literal", Literal["yes", "no"], lambda t: t in ("yes", "no")),
    ("enum", Color, lambda t: t in ("red", "green")),
    ("int", int, lambda t: re.fullmatch(r"[+-]?(0|[1-9][0-9]*)", t)),
    ("bool", bool, lambda t: t in ("True", "False")),
    ("dict", dict, lambda t: json.loads(t) is not None or t == "null"),
    (
        "json-schema",
        ot.JsonSchema({"type": "array", "items": {"type": "integer"}, "maxItems": 3}),
        lambda t: (
            jsonschema.validate(
                json.loads(t), {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
            )
            is None
        ),
    ),
    (
        "regex",
        ot.Regex(r"[A-Z][a-z]{2,5}-[0-9]{2}"),
        lambda t: re.fullmatch(r"[A-Z][a-z]{2,5}-[0-9]{2}", t),
    ),
    ("email", ot.email, lambda t: re.fullmatch(ot.email.pattern, t)),
    ("date", ot.date, lambda t: re.fullmatch(ot.date.pattern, t)),
    ("ipv4", ot.ipv4, lambda t: re.fullmatch(ot.ipv4.pattern, t)),
    ("uuid4", ot.uuid4, lambda t: re.fullmatch(ot.uuid4.pattern, t)),
    ("dsl", ot.either("yes", ot.one_or_more(ot.digit)), lambda t: re.fullmatch(r"yes|\d+", t)),
    ("choice", ot.Choice(["alpha", "beta"]), lambda t: t in ("alpha", "beta")),
    ("choices-list", ["left", "right"], lambda t: t in ("left", "right")),
    (
        "cfg-arithmetic",
        ot.CFG(outlines.grammars.arithmetic),
        lambda t: lark_parses(outlines.grammars.arithmetic, t),
    ),
    ("cfg-lists", ot.CFG(LISTS), lambda t: lark_parses(LISTS, t)),
]


@pytest.fixture(scope="module")
def model(tiny):
    return from_edge_agent(tiny)


def test_outlines_sees_a_black_box_model(model):
    # Outlines routes the output type to the model itself, not to its logits processors.
    assert isinstance(model, outlines.models.base.Model)
    assert isinstance(model, outlines.models.BlackBoxModel)  # type: ignore[arg-type]
    assert not isinstance(model, outlines.models.SteerableModel)  # type: ignore[arg-type]
    assert isinstance(outlines.Generator(model, Person), BlackBoxGenerator)


@pytest.mark.parametrize(
    ("output_type", "check"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_output_type_through_outlines_generator(model, tiny, output_type, check):
    generator = outlines.Generator(model, output_type)
    for seed in SEEDS:
        tiny.reset_cache()
        text = generator(PROMPT, max_tokens=48, temperature=1.0, seed=seed)
        assert isinstance(text, str) and check(text), text
        tiny.reset_cache()
        streamed = list(generator.stream(PROMPT, max_tokens=48, temperature=1.0, seed=seed))
        assert len(streamed) >= 1 and "".join(streamed) == text  # same seed, same text


def test_a_grammar_finishes_within_a_small_budget(model, tiny):
    """The budget guarantee holds for a recursive grammar: whatever the model prefers,
    the output parses, however few tokens it may take."""
    generator = outlines.Generator(model, ot.CFG(LISTS))
    for max_tokens in (3, 4, 6, 10):  # `[]` and the end: 3
        for seed in SEEDS:
            text = generator(PROMPT, max_tokens=max_tokens, temperature=1.5, seed=seed)
            assert lark_parses(LISTS, text), text
            hot = dataclasses.replace(tiny.default_sampling, temperature=1.5, seed=seed)
            messages = [{"role": "user", "content": PROMPT}]  # what chat_mode makes of it
            result = generate_structured(tiny, messages, EdgeCFG(LISTS), max_tokens=max_tokens,
                                         sampling=hot)  # fmt: skip
            assert result.text == text  # the same request, the same output
            assert result.stats.generated_tokens <= max_tokens


def test_a_grammar_that_cannot_finish_is_refused_before_generating(model):
    never_ends = 'start: x\nx: "a" x\n'
    with pytest.raises(SchemaCompileError, match="no way to finish"):
        outlines.Generator(model, ot.CFG(never_ends))(PROMPT, max_tokens=50)


def test_a_budget_below_the_shortest_output_is_refused(model):
    long_word = ot.CFG('start: "' + "abcdefghij" * 8 + '"\n')
    with pytest.raises(BudgetTooSmallError, match="max_tokens"):
        outlines.Generator(model, long_word)(PROMPT, max_tokens=3)


def test_unsupported_output_types_give_one_line_naming_the_type(model):
    with pytest.raises(TypeError) as caught:
        outlines.Generator(model, complex)(PROMPT, max_tokens=5)
    message = str(caught.value)
    assert "complex" in message and "\n" not in message
    with pytest.raises(TypeError, match="do not take stop"):
        outlines.Generator(model, int)(PROMPT, max_tokens=5, stop=["x"])


def test_chat_input_and_batch(model, tiny):
    generator = outlines.Generator(model, Literal["up", "down"])
    chat = Chat([{"role": "user", "content": "Which way?"}])
    assert generator(chat, max_tokens=5, seed=1) in ("up", "down")
    assert all(t in ("up", "down") for t in generator.batch(["a", "b"], max_tokens=5, seed=1))
    unconstrained = outlines.Generator(model)(PROMPT, max_tokens=6, seed=1)
    assert isinstance(unconstrained, str) and unconstrained
    raw = from_edge_agent(tiny, chat_mode=False)
    assert raw.type_adapter.format_input("Hi") == "Hi"
    assert model.type_adapter.format_input("Hi") == [{"role": "user", "content": "Hi"}]


def test_from_edge_agent_takes_specs_models_and_engines(tiny):
    from agent.engines.local import LocalChatModel

    assert from_edge_agent(tiny).model is tiny
    assert from_edge_agent(LocalChatModel.for_model(tiny)).model is tiny
    assert isinstance(from_edge_agent("tiny"), EdgeAgentOutlinesModel)
    with pytest.raises(Exception, match=r"outlines\.from_openai"):
        from_edge_agent(object())


def test_llama_cpp_engine_runs_the_same_program():
    from agent.errors import ModelUnavailableError
    from agent.llamacpp import is_available

    if not is_available():
        pytest.skip("llama.cpp is not installed")
    try:
        model = from_edge_agent("smollm2", engine="llama.cpp")
    except ModelUnavailableError as exc:
        pytest.skip(f"SmolLM2 not available: {exc}")
    assert model.model.info.path.endswith(".gguf")
    person = outlines.Generator(model, Person)("Ann is 31.", max_tokens=60, seed=1)
    Person.model_validate_json(person)
    arithmetic = outlines.grammars.arithmetic
    chunks = list(outlines.Generator(model, ot.CFG(arithmetic)).stream("1+1=", max_tokens=12))
    assert lark_parses(arithmetic, "".join(chunks))


# ---------------------------------------------------------------- edge-agent's own API
def test_structured_api_takes_outlines_types_and_grammars(tiny):
    messages = [{"role": "user", "content": "An email and a sum, please."}]
    result = generate_structured(tiny, messages, ot.email, max_tokens=40)
    assert re.fullmatch(ot.email.pattern, result.value) and result.value == result.text
    result = generate_structured(tiny, messages, EdgeCFG(LISTS), max_tokens=20)
    assert lark_parses(LISTS, result.value) and result.stats.grammar_engine == "llguidance"
    schema = ot.JsonSchema(Person)
    result = generate_structured(tiny, messages, schema, max_tokens=60)
    Person.model_validate(result.value)
    with pytest.raises(Exception, match="regex engine reads only regular"):
        generate_structured(tiny, messages, EdgeCFG(LISTS), max_tokens=20, engine="regex")


def test_edge_agent_keeps_its_own_meaning_of_python_types():
    # Literal is a JSON value in edge-agent's API, the bare text through Outlines.
    assert resolve_output_type(Literal["a", "b"]).kind == "json"
    assert from_edge_agent.__module__ == "agent.integrations.outlines"


def test_extract_takes_a_regex_a_grammar_and_choices(tiny):
    text = "Order 66 shipped on 2024-05-01 to Rome."
    assert re.fullmatch(ot.date.pattern, extract(text, ot.date, tiny, max_tokens=20))
    assert extract(text, ["Rome", "Paris"], tiny, max_tokens=8) in ("Rome", "Paris")
    assert lark_parses(LISTS, extract(text, EdgeCFG(LISTS), tiny, max_tokens=16))


def test_agent_response_format_takes_outlines_types(tiny):
    for output_type, check in (
        (ot.Regex(r"[0-9]{2,4}"), lambda v: re.fullmatch(r"[0-9]{2,4}", v)),
        (ot.CFG(LISTS), lambda v: lark_parses(LISTS, v)),
        (ot.JsonSchema({"type": "object", "properties": {"n": {"type": "integer"}},
                        "required": ["n"], "additionalProperties": False}),
         lambda v: isinstance(v["n"], int)),
    ):  # fmt: skip
        tiny.reset_cache()
        run = Agent(tiny, response_format=output_type, max_tokens=60).run("Answer.")
        assert run.stopped_by is None, run.final
        assert check(run.output), run.output


# ---------------------------------------------------------------- serve
def test_serve_takes_outlines_vllm_structured_outputs(tiny):
    """`outlines.from_vllm` sends regexes, grammars and choices as vLLM's
    `structured_outputs`; `edge-agent serve` honours them."""
    from openai import OpenAI

    from agent.engines.local import LocalChatModel
    from agent.server import ServerConfig
    from agent.server.serve import serve_in_background

    tiny.reset_cache()
    with serve_in_background(LocalChatModel.for_model(tiny), ServerConfig()) as server:
        client = OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=120)
        model = outlines.from_vllm(client, "tiny")
        for output_type, check in (
            (ot.Regex(r"[a-z]{3}-[0-9]{3}"), lambda t: re.fullmatch(r"[a-z]{3}-[0-9]{3}", t)),
            (Literal["north", "south"], lambda t: t in ("north", "south")),
            (ot.CFG(LISTS), lambda t: lark_parses(LISTS, t)),
            (Person, Person.model_validate_json),
        ):
            text = outlines.Generator(model, output_type)(PROMPT, max_tokens=60, seed=2)
            assert check(text), text
        import httpx

        reply = httpx.post(
            f"{server.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 5,
                  "structured_outputs": {"regex": "a+", "choice": ["b"]}},
            timeout=60,
        )  # fmt: skip
        assert reply.status_code == 400 and "exactly one" in reply.text
        reply = httpx.post(
            f"{server.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 5,
                  "response_format": {"type": "json_object"},
                  "structured_outputs": {"regex": "a+"}},
            timeout=60,
        )  # fmt: skip
        assert reply.status_code == 400 and "not both" in reply.text
        reply = httpx.post(
            f"{server.url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 5,
                  "structured_outputs": {"grammar": 'start: x\nx: "a" x'}},
            timeout=60,
        )  # fmt: skip
        assert reply.status_code == 400 and "no way to finish" in reply.text
    tiny.reset_cache()


# ---------------------------------------------------------------- CLI
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "extract", "--model", "tiny", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


TEXT = "Maria Rossi was born on 1990-04-12 in Rome."


def test_cli_regex_grammar_and_choice_print_the_matched_text(tiny, tmp_path):
    grammar = tmp_path / "lists.lark"
    grammar.write_text(LISTS, encoding="utf-8")
    for args, check in (
        (["--regex", r"[0-9]{4}-[0-9]{2}-[0-9]{2}"],
         lambda t: re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", t)),
        (["--grammar", str(grammar), "--max-tokens", "12"], lambda t: lark_parses(LISTS, t)),
        (["--choice", "Rome, Paris ,Oslo"], lambda t: t in ("Rome", "Paris", "Oslo")),
    ):  # fmt: skip
        proc = run_cli(*args, "--text", TEXT)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout.removesuffix("\n")
        assert check(out), out
        assert "(llguidance" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--regex", "(?<=a)b"], "cannot read the regex"),
        (["--grammar", "/no/such.lark"], "does not exist"),
        (["--grammar", "@EMPTY"], "is empty"),
        (["--grammar", "@BAD"], "cannot read the grammar"),
        (["--choice", "a,,b"], "non-empty choices"),
        (["--choice", "a,a"], "twice"),
        (["--regex", "[0-9]+", "--indent", "2"], "--indent"),
        (["--regex", "x", "--choice", "a,b"], "not allowed with"),
        ([], "one of the arguments"),
    ],
)
def test_cli_bad_output_flags_exit_2_in_one_line(tmp_path, args, needle):
    empty, bad = tmp_path / "empty.lark", tmp_path / "bad.lark"
    empty.write_text("  \n", encoding="utf-8")
    bad.write_text('start: "a" (\n', encoding="utf-8")
    args = [str(empty) if a == "@EMPTY" else str(bad) if a == "@BAD" else a for a in args]
    proc = run_cli(*args, "--text", TEXT)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Loading" not in proc.stderr  # no model load
