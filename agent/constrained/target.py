"""What the grammar engines need to know about one model's tokenizer, built once per model.

Both engines work on the exact bytes of every token: llguidance through an `LLTokenizer`
(built from the Hugging Face `tokenizer.json` when there is one, so that tokenising
forced text runs in Rust), the regex engine through a `GrammarVocabulary` per set of end
tokens. These are costly to build (a 100k vocabulary takes a few hundred milliseconds),
so a target is cached per model, held weakly: it goes when the model goes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from agent.constrained import masks
from agent.constrained.vocabulary import GrammarVocabulary
from agent.vocab import Vocabulary


@dataclass(eq=False)
class GrammarTarget:
    """One tokenizer as the grammar engines see it."""

    vocabulary: Vocabulary
    eos_ids: frozenset[int]
    encode: Callable[[str], list[int]]
    tokenizer_json: str | None = None
    _regex_vocabs: dict[tuple[int, ...], GrammarVocabulary] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    @cached_property
    def byte_tokens(self) -> list[int | None]:
        """The id of the token spelling each single byte (None where there is none)."""
        found: list[int | None] = [None] * 256
        excluded = self.vocabulary.special_ids | self.eos_ids
        for token_id, data in enumerate(self.vocabulary.token_bytes):
            if len(data) == 1 and found[data[0]] is None and token_id not in excluded:
                found[data[0]] = token_id
        return found

    @cached_property
    def ordinary_words(self) -> np.ndarray:
        """Packed mask of the tokens a grammar may ever produce as text.

        Special tokens (turn markers, tool-call markers, padding rows of the embedding)
        never appear inside constrained output, whatever a tokenizer file says about
        them; end tokens are added back by the constraint when the output may end.
        """
        ids = [
            i
            for i, data in enumerate(self.vocabulary.token_bytes)
            if data and i not in self.vocabulary.special_ids and i not in self.eos_ids
        ]
        return masks.pack(np.asarray(ids, dtype=np.int64), self.size)

    @cached_property
    def llg_tokenizer(self) -> Any:
        """llguidance's tokenizer for this vocabulary (tokenises in Rust when it can)."""
        from llguidance import LLTokenizer, TokenizerWrapper

        eos = sorted(self.eos_ids)
        if self.tokenizer_json is not None:
            try:
                return LLTokenizer(self.tokenizer_json, n_vocab=self.size, eos_token=eos)
            except Exception:  # a tokenizer.json llguidance cannot read: use the bytes
                pass
        return LLTokenizer(TokenizerWrapper(_VocabularyTokenizer(self)), eos_token=eos)

    def regex_vocabulary(self, end_ids: Sequence[int]) -> GrammarVocabulary:
        """The regex engine's vocabulary, with `end_ids` as its end-of-output tokens."""
        key = tuple(sorted(end_ids))
        with self._lock:
            vocab = self._regex_vocabs.get(key)
            if vocab is None:
                vocab = GrammarVocabulary.from_model_vocabulary(self.vocabulary, frozenset(key))
                self._regex_vocabs[key] = vocab
            return vocab


class _VocabularyTokenizer:
    """The attributes `llguidance.TokenizerWrapper` reads, from our exact token bytes."""

    def __init__(self, target: GrammarTarget) -> None:
        self.eos_token_id = min(target.eos_ids)
        self.bos_token_id = None
        self.tokens = target.vocabulary.token_bytes
        self.special_token_ids = sorted(target.vocabulary.special_ids)
        self._encode = target.encode

    def __call__(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return list(self._encode(text))


_TARGETS: weakref.WeakKeyDictionary[Any, GrammarTarget] = weakref.WeakKeyDictionary()
_TARGETS_LOCK = threading.Lock()


def target_for(model: Any) -> GrammarTarget:
    """The grammar target of a loaded model (an `agent.token_runtime.TokenRuntime`),
    built on first use."""
    with _TARGETS_LOCK:
        target = _TARGETS.get(model)
        if target is None:
            target = _TARGETS[model] = _build_target(model)
        return target


def _build_target(model: Any) -> GrammarTarget:
    return GrammarTarget(
        vocabulary=model.vocabulary,
        eos_ids=frozenset(model.eos_token_ids),
        encode=model.encode_fragment,
        tokenizer_json=model.tokenizer_json(),
    )
