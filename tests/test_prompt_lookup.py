"""Prompt lookup: drafts from earlier text, fed ahead and kept only where the model
would have taken them anyway. The output must not change; the forward passes may."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx_lm.models import llama

from agent import SamplingParams
from agent.errors import UserError
from agent.prompt_lookup import PromptLookup
from agent.runtime import Model
from tests.lookup_helpers import extract_without_and_with_drafts

GREEDY = SamplingParams(temperature=0.0)
TEXT = (
    "Invoice INV-2024-0042 from Acme Tools Ltd, 12 Harbour Road, Leith. "
    "Contact: Maria Gomez, maria.gomez@acme.example. Total due: 1,234.50 EUR by 2024-07-31."
)
SCHEMA = {
    "type": "object",
    "properties": {
        "number": {"type": "string", "maxLength": 40},
        "seller": {"type": "string", "maxLength": 60},
        "contact": {"type": "string", "maxLength": 60},
        "total": {"type": "number"},
    },
    "required": ["number", "seller", "contact", "total"],
    "additionalProperties": False,
}


# ------------------------------------------------------------------- drafting
def test_the_longest_recurring_tail_drafts_what_followed_its_latest_occurrence():
    lookup = PromptLookup([1, 2, 3, 4, 9, 2, 3, 5, 6, 7])
    lookup.extend([2, 3])
    # "2 3" occurred twice before the tail; the latest one was followed by 5 6 7.
    assert lookup.draft(2) == [5, 6]
    assert lookup.draft(10) == [5, 6, 7, 2, 3]
    lookup.extend([4])  # "2 3 4" only occurred at the start
    assert lookup.draft(3) == [9, 2, 3]


def test_a_shorter_tail_is_tried_when_the_longer_one_never_occurred():
    lookup = PromptLookup([7, 8, 9, 7, 1], max_ngram=3, min_ngram=1)
    lookup.extend([5, 7])  # "5 7" never occurred; "7" did, last before 1
    assert lookup.draft(4) == [1, 5, 7]


def test_by_default_a_single_recurring_token_drafts_nothing():
    lookup = PromptLookup([7, 8, 9, 7, 1])
    lookup.extend([5, 7])
    assert lookup.draft(4) == []
    lookup.extend([1])  # "7 1" occurred: two tokens are enough
    assert lookup.draft(2) == [5, 7]


def test_no_draft_without_an_earlier_occurrence_or_room():
    lookup = PromptLookup([1, 2, 3], min_ngram=1)
    assert lookup.draft(4) == []  # the tail "3" has not occurred before
    lookup.extend([1])
    assert lookup.draft(0) == []
    assert lookup.draft(1) == [2]
    with pytest.raises(ValueError, match="min_ngram"):
        PromptLookup([], max_ngram=0)
    with pytest.raises(ValueError, match="min_ngram"):
        PromptLookup([], min_ngram=3, max_ngram=2)


# ------------------------------------------------------------ the runtime
@pytest.fixture(scope="module")
def kv_model(tiny) -> Model:
    """A random llama (a cache that can be trimmed) behind tiny's tokenizer; `tiny`
    itself is LFM2-MoE, whose convolution state cannot be trimmed."""
    vocab = int(tiny.config["vocab_size"])
    args = llama.ModelArgs(
        model_type="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=vocab,
        tie_word_embeddings=True,
    )  # fmt: skip
    mx.random.seed(3)
    module = llama.Model(args)
    mx.eval(module.parameters())
    config = {"vocab_size": vocab, "model_type": "llama", "max_position_embeddings": 4096}
    return Model("kv-llama", tiny.path, module, tiny.tokenizer, config)


@pytest.fixture(params=["lfm2_moe", "llama"])
def model(request, tiny, kv_model) -> Model:
    chosen = tiny if request.param == "lfm2_moe" else kv_model
    chosen.reset_cache()
    return chosen


def _generate(model: Model, prompt, lookup: int, sampling=GREEDY, **kwargs):
    model.reset_cache()
    return model.generate(prompt, max_tokens=96, sampling=sampling, lookup=lookup, **kwargs)


def test_the_output_is_the_same_with_drafts_and_fewer_passes_are_run(model):
    prompt = f"Copy this text exactly.\n{TEXT}\n{TEXT}\n"
    plain = _generate(model, prompt, lookup=0)
    drafted = _generate(model, prompt, lookup=8)
    assert drafted.token_ids == plain.token_ids
    assert plain.stats.draft_tokens == 0
    assert drafted.stats.draft_tokens > 0
    assert 0 < drafted.stats.accepted_draft_tokens <= drafted.stats.draft_tokens
    # Each taken draft token is a pass not run (the last pass may have fed a draft the
    # budget then had no room to take).
    passes = drafted.stats.decode_forward_passes + drafted.stats.accepted_draft_tokens
    assert passes - plain.stats.decode_forward_passes in (0, 1)
    assert "drafted tokens taken" in drafted.stats.summary()


def test_seeded_sampling_draws_the_same_tokens_with_drafts(model):
    prompt = f"Repeat: {TEXT} {TEXT}"
    # LFM2's defaults (temperature 0.3, min_p, a repetition penalty): a sampler and a
    # logits processor that both see every drafted position.
    sampling = SamplingParams(seed=11)
    plain = _generate(model, prompt, lookup=0, sampling=sampling)
    drafted = _generate(model, prompt, lookup=6, sampling=sampling)
    assert drafted.token_ids == plain.token_ids
    assert drafted.stats.draft_tokens > 0


def test_a_constrained_extraction_is_the_same_with_drafts(model):
    plain, drafted = extract_without_and_with_drafts(model, TEXT, SCHEMA, 160)
    assert drafted.text == plain.text
    assert drafted.value == plain.value
    assert set(drafted.value) == {"number", "seller", "contact", "total"}
    assert drafted.stats.forced_tokens == plain.stats.forced_tokens
    assert drafted.stats.draft_tokens > 0


def test_the_cache_after_a_drafted_run_serves_the_next_turn(model):
    """Drafts the model did not take are out of the cache (trimmed, or the state
    restored and the taken tokens fed again), so a conversation goes on as without."""
    first = [{"role": "user", "content": f"Copy: {TEXT} {TEXT}"}]
    answers = []
    for lookup in (0, 8):
        model.reset_cache()
        one = model.generate(first, max_tokens=40, sampling=GREEDY, lookup=lookup)
        follow = [
            *first,
            {"role": "assistant", "content": one.text},
            {"role": "user", "content": "Again, shorter."},
        ]
        two = model.generate(follow, max_tokens=24, sampling=GREEDY, lookup=lookup)
        assert two.stats.cached_prompt_tokens > 0  # the first turn's cache was reused
        answers.append((one.token_ids, two.token_ids))
    assert answers[0] == answers[1]


def test_a_stop_sequence_or_a_cancel_mid_draft_leaves_a_usable_cache(model):
    prompt = f"Copy: {TEXT} {TEXT}"
    reference = _generate(model, prompt, lookup=0)
    words = model.vocabulary.decode(reference.token_ids[4:7]).strip()
    assert words
    stopped = _generate(model, prompt, lookup=8, stop=[words])
    assert words not in stopped.text and stopped.stats.finish_reason == "stop_sequence"
    polls = iter(range(1000))
    cancelled = model.generate(
        prompt, max_tokens=96, sampling=GREEDY, lookup=8, should_stop=lambda: next(polls) >= 10
    )
    assert cancelled.stats.finish_reason == "cancelled"
    again = model.generate(prompt, max_tokens=96, sampling=GREEDY, lookup=8)
    assert again.token_ids == reference.token_ids


def test_lookup_must_be_a_whole_number(tiny):
    for bad in (-1, 1.5, True):
        with pytest.raises(UserError, match="lookup"):
            tiny.generate("hi", max_tokens=2, lookup=bad)
