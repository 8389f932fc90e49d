"""The model's vocabulary as the grammar engine sees it."""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from functools import cached_property

from agent.vocab import Vocabulary
from schemas.automaton import build_vocabulary


@dataclass
class GrammarVocabulary:
    """Token bytes for grammar compilation, and the ids the decoder needs.

    Special tokens never appear in constrained output (a grammar can ask for the text
    `<|im_end|>` but gets it spelled in ordinary tokens). `end_id` is a pseudo token
    one past the vocabulary that stands for "end of output" inside the automaton.
    """

    tokens: dict[bytes, list[int]]
    eos_ids: tuple[int, ...]
    size: int
    lookup: dict[bytes, int] = field(default_factory=dict)

    @classmethod
    def from_model_vocabulary(cls, vocab: Vocabulary, eos_ids: frozenset[int]) -> GrammarVocabulary:
        tokens: dict[bytes, list[int]] = {}
        for token_id, data in enumerate(vocab.token_bytes):
            if token_id in vocab.special_ids or token_id in eos_ids or not data:
                continue
            if b"\x00" in data:
                continue  # NUL marks the end of output inside the automaton
            tokens.setdefault(data, []).append(token_id)
        lookup = {data: ids[0] for data, ids in tokens.items()}
        return cls(tokens, tuple(sorted(eos_ids)), len(vocab), lookup)

    @property
    def end_id(self) -> int:
        return self.size

    @property
    def unused_eos_id(self) -> int:
        return self.size + 1

    @cached_property
    def byte_ids(self) -> list[int | None]:
        return [self.lookup.get(bytes([b])) for b in range(256)]

    @cached_property
    def byte_complete(self) -> bool:
        """Every byte but NUL is a token (true of byte-level BPE vocabularies)."""
        return all(t is not None for t in self.byte_ids[1:])

    @cached_property
    def max_token_length(self) -> int:
        return max(len(b) for b in self.tokens)

    @cached_property
    def blob(self) -> bytes:
        """The outlines-core Vocabulary, pickled for the compile worker."""
        return pickle.dumps(build_vocabulary(self.tokens, self.end_id, self.unused_eos_id))

    @cached_property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for data in sorted(self.tokens):
            digest.update(len(data).to_bytes(2, "little") + data)
            digest.update(b",".join(str(i).encode() for i in self.tokens[data]))
        digest.update(repr((self.eos_ids, self.size)).encode())
        return digest.hexdigest()[:24]
