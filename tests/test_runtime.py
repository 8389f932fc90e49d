"""The model runtime: generation, statistics, sampling and prompt-cache reuse."""

from __future__ import annotations

import pytest

from agent import GenerationResult, SamplingParams, TextChunk, UserError

GREEDY = SamplingParams.greedy()


def test_generate_streams_text_and_ends_with_consistent_stats(fresh_tiny):
    items = list(fresh_tiny.stream("Hello, world", max_tokens=12, sampling=SamplingParams(seed=0)))
    chunks = [i for i in items if isinstance(i, TextChunk)]
    result = items[-1]
    assert isinstance(result, GenerationResult)
    assert all(isinstance(i, TextChunk) for i in items[:-1])
    assert "".join(c.text for c in chunks) == result.text
    stats = result.stats
    assert stats.prompt_tokens == len(fresh_tiny.encode("Hello, world"))
    assert stats.cached_prompt_tokens == 0
    assert stats.generated_tokens == len(result.token_ids)
    assert 1 <= stats.generated_tokens <= 12
    if stats.finish_reason == "length":
        assert stats.generated_tokens == 12
    assert stats.ttft_s > 0 and stats.prefill_tps > 0 and stats.total_s >= stats.ttft_s
    if stats.generated_tokens > 1:
        assert stats.decode_tps > 0
    assert stats.peak_memory_bytes > 0
    assert "tok/s" in stats.summary() and "TTFT" in stats.summary()


def test_seed_makes_sampling_reproducible(fresh_tiny):
    params = SamplingParams(temperature=1.0, min_p=0.0, seed=7)
    a = fresh_tiny.generate("Tell me a story", max_tokens=16, sampling=params)
    fresh_tiny.reset_cache()
    b = fresh_tiny.generate("Tell me a story", max_tokens=16, sampling=params)
    fresh_tiny.reset_cache()
    c = fresh_tiny.generate(
        "Tell me a story", max_tokens=16, sampling=SamplingParams(temperature=1.0, seed=8)
    )
    assert a.token_ids == b.token_ids
    assert a.token_ids != c.token_ids


def test_chat_messages_use_the_lfm2_template(fresh_tiny):
    prompt = fresh_tiny.chat_prompt(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        tools=[{"name": "now", "description": "time", "parameters": {"type": "object"}}],
    )
    assert prompt.startswith("<|startoftext|><|im_start|>system\nBe brief.\nList of tools: ")
    assert "<|tool_list_start|>[" in prompt and "]<|tool_list_end|><|im_end|>\n" in prompt
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    ids = fresh_tiny.encode(prompt)
    assert ids[0] == fresh_tiny.tokenizer.convert_tokens_to_ids("<|startoftext|>")


def test_extending_the_conversation_prefills_only_the_new_turn(fresh_tiny):
    messages = [{"role": "user", "content": "What is two plus two?"}]
    first = fresh_tiny.generate(messages, max_tokens=10, sampling=GREEDY)
    assert first.stats.cached_prompt_tokens == 0

    messages += [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And three plus three?"},
    ]
    second = fresh_tiny.generate(messages, max_tokens=10, sampling=GREEDY)
    history = first.stats.prompt_tokens + first.stats.generated_tokens
    # Everything fed to the model before is reused; the last sampled token and the
    # new turn are prefilled.
    assert second.stats.cached_prompt_tokens == history - 1
    new_turn = fresh_tiny.encode(
        "<|im_end|>\n<|im_start|>user\nAnd three plus three?<|im_end|>\n<|im_start|>assistant\n"
    )
    if first.stats.finish_reason == "stop":  # the sampled <|im_end|> is already in history
        new_turn = new_turn[1:]
    assert second.stats.prefilled_tokens == len(new_turn) + 1

    # Reuse must not change the result: a cold run over the same tokens agrees.
    fresh_tiny.reset_cache()
    cold = fresh_tiny.generate(messages, max_tokens=10, sampling=GREEDY)
    assert cold.stats.cached_prompt_tokens == 0
    assert cold.token_ids == second.token_ids


def test_token_prompts_reuse_an_exact_prefix_and_rebuild_otherwise(fresh_tiny):
    base = fresh_tiny.encode("The quick brown fox jumps over the lazy dog")
    first = fresh_tiny.generate(base, max_tokens=4, sampling=GREEDY)
    extended = base + first.token_ids + fresh_tiny.encode(" and then")
    second = fresh_tiny.generate(extended, max_tokens=4, sampling=GREEDY)
    assert second.stats.cached_prompt_tokens == len(base) + len(first.token_ids) - 1

    diverged = fresh_tiny.encode("A completely different prompt")
    third = fresh_tiny.generate(diverged, max_tokens=4, sampling=GREEDY)
    assert third.stats.cached_prompt_tokens == 0  # conv state cannot be rewound


def test_stop_sequence_ends_generation_before_the_stop_text(fresh_tiny):
    probe = fresh_tiny.generate("Once upon a time", max_tokens=30, sampling=GREEDY)
    text = probe.text
    assert len(text) > 6
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    fresh_tiny.reset_cache()
    stopped = fresh_tiny.generate("Once upon a time", max_tokens=30, sampling=GREEDY, stop=[stop])
    assert stopped.stats.finish_reason == "stop_sequence"
    assert stop not in stopped.text
    assert text.startswith(stopped.text)
    assert text.find(stop) == len(stopped.text)


def test_should_stop_cancels_cleanly_and_keeps_the_partial_text(fresh_tiny):
    seen = []

    def should_stop() -> bool:
        return len(seen) >= 3

    for item in fresh_tiny.stream(
        "Count:", max_tokens=50, sampling=GREEDY, should_stop=should_stop
    ):
        if isinstance(item, TextChunk):
            seen.append(item)
        else:
            result = item
    assert result.stats.finish_reason == "cancelled"
    assert result.stats.generated_tokens == 3


def test_bad_arguments_are_user_errors(fresh_tiny):
    with pytest.raises(UserError, match="max_tokens"):
        fresh_tiny.generate("x", max_tokens=0)
    with pytest.raises(UserError, match="context"):
        fresh_tiny.generate([20] * (fresh_tiny.context_length + 1), max_tokens=1)
    with pytest.raises(UserError, match="temperature"):
        SamplingParams(temperature=-1)


def test_model_info_describes_the_quantized_model(tiny):
    info = tiny.info
    assert info.quantization == "3-bit (group 64)"
    assert info.model_type == "lfm2_moe"
    assert info.vocab_size == 1024
    assert 0 < info.weight_bytes < info.parameters  # well under 8 bits per parameter
