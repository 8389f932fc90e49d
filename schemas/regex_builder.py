"""Small, safe pieces of regex in the grammar engine's dialect (Rust regex syntax).

Every helper returns a self-contained fragment (alternations wrapped in `(?:...)`) so
fragments can be concatenated without surprises.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

_SPECIAL = set("\\.+*?()|[]{}^$#&-~")

# One character of a JSON string, in its encoded form: a plain character, a short escape,
# or a \u escape that is not a surrogate (lone surrogates cannot be printed as UTF-8).
JSON_CHAR = (
    r'(?:[^"\\\x00-\x1F]|\\["\\/bfnrt]'
    r"|\\u(?:[0-9A-Ca-c][0-9A-Fa-f]{3}|[Dd][0-7][0-9A-Fa-f]{2}|[EFef][0-9A-Fa-f]{3}))"
)
JSON_STRING = f'"{JSON_CHAR}*"'
# For length-bounded strings: no \u escapes and no escaped quote. Each counted position
# then needs two automaton states instead of seven (JSON text is UTF-8, so \u is never
# needed), and a `\"` inside counted content would let the index builder's unanchored
# search restart at every quote, multiplying states exponentially with the count
# (measured: 16 positions took 15 s, 36 did not finish in 120 s; without it, 1 ms).
JSON_CHAR_BOUNDED = r'(?:[^"\\\x00-\x1F]|\\[\\/bfnrt])'
INTEGER = r"-?(?:0|[1-9][0-9]*)"
# Unbounded JSON numbers, kept finite: at most 16 integer digits and a 2-digit exponent,
# so that no generated number overflows to infinity when parsed.
NUMBER = r"-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,16})?(?:[eE][+-]?[0-9]{1,2})?"
BOOLEAN = "(?:true|false)"
NULL = "null"


def json_string_except(words: Iterable[str]) -> str:
    """A JSON string (no escapes) whose value is none of `words`.

    Used for the free keys of an object that must not carry certain properties (a
    `not: {required: [...]}`). Escapes are left out because `\\u0062ody` decodes to
    `body`: without them, the value is the text, and a trie over the words says which
    texts to avoid. Characters a JSON string cannot hold unescaped are never produced,
    so words containing them need no exclusion.
    """
    plain = '[^"\\\\\\x00-\\x1F]'
    trie: dict[str, Any] = {}
    for word in set(words):
        if any(ch in '"\\' or ord(ch) < 0x20 for ch in word):
            continue
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # the end of a word

    def below(node: dict[str, Any]) -> str:
        children = sorted(k for k in node if k)
        options = [] if "" in node else [""]
        other = "".join("\\" + c if c in _SPECIAL else c for c in children)
        options.append((f'[^"\\\\\\x00-\\x1F{other}]' if other else plain) + f"{plain}*")
        options.extend(literal(c) + below(node[c]) for c in children)
        return "(?:" + "|".join(options) + ")"

    return f'"{below(trie)}"'


def literal(text: str) -> str:
    """`text` matched literally."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def json_literal(value: Any) -> str:
    """The compact JSON encoding of `value`, matched literally."""
    return literal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def alternation(options: Iterable[str]) -> str | None:
    """`(?:a|b|...)` of the distinct options, in order; None when there are none."""
    seen: list[str] = []
    for option in options:
        if option not in seen:
            seen.append(option)
    if not seen:
        return None
    if len(seen) == 1:
        return seen[0]
    return "(?:" + "|".join(seen) + ")"


def repeat(fragment: str, low: int, high: int | None) -> str:
    """`fragment` repeated low..high times (high None: unbounded)."""
    if high is not None and high < low:
        raise ValueError("empty repetition")
    if high == 0:
        return ""
    group = fragment if _is_atom(fragment) else f"(?:{fragment})"
    if high is None:
        if low == 0:
            return group + "*"
        if low == 1:
            return group + "+"
        return f"{group}{{{low},}}"
    if low == high:
        return group if low == 1 else f"{group}{{{low}}}"
    if low == 0 and high == 1:
        return group + "?"
    return f"{group}{{{low},{high}}}"


def optional(fragment: str) -> str:
    return repeat(fragment, 0, 1) if fragment else ""


def _is_atom(fragment: str) -> bool:
    """A single char, escape, class or group that a quantifier applies to as a whole."""
    if len(fragment) == 1 and fragment not in _SPECIAL:
        return True
    if len(fragment) == 2 and fragment[0] == "\\":
        return True
    for opener, closer in (("(", ")"), ("[", "]")):
        if fragment.startswith(opener) and fragment.endswith(closer):
            return _matching_close(fragment, 0) == len(fragment) - 1
    return False


def _matching_close(fragment: str, start: int) -> int:
    """Index of the bracket closing the one at `start` (escapes and classes aware)."""
    depth = 0
    i = start
    in_class = False
    while i < len(fragment):
        ch = fragment[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
                if fragment[start] == "[":
                    return i
        elif ch == "[":
            in_class = True
            if i == start:
                # A ']' right after '[' or '[^' is a literal, not the end.
                j = i + 1
                if j < len(fragment) and fragment[j] == "^":
                    j += 1
                if j < len(fragment) and fragment[j] == "]":
                    i = j
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def sequence_with_separators(
    items: Sequence[tuple[str, bool]], separator: str, allow_empty: bool = True
) -> str | None:
    """Items in order, each required or optional, separated by `separator`.

    Used for object properties in schema order: the first present item has no leading
    separator. Each optional item before the first required one adds an alternative
    (the rest of the sequence, copied), so the result is linear in the items after the
    first required one and quadratic in the optional ones before it; `object_members`
    keeps that within a budget. Only the pieces the result holds are built: building
    every suffix of the sequence would cost quadratic memory even for a linear result.
    """
    n = len(items)
    leading = 0  # optional items before the first required one
    while leading < n and not items[leading][1]:
        leading += 1

    def piece(k: int) -> str:  # item k after something was emitted: with its separator
        fragment, required = items[k]
        return separator + fragment if required else optional(separator + fragment)

    # Right to left, holding only `after` (items k+1.. after something was emitted) and
    # `rest` (items k.. when nothing was emitted yet).
    if leading < n:
        after = "".join(piece(k) for k in range(leading + 1, n))
        rest: str | None = items[leading][0] + after
        after = piece(leading) + after
    else:
        after = ""
        rest = "" if allow_empty else None
    for k in range(leading - 1, -1, -1):
        present = items[k][0] + after
        if rest is None:
            rest = present
        elif rest == "":
            rest = optional(present)
        else:
            rest = alternation([present, rest])
        if k:
            after = piece(k) + after
    return rest


def object_members(
    items: Sequence[tuple[str, bool]], separator: str, size_budget: int = 50_000
) -> str | None:
    """Object members (fragment, required) with exact optionality when affordable.

    The exact form copies every member after an optional leading one once per possible
    first member; with nesting, copies multiply. When that would exceed `size_budget`
    characters, members are made linear instead: the first required member moves to the
    front, or (none required) the first member becomes required. Both generate a subset
    of the valid objects, and each member's regex then appears once.
    """
    leading = 0
    for _, required in items:
        if required:
            break
        leading += 1
    cost = sum(len(fragment) * min(i, leading) for i, (fragment, _) in enumerate(items))
    if cost <= size_budget or not items:
        return sequence_with_separators(items, separator)
    if leading < len(items):
        order = [leading, *[i for i in range(len(items)) if i != leading]]
        reordered = [items[i] for i in order]
    else:
        reordered = [(items[0][0], True), *items[1:]]
    return sequence_with_separators(reordered, separator)
