"""A small parser for the regex dialect the schema layer emits, and two measures on it.

- `content_length_bounds`: how many characters a string-content fragment can produce,
  to check a `pattern`/`format` against `minLength`/`maxLength` without intersecting
  automata. Conservative: the minimum is a lower bound, the maximum an upper bound; a
  fragment that can emit a JSON escape (a literal backslash) gets minimum 0, since `\\n`
  is two characters of text but one of the string.
- `estimate_states`: roughly how many automaton states a regex needs, split into
  "wide" states (inside free text, where nearly every token is allowed, so each costs a
  transition per vocabulary entry in the token index) and "narrow" ones. Used to narrow
  counted repetitions until the token index fits a memory budget.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

# AST: ("char",) | ("class", wide) | ("empty",) | ("seq", parts) | ("alt", parts)
#      | ("rep", node, lo, hi)   where hi None = unbounded
Node = tuple


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def parse(self) -> Node:
        node = self._alternation()
        if self.i != len(self.s):
            raise ValueError(f"unexpected {self.s[self.i]!r} at {self.i}")
        return node

    def _alternation(self) -> Node:
        parts = [self._sequence()]
        while self.i < len(self.s) and self.s[self.i] == "|":
            self.i += 1
            parts.append(self._sequence())
        return parts[0] if len(parts) == 1 else ("alt", parts)

    def _sequence(self) -> Node:
        parts: list[Node] = []
        while self.i < len(self.s) and self.s[self.i] not in "|)":
            parts.append(self._quantified(self._atom()))
        if not parts:
            return ("empty",)
        return parts[0] if len(parts) == 1 else ("seq", parts)

    def _quantified(self, node: Node) -> Node:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "?":
                node = ("rep", node, 0, 1)
            elif c == "*":
                node = ("rep", node, 0, None)
            elif c == "+":
                node = ("rep", node, 1, None)
            elif c == "{" and self.i + 1 < len(self.s) and self.s[self.i + 1].isdigit():
                end = self.s.index("}", self.i)
                body = self.s[self.i + 1 : end]
                self.i = end
                if "," in body:
                    a, b = body.split(",", 1)
                    node = ("rep", node, int(a), int(b) if b else None)
                else:
                    node = ("rep", node, int(body), int(body))
            else:
                return node
            self.i += 1
            if self.i < len(self.s) and self.s[self.i] == "?":  # lazy: same language
                self.i += 1
        return node

    def _atom(self) -> Node:
        c = self.s[self.i]
        if c == "(":
            self.i += 1
            if self.s.startswith("?:", self.i):
                self.i += 2
            elif self.s.startswith("?P<", self.i) or self.s.startswith("?<", self.i):
                self.i = self.s.index(">", self.i) + 1
            node = self._alternation()
            if self.i >= len(self.s) or self.s[self.i] != ")":
                raise ValueError("unbalanced group")
            self.i += 1
            return node
        if c == "[":
            start = self.i
            self._skip_class()
            body = self.s[start : self.i]
            wide = body.startswith("[^") or len(body) > 40 or "\\p" in body
            return ("class", wide)
        if c == "\\":
            nxt = self.s[self.i + 1]
            braced = self.i + 2 < len(self.s) and self.s[self.i + 2] == "{"
            if nxt in "pPxu" and braced:
                self.i = self.s.index("}", self.i) + 1
                return ("class", nxt in "pP")
            if nxt == "x":
                self.i += 4
            elif nxt == "u":
                self.i += 6
            else:
                self.i += 2
            return ("class", True) if nxt in "dDwWsS" else ("char",)
        if c in "^$":
            self.i += 1
            return ("empty",)
        self.i += 1
        return ("class", True) if c == "." else ("char",)

    def _skip_class(self) -> None:
        i = self.i + 1
        if i < len(self.s) and self.s[i] == "^":
            i += 1
        if i < len(self.s) and self.s[i] == "]":
            i += 1
        depth = 1
        while i < len(self.s):
            ch = self.s[i]
            if ch == "\\":
                i += 2
                continue
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    self.i = i + 1
                    return
            i += 1
        raise ValueError("unbalanced class")


def parse(regex: str) -> Node:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        return _Parser(regex).parse()
    finally:
        sys.setrecursionlimit(limit)


def _lengths(node: Node) -> tuple[int, int | None]:
    kind = node[0]
    if kind in ("char", "class"):
        return 1, 1
    if kind == "empty":
        return 0, 0
    if kind == "seq":
        lo = 0
        hi: int | None = 0
        for part in node[1]:
            a, b = _lengths(part)
            lo, hi = lo + a, (None if hi is None or b is None else hi + b)
        return lo, hi
    if kind == "alt":
        bounds = [_lengths(p) for p in node[1]]
        lo = min(a for a, _ in bounds)
        his = [b for _, b in bounds]
        return lo, (None if any(b is None for b in his) else max(his))  # type: ignore[type-var]
    _, inner, rlo, rhi = node
    a, b = _lengths(inner)
    if rhi is None:
        return a * rlo, (0 if b == 0 else None)
    return a * rlo, (None if b is None else b * rhi)


def content_length_bounds(fragment: str) -> tuple[int, int | None]:
    """(min, max) decoded characters of the strings `fragment` matches; max None = no cap."""
    lo, hi = _lengths(parse(fragment))
    if "\\\\" in fragment:
        lo = 0  # an escape sequence decodes to fewer characters than it is written with
    return lo, hi


@dataclass(frozen=True)
class StateEstimate:
    wide: int
    narrow: int

    def __add__(self, other: StateEstimate) -> StateEstimate:
        return StateEstimate(self.wide + other.wide, self.narrow + other.narrow)

    def scaled(self, n: int) -> StateEstimate:
        return StateEstimate(self.wide * n, self.narrow * n)


def _states(node: Node) -> StateEstimate:
    kind = node[0]
    if kind == "char":
        return StateEstimate(0, 1)
    if kind == "class":
        return StateEstimate(1, 0) if node[1] else StateEstimate(0, 1)
    if kind == "empty":
        return StateEstimate(0, 0)
    if kind in ("seq", "alt"):
        total = StateEstimate(0, 0)
        for part in node[1]:
            total = total + _states(part)
        # Alternatives of single characters share one position.
        if kind == "alt" and all(p[0] in ("char", "class") for p in node[1]):
            wide = any(p[0] == "class" and p[1] for p in node[1])
            return StateEstimate(1, 0) if wide else StateEstimate(0, 1)
        return total
    _, inner, lo, hi = node
    copies = max(lo, 1) if hi is None else max(hi, 1)
    return _states(inner).scaled(copies)


def estimate_states(regex: str) -> StateEstimate:
    """A rough count of automaton states (wide: inside free text; narrow: the rest)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        return _states(parse(regex))
    finally:
        sys.setrecursionlimit(limit)


