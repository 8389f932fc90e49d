"""Draft the rest of a value from where its text so far occurs in the prompt.

Token n-grams (`agent.prompt_lookup`) miss the start of a copied value: in the
document `Bristol` follows a space and is one token, ` Bristol`; in the JSON output it
follows a quote and is spelled `B` `rist` `ol`. The same text, tokenised two ways, has
no token n-gram in common until a few tokens in. This drafter works on bytes instead:
it takes the output since the last JSON delimiter (the value so far, `B`), finds where
that text last occurs in the prompt, and tokenises it together with what follows there,
so the draft is spelled the way the output spells it (`rist` `ol` ` Python` ...). Once
a drafted token is taken, the output and the document share tokens again and the
n-gram drafter carries on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

# Bytes that end a value's text in JSON output: a quote, structure, separators.
DELIMITERS = frozenset(b'"{}[],:')
# Source bytes tokenised after a match: enough for a full draft of short tokens.
CONTINUATION_BYTES = 48
# The value's text kept (its tail): a long one without delimiters, as in prose, would
# otherwise be copied and searched whole at every step.
MAX_VALUE_BYTES = 128


class TextLookup:
    """Drafts the continuation of the current value from the prompt's text."""

    def __init__(
        self,
        prompt: Sequence[int],
        token_bytes: Sequence[bytes],
        encode: Callable[[str], list[int]],
        skip: Iterable[int] = (),
    ) -> None:
        skipped = frozenset(skip)
        self.token_bytes = token_bytes
        self.encode = encode
        self.source = b"".join(token_bytes[t] for t in prompt if t not in skipped)
        self.value = bytearray()  # output since the last delimiter

    def extend(self, tokens: Iterable[int]) -> None:
        """Append generated tokens (the value so far restarts after each delimiter)."""
        value = self.value
        for token in tokens:
            piece = self.token_bytes[token]
            cut = max((i for i, byte in enumerate(piece) if byte in DELIMITERS), default=-1)
            if cut >= 0:
                value.clear()
                piece = piece[cut + 1 :]
            value += piece
        if len(value) > MAX_VALUE_BYTES:
            del value[:-MAX_VALUE_BYTES]

    def draft(self, limit: int) -> list[int]:
        """Up to `limit` tokens that continue the value as its text continues in the
        prompt (its latest occurrence there), spelled from the value's start; else []."""
        if limit < 1:
            return []
        value = bytes(self.value)
        draft = self._continue(value, limit)
        if not draft:
            word = _last_word(value)
            if word != value:  # the same search again would find nothing
                draft = self._continue(word, limit)
        return draft

    def _continue(self, value: bytes, limit: int) -> list[int]:
        if not any(chr(byte).isalpha() for byte in value):
            return []  # digits and signs recur everywhere: reformatted, not copied
        at = self.source.rfind(value)
        if at < 0:
            return []
        follow = self.source[at + len(value) : at + len(value) + CONTINUATION_BYTES]
        text = (value + follow).decode("utf-8", "ignore")
        tokens = self.encode(text)
        # The tokens spelling `value` must end exactly where it ends.
        length = 0
        for index, token in enumerate(tokens):
            length += len(self.token_bytes[token])
            if length == len(value):
                return tokens[index + 1 : index + 1 + limit]
            if length > len(value):
                return []
        return []


def _last_word(value: bytes) -> bytes:
    """The value's tail after its last byte that is not a letter or digit (`acme` in
    `https://www.acme`): a value built around copied pieces, such as a URL or e-mail.
    A value that is one word is its own last word."""
    for index in range(len(value) - 1, -1, -1):
        if not (chr(value[index]).isalnum() or value[index] >= 0x80):
            return value[index + 1 :]
    return value
