"""Draft tokens from the text already seen: prompt lookup for speculative decoding.

Extraction copies: names, dates, amounts and sentences in its output are runs of the
document's own tokens. When the last few generated tokens also occur earlier (in the
prompt or the output so far), the tokens that followed them there are a cheap guess at
what comes next. The runtime feeds such a guess together with the token just sampled in
one forward pass and keeps the guessed tokens only while each is what it would have
sampled anyway (`agent.runtime`), so the output is the same with or without a draft;
only the number of forward passes changes.

The index maps every n-gram (n = `min_ngram`..`max_ngram`) to the position after its latest
occurrence that has a successor, so a draft costs one dict lookup per n, not a scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_MAX_NGRAM = 3
# A one-token tail recurs all over a prompt (a quote, a key, a digit), mostly in the
# schema rather than the document, and its drafts are mostly refused: on SmolLM2's
# extractions a two-token minimum kept the taken drafts and dropped the refused ones
# (decode 0.79 -> 0.69 of unconstrained on `event`; BENCHMARKS.md).
DEFAULT_MIN_NGRAM = 2
# Drafted tokens per pass at most when extracting (outputs copy their documents); the
# length adapts to what the model takes (`agent.runtime`). 0 turns drafting off.
EXTRACTION_LOOKUP = 8


class PromptLookup:
    """Drafts continuations of a token history from earlier occurrences of its tail."""

    def __init__(
        self,
        tokens: Sequence[int],
        max_ngram: int = DEFAULT_MAX_NGRAM,
        min_ngram: int = DEFAULT_MIN_NGRAM,
    ) -> None:
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.history: list[int] = []
        # index[n-1][ngram] = position right after the latest occurrence of ngram that
        # is followed by a token (so never the history's own tail).
        self._index: list[dict[tuple[int, ...], int]] = [{} for _ in range(max_ngram)]
        self.extend(tokens)

    def extend(self, tokens: Iterable[int]) -> None:
        """Append tokens to the history (the prompt, then each token taken)."""
        history = self.history
        index = self._index
        for token in tokens:
            end = len(history)
            for n in range(self.min_ngram, min(self.max_ngram, end) + 1):
                index[n - 1][tuple(history[end - n : end])] = end
            history.append(int(token))

    def draft(self, limit: int) -> list[int]:
        """Up to `limit` tokens that followed the longest recurring tail (of at least
        `min_ngram` tokens), else []."""
        if limit < 1:
            return []
        history = self.history
        for n in range(min(self.max_ngram, len(history)), self.min_ngram - 1, -1):
            start = self._index[n - 1].get(tuple(history[-n:]))
            if start is not None:
                return history[start : start + limit]
        return []
