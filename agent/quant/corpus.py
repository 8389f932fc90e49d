"""The text perplexity is measured on, as token windows every model sees identically.

Two sources: text (files the CLI has read) or a dataset in mlx-lm's fine-tuning format,
read by `mlx_lm.tuner.datasets.load_dataset` (a local directory with
train/valid/test.jsonl, or a Hugging Face dataset id when `datasets` is installed and
the hub is reachable). The tokens are cut into windows of `sequence_length` as
`mlx_lm.perplexity.load_data` does, but in order (no shuffling): a figure must be
reproducible from the same files. Text is tokenized paragraph by paragraph (split at
blank lines, the blank line kept), so only the tokens needed are computed.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

from agent.errors import UserError


@dataclass(frozen=True)
class Corpus:
    """Where the evaluation text comes from: `text` itself, or a dataset name."""

    name: str
    text: str | None = None
    dataset: str | None = None

    def tokens(self, tokenizer: Any, limit: int) -> list[int]:
        """At most `limit` tokens of the corpus, as `tokenizer` encodes it."""
        if self.text is not None:
            return _text_tokens(self.text, tokenizer, limit)
        assert self.dataset is not None
        return _dataset_tokens(self.dataset, tokenizer, limit)


def _text_tokens(text: str, tokenizer: Any, limit: int) -> list[int]:
    """Paragraph by paragraph until `limit`: a long text is never tokenized whole (a
    1 MB file would cost seconds and trip the tokenizer's length warning for nothing)."""
    tokens: list[int] = []
    paragraphs = text.split("\n\n")
    for i, paragraph in enumerate(paragraphs):
        piece = paragraph + ("\n\n" if i < len(paragraphs) - 1 else "")
        if not piece:
            continue
        tokens.extend(tokenizer.encode(piece, add_special_tokens=not tokens))
        if len(tokens) >= limit:
            break
    return tokens[:limit]


def _dataset_tokens(name: str, tokenizer: Any, limit: int) -> list[int]:
    from mlx_lm.tuner.datasets import load_dataset

    args = types.SimpleNamespace(data=name, train=False, test=False)
    try:
        train, valid, test = load_dataset(args, tokenizer)
    except ImportError as exc:
        raise UserError(
            f"cannot read dataset '{name}': it is not a local directory, and a Hugging Face "
            f"dataset needs the `datasets` package ({exc}); pass a directory with "
            "test.jsonl, or --text FILE"
        ) from None
    except (ValueError, KeyError, OSError) as exc:
        raise UserError(f"cannot read dataset '{name}': {exc}") from None
    except Exception as exc:  # the hub client's own errors (offline, unknown id)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read dataset '{name}': {first[:200]}") from None
    split = next((s for s in (test, valid, train) if len(s)), None)
    if split is None:
        raise UserError(f"dataset '{name}' has no test, valid or train examples")
    tokens: list[int] = []
    for i in range(len(split)):
        ids, _ = split.process(split[i])
        tokens.extend(int(t) for t in ids)
        if len(tokens) >= limit:
            break
    return tokens[:limit]


def windows(tokens: list[int], sequence_length: int) -> list[list[int]]:
    """Whole windows of `sequence_length` tokens (a shorter text is one window)."""
    if len(tokens) < 3:
        raise UserError(
            f"the evaluation text has {len(tokens)} token(s); perplexity and its standard "
            "error need at least 3: pass a longer text"
        )
    if len(tokens) < sequence_length:
        return [tokens]
    count = len(tokens) // sequence_length
    return [tokens[i * sequence_length : (i + 1) * sequence_length] for i in range(count)]