def _top_items(text: str) -> list[tuple[str, Node, int, int | None]] | None:
    """The top-level sequence of `text` as (atom text, atom, lo, hi), or None.

    None when the fragment is not a plain sequence (a top-level alternation, or stacked
    quantifiers). A fragment that is one unquantified group is looked into.
    """
    parser = _Parser(text)
    items: list[tuple[str, Node, int, int | None]] = []
    while parser.i < len(text):
        if text[parser.i] in "|)":
            return None
        start = parser.i
        atom = parser._atom()
        atom_text = text[start : parser.i]
        quantified = parser._quantified(atom)
        if quantified is atom:
            lo, hi = 1, 1
        elif quantified[1] is atom:
            lo, hi = quantified[2], quantified[3]
        else:
            return None  # stacked quantifiers
        items.append((atom_text, atom, lo, hi))
    if len(items) == 1 and items[0][2:] == (1, 1) and items[0][0].startswith("(?:"):
        return _top_items(items[0][0][3:-1])
    return items


def _quantifier(lo: int, hi: int | None) -> str:
    if (lo, hi) == (1, 1):
        return ""
    if hi is None:
        return f"{{{lo},}}"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def clamp_length(fragment: str, low: int, high: int | None) -> str | None:
    """A sub-language of `fragment` whose strings all have `low..high` characters.

    Works on fragments that are a sequence of fixed-width atoms with quantifiers (what
    `^[a-z0-9_.]+$` or `^[A-Z]{2}-\\d+$` become): each quantifier is narrowed within its
    own range, spreading the length budget evenly over the variable parts. Every string
    of the result matches the fragment, so this is sound; None when it cannot be done.
    """
    if "\\\\" in fragment:
        return None  # escapes decode to fewer characters than they are written with
    try:
        items = _top_items(fragment)
    except (ValueError, IndexError):
        return None
    if not items:
        return None
    widths = []
    for _, atom, _, _ in items:
        a, b = _lengths(atom)
        if a != b or b is None:
            return None
        widths.append(a)
    los = [lo for _, _, lo, _ in items]
    his: list[float] = [float("inf") if hi is None else hi for _, _, _, hi in items]
    variable = [i for i, w in enumerate(widths) if w > 0 and his[i] > los[i]]
    new_lo = list(los)
    new_hi = list(his)
    if high is not None:
        spare = high - sum(w * lo for w, lo in zip(widths, los, strict=True))
        if spare < 0:
            return None
        new_hi = [float(lo) if i in variable else his[i] for i, lo in enumerate(los)]
        growing = True
        while growing:  # one repetition at a time, round robin
            growing = False
            for i in variable:
                if new_hi[i] < his[i] and widths[i] <= spare:
                    new_hi[i] += 1
                    spare -= widths[i]
                    growing = True
    deficit = low - sum(w * lo for w, lo in zip(widths, new_lo, strict=True))
    while deficit > 0:
        raised = False
        for i in variable:
            if deficit > 0 and new_lo[i] < new_hi[i]:
                new_lo[i] += 1
                deficit -= widths[i]
                raised = True
        if not raised:
            return None
    out = []
    for (text, _, _, _), lo, hi in zip(items, new_lo, new_hi, strict=True):
        out.append(text + _quantifier(int(lo), None if hi == float("inf") else int(hi)))
    result = "".join(out)
    lo_total, hi_total = _lengths(parse(result))
    if lo_total < low or (high is not None and (hi_total is None or hi_total > high)):
        return None
    return result
