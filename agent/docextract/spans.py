"""Where each extracted value sits in its source: JSON pointers to character spans.

A span is `[start, end]` in characters of the document text (Python string offsets),
so `text[start:end] == value` for a string found verbatim. Strings are looked up
exactly (the first occurrence at or after the previous value's, else the first one);
numbers by their usual spellings as whole tokens; booleans, nulls, empty strings and
strings not in the text get `None`. A grounded string is always found: the grammar
only let the model copy it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from agent.constrained.grounded import escape_pointer

Span = list[int] | None


def leaves(value: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """(JSON pointer, value) of every scalar in `value`, in document order."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from leaves(sub, f"{pointer}/{escape_pointer(str(key))}")
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from leaves(sub, f"{pointer}/{index}")
    else:
        yield pointer, value


def resolve(value: Any, pointer: str) -> Any:
    """The value a JSON pointer names (KeyError/IndexError when it names nothing)."""
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def align(value: Any, text: str, offset: int = 0) -> dict[str, Span]:
    """The span of every scalar of `value` in `text`, shifted by `offset` (where `text`
    starts in the document)."""
    spans: dict[str, Span] = {}
    cursor = 0
    for pointer, leaf in leaves(value):
        found = _find(leaf, text, cursor)
        if found is None:
            spans[pointer] = None
            continue
        cursor = found[1]
        spans[pointer] = [found[0] + offset, found[1] + offset]
    return spans


def _find(leaf: Any, text: str, cursor: int) -> tuple[int, int] | None:
    if isinstance(leaf, str):
        if not leaf:
            return None
        at = text.find(leaf, cursor)
        if at < 0:
            at = text.find(leaf)
        return None if at < 0 else (at, at + len(leaf))
    if isinstance(leaf, bool) or leaf is None:
        return None
    if isinstance(leaf, (int, float)):
        for spelling in _spellings(leaf):
            pattern = re.compile(rf"(?<![\w.]){re.escape(spelling)}(?![\w]|[.,]\d)")
            match = pattern.search(text, cursor) or pattern.search(text)
            if match:
                return match.start(), match.end()
    return None


def _spellings(number: int | float) -> list[str]:
    """How a number may be written: 13.5 as "13.50", "13.5" or "13,50"."""
    if isinstance(number, int) or (isinstance(number, float) and number.is_integer()):
        whole = int(number)
        return [str(whole), f"{whole:,}", f"{whole}.00", f"{whole},00"]
    plain = repr(number)
    two = f"{number:.2f}"
    return list(dict.fromkeys([plain, two, plain.replace(".", ","), two.replace(".", ",")]))


def verbatim_share(value: Any, spans: dict[str, Span], text: str) -> tuple[int, int]:
    """(strings found verbatim at their span, non-empty strings) in `value`."""
    found = total = 0
    for pointer, leaf in leaves(value):
        if isinstance(leaf, str) and leaf:
            total += 1
            span = spans.get(pointer)
            if span is not None and text[span[0] : span[1]] == leaf:
                found += 1
    return found, total
