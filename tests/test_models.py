"""Model specs, the built-in tiny models and their LFM2 layout."""

from __future__ import annotations

import hashlib
import json

import pytest
from mlx_lm.models.switch_layers import SwitchGLU

from agent import ModelNotFoundError, ModelUnavailableError, load_model
from agent.models.chat_template import LFM2_SPECIAL_TOKENS
from agent.models.registry import BUILTIN_MODELS, resolve_model_path
from agent.models.tiny import TINY, build_tiny


def test_tiny_has_lfm2_moe_layout_in_miniature(tiny):
    config = json.loads((tiny.path / "config.json").read_text())
    assert config["model_type"] == "lfm2_moe"
    types = config["layer_types"]
    assert {"conv", "full_attention"} == set(types)
    assert types.index("full_attention") > 0 and types[-1] == "conv"  # interleaved
    assert config["num_dense_layers"] >= 1
    assert config["num_experts_per_tok"] < config["num_experts"]
    assert config["use_expert_bias"] is True
    assert config["quantization"]["bits"] == 3

    layers = tiny.module.model.layers
    dense = config["num_dense_layers"]
    assert all(not hasattr(layer.feed_forward, "switch_mlp") for layer in layers[:dense])
    for layer in layers[dense:]:
        moe = layer.feed_forward
        assert isinstance(moe.switch_mlp, SwitchGLU)
        assert float(abs(moe.expert_bias).sum()) > 0  # routing really uses the bias
        assert moe.gate.bits == 8  # router gate kept at 8 bits, as in the real model
    assert [layer.is_attention_layer for layer in layers] == [t == "full_attention" for t in types]


def test_tiny_tokenizer_carries_lfm2_special_tokens(tiny):
    tok = tiny.tokenizer
    for token in LFM2_SPECIAL_TOKENS:
        ids = tok.encode(token, add_special_tokens=False)
        assert len(ids) == 1, token
    assert tok.convert_tokens_to_ids("<|im_end|>") in tiny.eos_token_ids
    text = 'Unicode ünïcödé 🙂 and JSON {"a": [1, 2.5, null]}'
    assert tiny.vocabulary.decode(tok.encode(text, add_special_tokens=False)) == text


def test_tiny_build_is_deterministic(tmp_path):
    a = build_tiny(TINY, tmp_path / "a")
    b = build_tiny(TINY, tmp_path / "b")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (
            hashlib.sha256((a / name).read_bytes()).digest()
            == hashlib.sha256((b / name).read_bytes()).digest()
        ), name


def test_builtin_is_built_once_into_the_cache(tiny):
    path = BUILTIN_MODELS["tiny"].path
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_model_path("tiny") == path
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


def test_unknown_model_names_the_builtins():
    with pytest.raises(ModelNotFoundError) as err:
        load_model("no-such-model")
    assert "tiny" in str(err.value) and "smollm2" in str(err.value)


def test_unreachable_hub_model_fails_in_one_line_naming_builtins():
    # Offline here; online it does not exist. Either way: one line, with alternatives.
    with pytest.raises(ModelUnavailableError) as err:
        load_model("edge-agent-tests/no-such-model-3bit")
    message = str(err.value)
    assert "\n" not in message
    assert "tiny" in message and "smollm2" in message


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"config\.json"):
        load_model(str(tmp_path))
