"""Does a regex (in the dialect the grammar engine compiles) accept a string?

The grammar engine (outlines-core) compiles Rust-regex syntax to a byte-level automaton.
Python's `re` differs in places (Unicode classes, escapes), so regex fragments built by
the schema layer are checked here with the engine itself, over a vocabulary of single
bytes.

outlines-core drops transitions out of a state where the whole regex has already matched
(its DFA reports matches one byte late), so `x(?:ab)?` would refuse `xab`. Like the
decoder (agent.constrained), `accepts` compiles `(?:R)\\x00` and treats the NUL byte as
the end-of-output marker, which makes "R complete" a non-final state.
"""

from __future__ import annotations

from functools import lru_cache

from outlines_core import Index, Vocabulary

_EOS = 256  # byte_index: the engine's own end-of-sequence id
_END = 257  # accepts: the id of the NUL end marker
_UNUSED_EOS = 258


@lru_cache(maxsize=1)
def _byte_vocabulary() -> Vocabulary:
    return Vocabulary(_EOS, {bytes([b]): [b] for b in range(256)})


@lru_cache(maxsize=1)
def _marker_vocabulary() -> Vocabulary:
    tokens = {bytes([b]): [b] for b in range(1, 256)}
    tokens[b"\x00"] = [_END]
    return Vocabulary(_UNUSED_EOS, tokens)


@lru_cache(maxsize=256)
def byte_index(regex: str) -> Index:
    """An index of `regex` whose tokens are single bytes (token id == byte value)."""
    return Index(regex, _byte_vocabulary())


@lru_cache(maxsize=256)
def _marker_index(regex: str) -> Index:
    return Index(f"(?:{regex})\\x00", _marker_vocabulary())


def accepts(regex: str, text: str | bytes) -> bool:
    """True when `regex` matches the whole of `text` (as UTF-8 bytes)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if b"\x00" in data:
        return False
    try:
        index = _marker_index(regex)
    except Exception:  # the engine cannot compile it (or it matches nothing)
        return False
    state = index.get_initial_state()
    for byte in data:
        state = index.get_next_state(state, byte)
        if state is None:
            return False
    state = index.get_next_state(state, _END)
    return state is not None and index.is_final_state(state)
