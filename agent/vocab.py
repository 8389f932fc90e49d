"""The byte string behind every token id, and exact incremental detokenisation.

Grammar indexes work on bytes, and the prompt cache compares generated text with the
next prompt byte for byte, so both need what a token *is*, not a prettified decode.
mlx-lm's streaming detokenizers trim a leading space and guess at special tokens; here
every token maps to its exact bytes (special tokens to their literal text) and text is
decoded incrementally with a UTF-8 decoder that holds back incomplete characters.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """GPT-2's printable-character -> byte table (inverse of bytes_to_unicode)."""
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
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _decoder_kind(tokenizer_json: dict[str, Any]) -> str:
    """'byte-level' for GPT-2 style BPE, 'metaspace' for SentencePiece style."""
    decoder = tokenizer_json.get("decoder") or {}
    kinds = {decoder.get("type")}
    for sub in decoder.get("decoders", []) or []:
        kinds.add(sub.get("type"))
    if "ByteLevel" in kinds:
        return "byte-level"
    if kinds & {"Metaspace", "ByteFallback", "Replace"}:
        return "metaspace"
    return "unknown"


@dataclass
class Vocabulary:
    """Token id -> exact bytes, with the ids that are special (control) tokens."""

    token_bytes: list[bytes]
    special_ids: frozenset[int] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.token_bytes)

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", "replace")


def build_vocabulary(hf_tokenizer: Any, size: int | None = None) -> Vocabulary:
    """Derive exact token bytes from a Hugging Face fast tokenizer.

    `size` pads the table to the model's embedding size (models often have more rows
    than the tokenizer has tokens); padding ids map to b"" and are treated as special so
    they are never offered by a grammar.
    """
    backend = getattr(hf_tokenizer, "backend_tokenizer", None) or getattr(
        hf_tokenizer, "_tokenizer", None
    )
    kind = _decoder_kind(json.loads(backend.to_str())) if backend is not None else "unknown"
    vocab: dict[str, int] = hf_tokenizer.get_vocab()
    n = max(max(vocab.values()) + 1, size or 0)
    table: list[bytes] = [b""] * n
    special: set[int] = set(range(max(vocab.values()) + 1, n))

    added = getattr(hf_tokenizer, "added_tokens_decoder", {}) or {}
    byte_decoder = _byte_level_decoder()
    for token, idx in vocab.items():
        info = added.get(idx)
        if info is not None:
            table[idx] = str(info).encode("utf-8")
            if getattr(info, "special", True):
                special.add(idx)
            continue
        if kind == "byte-level":
            try:
                table[idx] = bytes(byte_decoder[c] for c in token)
            except KeyError:
                table[idx] = token.encode("utf-8")
        elif kind == "metaspace":
            match = _BYTE_TOKEN.match(token)
            if match:
                table[idx] = bytes([int(match.group(1), 16)])
            else:
                table[idx] = token.replace("\u2581", " ").encode("utf-8")
        else:
            table[idx] = hf_tokenizer.decode([idx]).encode("utf-8")
    return Vocabulary(table, frozenset(special))


class IncrementalDecoder:
    """Turns a stream of token ids into text, holding back split UTF-8 characters."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self._table = vocabulary.token_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        return self._utf8.decode(self._table[token_id])

    def add_many(self, token_ids: list[int]) -> str:
        return self._utf8.decode(b"".join(self._table[t] for t in token_ids))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)
