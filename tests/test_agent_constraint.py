"""The step constraint on the random-weight tiny model: calls always parse and validate,
free text never forges structure, and the budget never truncates a call."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from agent.call_constraint import CallTokens, ToolCallConstraint, compile_call_grammar
from agent.constrained.masks import bias, pack, unpack_ids
from agent.sampling import SamplingParams
from agent.structured import compile_output_type
from agent.tool_parser import CALL_END, CALL_START, parse_output
from tools import ToolRegistry, tool


@tool
def weather(city: Literal["Paris", "Oslo"], unit: Literal["c", "f"] = "c") -> str:
    """Weather in a city."""
    return f"{city}: 20{unit}"


@tool
def note(text: str) -> str:
    """Save a note."""
    return "saved"


REGISTRY = ToolRegistry([weather, note])
PROMPT = "<|im_start|>user\nWhat is the weather?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module", params=["mlx", "llama.cpp"])
def model(tiny, request):
    """The random-weight tiny model on each runtime: MLX's LFM2-MoE, and llama.cpp's
    tiny GGUF (same tokenizer, LFM2's call tokens and template)."""
    if request.param == "mlx":
        return tiny
    from agent.llamacpp import is_available
    from agent.loader import load_model

    if not is_available():
        pytest.skip('llama.cpp is not installed: pip install -e ".[llama-cpp]"')
    return load_model("tiny", engine="llama.cpp", reuse=True)


@pytest.fixture(scope="module", params=["llguidance", "regex"])
def call_parts(model, request):
    """The call grammar on each grammar engine: every guarantee must hold on both."""
    tokens = CallTokens.for_model(model)
    assert tokens is not None
    grammar = compile_call_grammar(model, tokens, REGISTRY.call_schema(), engine=request.param)
    assert grammar.engine == request.param
    return tokens, grammar


def _allowed(constraint, budget):
    return _allowed_words(constraint.packed_mask(budget))


def _allowed_words(words):
    return set(unpack_ids(words).tolist())


def _generate(model, constraint, max_tokens, seed):
    model.reset_cache()
    return model.generate(
        PROMPT,
        max_tokens=max_tokens,
        constraint=constraint,
        sampling=SamplingParams(temperature=1.0, seed=seed),
    )


def _validate(calls):
    for call in calls:
        assert call.error is None, call
        tool_ = REGISTRY.get(call.name)
        assert tool_ is not None, call.name
        assert tool_.validation_errors(call.arguments) == [], call


def test_tokens_of_the_lfm2_format(model, call_parts):
    tokens, grammar = call_parts
    assert model.vocabulary.token_bytes[tokens.call_start] == CALL_START.encode()
    assert model.vocabulary.token_bytes[tokens.call_end] == CALL_END.encode()
    assert tokens.call_end in tokens.blocked and tokens.call_start not in tokens.blocked
    assert not tokens.blocked & tokens.eos_ids
    # The grammar's end token is the call's end token, not EOS.
    assert grammar.end_ids == (tokens.call_end,)


@pytest.mark.parametrize("seed", range(4))
def test_required_step_is_exactly_one_valid_call_block(model, call_parts, seed):
    tokens, grammar = call_parts
    constraint = ToolCallConstraint(tokens, mode="required", call_grammar=grammar)
    result = _generate(model, constraint, 120, seed)
    assert result.token_ids[0] == tokens.call_start
    assert result.token_ids[-1] == tokens.call_end
    assert result.stats.finish_reason == "stop"
    parsed = parse_output(result.text, bare=False)
    assert parsed.text == "" and len(parsed.calls) >= 1
    _validate(parsed.calls)
    payload = result.text[len(CALL_START) : -len(CALL_END)]
    assert isinstance(json.loads(payload), list)


@pytest.mark.parametrize("budget_slack", [0, 1, 3])
def test_budget_never_truncates_a_call(model, call_parts, budget_slack):
    tokens, grammar = call_parts
    constraint = ToolCallConstraint(tokens, mode="required", call_grammar=grammar)
    budget = constraint.call_cost() + budget_slack
    result = _generate(model, constraint, budget, seed=budget_slack)
    assert len(result.token_ids) <= budget
    assert result.token_ids[-1] == tokens.call_end
    _validate(parse_output(result.text, bare=False).calls)


def test_call_start_is_offered_only_when_the_call_fits(call_parts):
    tokens, grammar = call_parts
    constraint = ToolCallConstraint(tokens, mode="auto", call_grammar=grammar)
    cost = constraint.call_cost()
    ids_fit = _allowed(constraint, cost)
    ids_short = _allowed(constraint, cost - 1)
    assert tokens.call_start in ids_fit
    assert tokens.call_start not in ids_short
    assert not ids_fit & tokens.blocked
    assert tokens.eos_ids <= ids_short  # free text can always end its turn


def test_none_mode_never_starts_a_call(model, call_parts):
    tokens, _ = call_parts
    constraint = ToolCallConstraint(tokens, mode="none", call_grammar=None)
    assert tokens.call_start not in _allowed(constraint, 10_000)
    result = _generate(model, constraint, 60, seed=0)
    assert not set(result.token_ids) & (tokens.blocked | {tokens.call_start})


def test_auto_mode_calls_are_valid_once_the_model_starts_one(model, call_parts):
    """Force the free model into a call by adding a bias to the call-start token."""
    tokens, grammar = call_parts

    class Biased(ToolCallConstraint):
        """Only the call-start token while it is allowed, on either runtime's mask."""

        def packed_mask(self, budget):
            words = super().packed_mask(budget)
            if self.state == "free" and tokens.call_start in _allowed_words(words):
                return pack([tokens.call_start], len(model.vocabulary))
            return words

        def logit_bias(self, budget, width):
            return bias(self.packed_mask(budget), width)

    constraint = Biased(tokens, mode="auto", call_grammar=grammar)
    result = _generate(model, constraint, 150, seed=1)
    assert constraint.calls >= 1
    _validate(parse_output(result.text, bare=False).calls)


def test_response_format_step_is_a_call_or_the_schema_answer(model, call_parts):
    tokens, grammar = call_parts
    schema = {
        "type": "object",
        "properties": {"answer": {"enum": ["yes", "no"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    compiled = compile_output_type(model, schema, engine=grammar.engine)
    spec, answer = compiled.spec, compiled.grammar
    kinds = set()
    for seed in range(6):
        constraint = ToolCallConstraint(
            tokens, mode="auto", call_grammar=grammar, answer_grammar=answer
        )
        result = _generate(model, constraint, 150, seed)
        assert constraint.is_finished()
        if constraint.calls:
            kinds.add("call")
            assert result.token_ids[0] == tokens.call_start
            _validate(parse_output(result.text, bare=False).calls)
        else:
            kinds.add("answer")
            assert spec.parse(result.text) in ({"answer": "yes"}, {"answer": "no"})
    assert kinds  # at least one step ran; which kind depends on the random weights
