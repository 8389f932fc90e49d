"""`tiny` as a GGUF for the llama.cpp engine: random weights, LFM2's tokens and template.

The MLX `tiny` is LFM2-MoE in miniature; llama.cpp needs a GGUF, and converting one
takes llama.cpp's conversion script, which no registry package ships. So this file is
written directly with the `gguf` package: a two-layer llama-architecture model with
random weights, and exactly `tiny`'s tokenizer (its 1k BPE vocabulary, LFM2's special
tokens, the LFM2 chat template). That is what the llama.cpp path needs to be tested the
way the MLX path is: the worst case for a grammar (random weights), and LFM2's
`<|tool_call_start|>`/`<|tool_call_end|>` call step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from agent.models.chat_template import LFM2_CHAT_TEMPLATE
from agent.paths import models_dir
from agent.progress import ProgressCallback, silent_progress

VERSION = 1
HIDDEN = 64
HEADS = 4
KV_HEADS = 2
FFN = 128
LAYERS = 2
CONTEXT = 4096


def tiny_gguf(progress: ProgressCallback = silent_progress) -> Path:
    """The tiny GGUF, built on first use next to the MLX `tiny` (whose tokenizer it uses)."""
    from agent.models.registry import BUILTIN_MODELS

    dest = models_dir() / "tiny-gguf" / f"tiny-v{VERSION}.gguf"
    if dest.is_file():
        return dest
    tokenizer_dir = BUILTIN_MODELS["tiny"].ensure(progress)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    progress("Building tiny GGUF", 0, 1)
    write_tiny_gguf(tokenizer_dir, tmp)
    tmp.replace(dest)
    progress("Building tiny GGUF", 1, 1)
    return dest


def write_tiny_gguf(tokenizer_dir: Path, path: Path, seed: int = 0) -> None:
    import gguf

    tokenizer = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    added = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}
    size = max([*vocab.values(), *added.values()]) + 1
    tokens = [""] * size
    types = [gguf.TokenType.NORMAL] * size
    for text, idx in vocab.items():
        tokens[idx] = text
    for text, idx in added.items():
        tokens[idx] = text
        types[idx] = gguf.TokenType.CONTROL
    for i, text in enumerate(tokens):
        if not text:
            tokens[i], types[i] = f"[PAD{i}]", gguf.TokenType.UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("edge-agent tiny (random weights)")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(added["<|startoftext|>"])
    writer.add_eos_token_id(added["<|im_end|>"])
    writer.add_pad_token_id(added["<|pad|>"])
    writer.add_add_bos_token(False)  # the chat template writes it
    writer.add_chat_template(LFM2_CHAT_TEMPLATE)

    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5 / np.sqrt(shape[-1])).astype(np.float32)

    head_dim = HIDDEN // HEADS
    writer.add_tensor("token_embd.weight", weight(size, HIDDEN))
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(HIDDEN, np.float32))
        writer.add_tensor(f"{block}.attn_q.weight", weight(HIDDEN, HIDDEN))
        writer.add_tensor(f"{block}.attn_k.weight", weight(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(f"{block}.attn_v.weight", weight(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(f"{block}.attn_output.weight", weight(HIDDEN, HIDDEN))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(HIDDEN, np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(FFN, HIDDEN))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(FFN, HIDDEN))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(HIDDEN, FFN))
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, np.float32))
    writer.add_tensor("output.weight", weight(size, HIDDEN))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
