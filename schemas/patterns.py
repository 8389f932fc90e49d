"""JSON Schema `pattern` (ECMA-262 syntax) as a string-content regex fragment.

The fragment matches the characters between the quotes of a JSON string, in encoded form,
and is sound: every string it accepts decodes to a value that the pattern matches, under
both ECMA-262 and Python `re.search` (what python-jsonschema uses). Where the two dialects
give the same pattern different meanings (`\\d` and `\\w` are Unicode-aware in Python,
ASCII in ECMA; `\\s` differs in both directions), the fragment keeps to the intersection:
positive sets take the narrower reading, negated sets exclude the wider one. Where they
disagree outright (`{,3}`, `\\A`, octal escapes, surrogate escapes, `[]`) or the language is
not regular enough for the engine (lookaround, backreferences, word boundaries), the
pattern raises `UnsupportedPattern` and the caller falls back (e.g. to an unconstrained
string, then validation after generation).

Anchoring. JSON Schema patterns are unanchored searches; the fragment generates strings in
which the pattern matches, chosen so the automaton stays small and the values look like
what the schema author meant. Per top-level alternative:

* `^...$`: the body must match the whole string;
* `^...` (no `$`): the body must match a prefix, anything may follow ("starts with");
* `...$` (no `^`): anything may precede, the body must match a suffix ("ends with");
* neither: the body must match the whole string. This is a deliberate subset: a pattern
  like `[a-z]+` (a forgotten anchor, most of the time) admits "Hello!!" under search
  semantics, and letting the model produce a match *somewhere* would need an unanchored
  automaton that can be exponentially large.

An anchor that is not at such an edge (`a|^b`, `(^|,)x`) holds only where the generated
text is at the string's start (or end); elsewhere that branch is dropped, which is again a
subset.

Encoding. Characters that JSON must escape are produced in escaped form: `"` as `\\"`,
backslash as `\\\\`, tab/newline/carriage return as `\\t`/`\\n`/`\\r`; other control characters
only when a set contains nothing else (as `\\b`, `\\f` or `\\u00XX`). Surrogates are never
produced, nor is any other `\\uXXXX` escape (non-ASCII characters appear as UTF-8).

Automaton size. outlines-core builds its DFA with an unanchored start state too, so a match
may "restart" at any byte that can begin the whole regex. Inside a `"..."` value that byte
is the quote, so broad sets (`.`, `[^...]`, `\\S`: more than `_BROAD` code points) leave
out `\\"`; a pattern that names `"` explicitly still gets it. Upper bounds of counted
repetitions are capped at `REPEAT_CAP` (a subset: the lower bound is kept), because huge
counters make huge automata. Fragments are meant to be compiled between quotes (as the
schema compiler does): compiled bare, a fragment such as `[a-f][a-f0-9]{31}` can restart
at every character and its DFA grows exponentially.
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

__all__ = ["REPEAT_CAP", "UnsupportedPattern", "pattern_to_regex"]

REPEAT_CAP = 256
"""Largest upper bound kept for a counted repetition; larger ones are lowered to this."""

MIN_LENGTH_CAP = 10_000
"""Longest shortest match a pattern may ask for. Lower bounds cannot be lowered (that
would admit strings the pattern refuses), and each required character is an automaton
state: `^a{1000000}$` took 8 s and 400 MB to compile before it was refused here."""

_MAX = sys.maxunicode
_SURROGATES = (0xD800, 0xDFFF)

Ranges = tuple[tuple[int, int], ...]


class UnsupportedPattern(ValueError):
    """The pattern cannot be translated soundly (or is not a valid ECMA-262 regex)."""


# ---------------------------------------------------------------------------------------------
# code point sets: sorted, disjoint, non-adjacent (lo, hi) ranges
# ---------------------------------------------------------------------------------------------


def _norm(ranges: list[tuple[int, int]] | Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _union(*sets: Ranges) -> Ranges:
    return _norm([r for s in sets for r in s])


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _complement_raw(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX:
        out.append((nxt, _MAX))
    return tuple(out)


_SCALARS = _complement_raw((_SURROGATES,))  # every code point UTF-8 can carry


def _complement(ranges: Ranges) -> Ranges:
    """All Unicode scalar values (no surrogates) outside `ranges`."""
    return _intersect(_complement_raw(ranges), _SCALARS)


def _subtract(a: Ranges, b: Ranges) -> Ranges:
    return _intersect(a, _complement_raw(b))


def _chars(text: str) -> Ranges:
    return _norm([(ord(c), ord(c)) for c in text])


@dataclass(frozen=True)
class _Bounds:
    """A character set under two dialect readings: `lo` ⊆ both, `hi` ⊇ both (ECMA, Python).

    Positive uses emit `lo`; a negated class complements the union of its items' `hi`.
    `wide` names a shorthand (`d`, `w`) whose `hi` needs a Unicode scan, done only when a
    negated class actually asks for it.
    """

    lo: Ranges
    hi: Ranges = ()
    wide: str = ""

    @staticmethod
    def exact(ranges: Ranges) -> _Bounds:
        return _Bounds(ranges, ranges)

    def upper(self) -> Ranges:
        return _shorthand(self.wide).hi if self.wide else self.hi

    def negated(self) -> _Bounds:
        return _Bounds(_complement(self.upper()), _complement(self.lo))


def _scan(test: object) -> Ranges:
    """The code points (surrogates excluded) for which `test(chr(cp))` holds."""
    runs: list[tuple[int, int]] = []
    start = -1
    for cp in range(_MAX + 2):
        hit = cp <= _MAX and test(chr(cp))  # type: ignore[operator]
        if hit and start < 0:
            start = cp
        elif not hit and start >= 0:
            runs.append((start, cp - 1))
            start = -1
    return _subtract(_norm(runs), (_SURROGATES,))


@cache
def _python_class(letter: str) -> Ranges:
    """Python's Unicode `\\d`, `\\w` or `\\s` for str patterns, scanned on first need.

    `_sre` uses str.isdecimal, str.isalnum (plus `_`) and str.isspace; scanning with the
    same predicates keeps the Unicode version identical to the validator's.
    """
    if letter == "d":
        return _scan(str.isdecimal)
    if letter == "w":
        return _union(_scan(str.isalnum), _chars("_"))
    return _scan(str.isspace)


_ECMA_SPACE = _norm(
    [
        (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
        (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
    ]
)  # fmt: skip
_ASCII_DIGIT = _chars("0123456789")
_ASCII_WORD = _norm([(48, 57), (65, 90), (97, 122), (95, 95)])
_LINE_TERMINATORS = _norm([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])


@cache
def _shorthand(letter: str) -> _Bounds:
    """`\\d \\w \\s` and their negations, as the intersection/union of ECMA and Python."""
    lower = letter.lower()
    if lower == "s":
        # ECMA counts U+FEFF as space, Python counts U+001C..U+001F and U+0085: neither
        # reading contains the other, so both sides need the scan.
        python = _python_class("s")
        bounds = _Bounds(_intersect(_ECMA_SPACE, python), _union(_ECMA_SPACE, python))
    else:
        ascii_set = _ASCII_DIGIT if lower == "d" else _ASCII_WORD
        # ECMA's set is ASCII and Python's contains it: the narrow reading is ASCII.
        bounds = _Bounds(ascii_set, _union(ascii_set, _python_class(lower)))
    return bounds.negated() if letter.isupper() else bounds


def _shorthand_lazy(letter: str) -> _Bounds:
    """`\\d` / `\\w` without the Unicode scan (their wide side is computed on demand)."""
    return _Bounds(_ASCII_DIGIT if letter == "d" else _ASCII_WORD, wide=letter)


_GC_LONG = {
    "letter": "L", "cased_letter": "LC", "uppercase_letter": "Lu", "lowercase_letter": "Ll",
    "titlecase_letter": "Lt", "modifier_letter": "Lm", "other_letter": "Lo", "mark": "M",
    "nonspacing_mark": "Mn", "spacing_mark": "Mc", "enclosing_mark": "Me", "number": "N",
    "decimal_number": "Nd", "digit": "Nd", "letter_number": "Nl", "other_number": "No",
    "punctuation": "P", "connector_punctuation": "Pc", "dash_punctuation": "Pd",
    "open_punctuation": "Ps", "close_punctuation": "Pe", "initial_punctuation": "Pi",
    "final_punctuation": "Pf", "other_punctuation": "Po", "symbol": "S", "math_symbol": "Sm",
    "currency_symbol": "Sc", "modifier_symbol": "Sk", "other_symbol": "So",
    "separator": "Z", "space_separator": "Zs", "line_separator": "Zl",
    "paragraph_separator": "Zp", "other": "C", "control": "Cc", "format": "Cf",
    "private_use": "Co", "unassigned": "Cn",
}  # fmt: skip


@cache
def _general_category(name: str) -> Ranges:
    """`\\p{name}` for a Unicode general category (short or long name), from unicodedata."""
    key = name
    for prefix in ("General_Category=", "gc="):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    key = _GC_LONG.get(key.lower().replace(" ", "_"), key)
    if key == "LC":
        return _union(_general_category("Lu"), _general_category("Ll"), _general_category("Lt"))
    if not (1 <= len(key) <= 2 and key[0] in "LMNPSZC"):
        raise UnsupportedPattern(f"unsupported Unicode property \\p{{{name}}}")
    result = _scan(lambda ch: unicodedata.category(ch).startswith(key))
    if not result:
        raise UnsupportedPattern(f"unknown Unicode property \\p{{{name}}}")
    return result


# ---------------------------------------------------------------------------------------------
# syntax tree
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Set:
    chars: Ranges  # the narrow (sound) reading


@dataclass(frozen=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Alt:
    options: tuple[_Node, ...]


@dataclass(frozen=True)
class _Repeat:
    body: _Node
    low: int
    high: int | None


@dataclass(frozen=True)
class _Anchor:
    start: bool  # True: ^, False: $


_Node = _Set | _Seq | _Alt | _Repeat | _Anchor

_QUANT_CHARS = "*+?"
_PYTHON_ONLY_ESCAPES = set("aAZzGNUgLl")  # a meaning in Python that ECMA does not share


class _Parser:
    """Recursive descent over ECMA-262 pattern syntax, with Annex B leniency.

    Characters are code points (as in `u` mode and in Python), not UTF-16 units.
    """

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0

    # -- helpers ---------------------------------------------------------------------------
    def _peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.src[i] if i < len(self.src) else ""

    def _error(self, message: str) -> UnsupportedPattern:
        return UnsupportedPattern(f"{message} at position {self.pos} in pattern {self.src!r}")

    def parse(self) -> _Node:
        node = self._alternation()
        if self.pos != len(self.src):
            raise self._error("unbalanced parenthesis")
        return node

    # -- structure -------------------------------------------------------------------------
    def _alternation(self) -> _Node:
        options = [self._sequence()]
        while self._peek() == "|":
            self.pos += 1
            options.append(self._sequence())
        return options[0] if len(options) == 1 else _Alt(tuple(options))

    def _sequence(self) -> _Node:
        items: list[_Node] = []
        while self.pos < len(self.src) and self._peek() not in "|)":
            items.append(self._term())
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def _term(self) -> _Node:
        start = self.pos
        atom = self._atom()
        quant = self._quantifier()
        if quant is None:
            return atom
        if isinstance(atom, _Anchor):
            self.pos = start
            raise self._error("quantifier after an anchor")
        if self._peek() == "?":  # lazy: same language
            self.pos += 1
        if (self._peek() and self._peek() in _QUANT_CHARS) or self._brace_quantifier(peek=True):
            raise self._error("repeated quantifier (possessive in Python, an error in ECMA)")
        low, high = quant
        return _Repeat(atom, low, high)

    def _quantifier(self) -> tuple[int, int | None] | None:
        ch = self._peek()
        if ch == "*":
            self.pos += 1
            return 0, None
        if ch == "+":
            self.pos += 1
            return 1, None
        if ch == "?":
            self.pos += 1
            return 0, 1
        if ch == "{":
            return self._brace_quantifier(peek=False)
        return None

    def _brace_quantifier(self, peek: bool) -> tuple[int, int | None] | None:
        """`{n}`, `{n,}`, `{n,m}`; anything else starting with `{` is a literal brace."""
        src, i = self.src, self.pos
        if i >= len(src) or src[i] != "{":
            return None
        j = i + 1
        while j < len(src) and src[j].isascii() and src[j].isdigit():
            j += 1
        if j == i + 1:
            if src[j : j + 1] == "," and src[j + 1 : j + 2].isdigit():
                raise self._error("`{,n}` (a quantifier in Python, literal text in ECMA)")
            return None
        low = int(src[i + 1 : j])
        high: int | None = low
        if src[j : j + 1] == ",":
            k = j + 1
            while k < len(src) and src[k].isascii() and src[k].isdigit():
                k += 1
            high = int(src[j + 1 : k]) if k > j + 1 else None
            j = k
        if src[j : j + 1] != "}":
            return None
        if high is not None and high < low:
            raise self._error("quantifier range out of order")
        if not peek:
            self.pos = j + 1
        return low, high

    def _atom(self) -> _Node:
        ch = self._peek()
        if ch == "^" or ch == "$":
            self.pos += 1
            return _Anchor(start=ch == "^")
        if ch == ".":
            self.pos += 1
            return _Set(_complement(_LINE_TERMINATORS))
        if ch == "(":
            return self._group()
        if ch == "[":
            return _Set(self._class())
        if ch == "\\":
            return self._escape_atom()
        if ch in _QUANT_CHARS or (ch == "{" and self._brace_quantifier(peek=True)):
            raise self._error("nothing to repeat")
        self.pos += 1
        return self._literal(ord(ch))

    def _literal(self, cp: int) -> _Set:
        if _SURROGATES[0] <= cp <= _SURROGATES[1]:
            raise self._error("surrogate code unit (ECMA pairs them, Python does not)")
        return _Set(((cp, cp),))

    def _group(self) -> _Node:
        self.pos += 1  # (
        if self._peek() == "?":
            nxt, nxt2 = self._peek(1), self._peek(2)
            if nxt == ":":
                self.pos += 2
            elif nxt in "=!" or (nxt == "<" and nxt2 in "=!"):
                raise self._error("lookaround assertion")
            elif nxt == "<" or (nxt == "P" and nxt2 == "<"):
                end = self.src.find(">", self.pos)
                if end < 0:
                    raise self._error("unterminated group name")
                self.pos = end + 1
            elif nxt == "P" and nxt2 == "=":
                raise self._error("backreference")
            else:
                raise self._error("inline flags or other group extension")
        body = self._alternation()
        if self._peek() != ")":
            raise self._error("missing )")
        self.pos += 1
        return body

    # -- escapes ---------------------------------------------------------------------------
    def _escape_atom(self) -> _Node:
        self.pos += 1  # backslash
        ch = self._peek()
        if not ch:
            raise self._error("pattern ends with a backslash")
        if ch in "bB":
            raise self._error("word boundary assertion")
        if ch.isdigit() and ch != "0":
            raise self._error("backreference")
        if ch == "k":
            raise self._error("named backreference")
        bounds = self._class_escape()
        if bounds is not None:
            return _Set(bounds.lo)
        return self._literal(self._char_escape())

    def _class_escape(self) -> _Bounds | None:
        """`\\d \\D \\w \\W \\s \\S \\p{..} \\P{..}` after the backslash, else None."""
        ch = self._peek()
        if ch in "dDwWsS":
            self.pos += 1
            return _shorthand(ch) if ch.isupper() or ch == "s" else _shorthand_lazy(ch)
        if ch in "pP" and self._peek(1) == "{":
            end = self.src.find("}", self.pos)
            if end < 0:
                raise self._error("unterminated \\p{")
            name = self.src[self.pos + 2 : end]
            self.pos = end + 1
            ranges = _general_category(name)
            bounds = _Bounds.exact(ranges)
            return bounds.negated() if ch == "P" else bounds
        return None

    def _char_escape(self) -> int:
        """One escaped character after the backslash (not a class escape)."""
        ch = self._peek()
        self.pos += 1
        simple = {"t": 9, "n": 10, "v": 11, "f": 12, "r": 13}
        if ch in simple:
            return simple[ch]
        if ch == "0":
            if self._peek().isdigit():
                raise self._error("octal escape")
            return 0
        if ch.isdigit():
            raise self._error("octal escape or backreference")
        if ch in "xu":
            width = 2 if ch == "x" else 4
            digits = self.src[self.pos : self.pos + width]
            if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise self._error(f"\\{ch} without {width} hex digits")
            self.pos += width
            cp = int(digits, 16)
            if _SURROGATES[0] <= cp <= _SURROGATES[1]:
                raise self._error("surrogate code unit (ECMA pairs them, Python does not)")
            return cp
        if ch == "c":
            raise self._error("control escape \\c")
        if ch in _PYTHON_ONLY_ESCAPES:
            raise self._error(f"escape \\{ch} (means something else in Python)")
        return ord(ch)  # identity escape (Annex B allows letters too)

    # -- classes ---------------------------------------------------------------------------
    def _class(self) -> Ranges:
        self.pos += 1  # [
        negated = self._peek() == "^"
        if negated:
            self.pos += 1
        if self._peek() == "]":
            raise self._error("empty class `[]`/`[^]` (ECMA and Python read it differently)")
        items: list[_Bounds] = []
        while True:
            ch = self._peek()
            if not ch:
                raise self._error("missing ]")
            if ch == "]":
                self.pos += 1
                break
            first = self._class_atom()
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.pos += 1
                second = self._class_atom()
                if isinstance(first, int) and isinstance(second, int):
                    if second < first:
                        raise self._error("class range out of order")
                    items.append(_Bounds.exact(_subtract(((first, second),), (_SURROGATES,))))
                    continue
                # Annex B: a range with a class escape at either end is literal `-`.
                items.append(_Bounds.exact(_chars("-")))
                for part in (first, second):
                    items.append(part if isinstance(part, _Bounds) else self._one(part))
                continue
            items.append(first if isinstance(first, _Bounds) else self._one(first))
        lo = _union(*(b.lo for b in items))
        if negated:
            return _complement(_union(*(b.upper() for b in items)))
        return lo

    @staticmethod
    def _one(cp: int) -> _Bounds:
        return _Bounds.exact(((cp, cp),))

    def _class_atom(self) -> int | _Bounds:
        ch = self._peek()
        if ch != "\\":
            self.pos += 1
            cp = ord(ch)
            if _SURROGATES[0] <= cp <= _SURROGATES[1]:
                raise self._error("surrogate code unit (ECMA pairs them, Python does not)")
            return cp
        self.pos += 1
        nxt = self._peek()
        if not nxt:
            raise self._error("pattern ends with a backslash")
        if nxt == "b":
            self.pos += 1
            return 8
        if nxt == "-":
            self.pos += 1
            return ord("-")
        bounds = self._class_escape()
        if bounds is not None:
            return bounds
        if nxt == "B" or nxt == "k":
            raise self._error(f"\\{nxt} in a class")
        return self._char_escape()


# ---------------------------------------------------------------------------------------------
# emission
# ---------------------------------------------------------------------------------------------

_META = set("\\.+*?()|[]{}^$#&-~")
# JSON's two-character escapes: the character after the backslash, as a regex class member.
_SHORT_ESCAPES = {0x22: '"', 0x5C: "\\\\", 0x09: "t", 0x0A: "n", 0x0D: "r", 0x08: "b", 0x0C: "f"}
_ALWAYS_ESCAPED = _norm([(0x22, 0x22), (0x5C, 0x5C), (0x09, 0x0A), (0x0D, 0x0D)])
_JSON_SPECIAL = _norm([(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)])
_BROAD = 256  # a set larger than this is "any character but ..." (see _emit_set)
_ANY_SAFE = '[^"\\\\\\x00-\\x1F]'  # prefix / suffix filler: any character needing no escape


def _char_regex(cp: int) -> str:
    """One code point as a regex atom (outside or inside a class)."""
    ch = chr(cp)
    if ch.isascii() and ch.isalnum():
        return ch
    if 0x20 <= cp < 0x7F:
        return "\\" + ch if ch in _META else ch
    return f"\\x{{{cp:X}}}"


def _class_regex(ranges: Ranges) -> str:
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char_regex(ranges[0][0])
    parts = []
    for lo, hi in ranges:
        if lo == hi:
            parts.append(_char_regex(lo))
        elif hi == lo + 1:
            parts.append(_char_regex(lo) + _char_regex(hi))
        else:
            parts.append(f"{_char_regex(lo)}-{_char_regex(hi)}")
    return "[" + "".join(parts) + "]"


def _escaped_form(cp: int) -> str:
    """The JSON escape of a character that must be escaped, as a regex."""
    short = _SHORT_ESCAPES.get(cp)
    if short is not None:
        return "\\\\" + short
    return f"\\\\u00{cp:02x}"


@dataclass(frozen=True)
class _Out:
    regex: str
    atom: bool  # safe to quantify without a group


def _size(ranges: Ranges) -> int:
    return sum(hi - lo + 1 for lo, hi in ranges)


def _emit_set(chars: Ranges) -> _Out | None:
    plain = _subtract(chars, _JSON_SPECIAL)
    if _size(chars) > _BROAD:
        # A broad set (`.`, `[^...]`, `\\S`) never yields `\\"`: a quote byte inside the content
        # would let the engine's unanchored search restart at every `\\"` of a `"..."` value
        # and multiply its states; a pattern that names `"` explicitly still gets it.
        chars = _subtract(chars, _chars('"'))
    escaped = [cp for lo, hi in _intersect(chars, _ALWAYS_ESCAPED) for cp in range(lo, hi + 1)]
    if not plain and not escaped:
        # Only rare control characters: produce them (escaped) rather than nothing.
        escaped = [cp for lo, hi in _intersect(chars, _JSON_SPECIAL) for cp in range(lo, hi + 1)]
    options: list[str] = []
    if plain:
        options.append(_class_regex(plain))
    short = [cp for cp in escaped if cp in _SHORT_ESCAPES]
    if len(short) == 1:
        options.append(_escaped_form(short[0]))
    elif short:
        options.append("\\\\[" + "".join(_SHORT_ESCAPES[cp] for cp in short) + "]")
    options.extend(_escaped_form(cp) for cp in escaped if cp not in _SHORT_ESCAPES)
    if not options:
        return None
    if len(options) == 1:
        single = options[0]
        return _Out(single, atom=not single.startswith("\\\\"))
    return _Out("(?:" + "|".join(options) + ")", atom=True)


def _max_width(node: _Node) -> float:
    if isinstance(node, _Set):
        return 1
    if isinstance(node, _Anchor):
        return 0
    if isinstance(node, _Seq):
        return sum(_max_width(n) for n in node.items)
    if isinstance(node, _Alt):
        return max(_max_width(n) for n in node.options)
    if node.high == 0:
        return 0
    inner = _max_width(node.body)
    if inner == 0:
        return 0
    return float("inf") if node.high is None else inner * node.high


def _nullable(node: _Node) -> bool:
    """Can `node` match the empty string without relying on an anchor?"""
    if isinstance(node, _Set | _Anchor):
        return False
    if isinstance(node, _Seq):
        return all(_nullable(n) for n in node.items)
    if isinstance(node, _Alt):
        return any(_nullable(n) for n in node.options)
    return node.low == 0 or _nullable(node.body)


def _end_anchor_at(items: tuple[_Node, ...]) -> int | None:
    """Index of a top-level `$` followed only by nullable items (`a$(b)?`), if any."""
    for i, item in enumerate(items):
        rest = items[i + 1 :]
        if isinstance(item, _Anchor) and not item.start and all(_nullable(n) for n in rest):
            return i
    return None


def _start_anchor_at(items: tuple[_Node, ...]) -> int | None:
    """Index of a top-level `^` preceded only by nullable items (`(a)?^b`), if any."""
    for i in range(len(items) - 1, -1, -1):
        item = items[i]
        if isinstance(item, _Anchor) and item.start and all(_nullable(n) for n in items[:i]):
            return i
    return None


def _trim_anchored(items: tuple[_Node, ...], at_start: bool, at_end: bool) -> tuple[_Node, ...]:
    """Drop nullable items outside `^`/`$` at the text's edges: they can only match empty."""
    if at_end and (end := _end_anchor_at(items)) is not None:
        items = items[: end + 1]
    if at_start and (start := _start_anchor_at(items)) is not None:
        items = items[start:]
    return items


def _emit(node: _Node, at_start: bool, at_end: bool) -> _Out | None:
    """Regex for `node`, or None when (under these anchoring facts) it matches nothing.

    at_start / at_end: the text before / after this node is known to be empty, so `^` / `$`
    hold there; elsewhere an anchor is treated as failing (a sound under-approximation).
    """
    if isinstance(node, _Set):
        return _emit_set(node.chars)
    if isinstance(node, _Anchor):
        return _Out("", atom=False) if (at_start if node.start else at_end) else None
    if isinstance(node, _Seq):
        items = _trim_anchored(node.items, at_start, at_end)
        widths = [_max_width(n) for n in items]
        parts: list[_Out] = []
        for i, item in enumerate(items):
            out = _emit(
                item,
                at_start and sum(widths[:i]) == 0,
                at_end and sum(widths[i + 1 :]) == 0,
            )
            if out is None:
                return None
            if out.regex:
                parts.append(out)
        if len(parts) == 1:
            return parts[0]
        return _Out("".join(p.regex for p in parts), atom=False)
    if isinstance(node, _Alt):
        options: list[str] = []
        for option in node.options:
            out = _emit(option, at_start, at_end)
            if out is not None and out.regex not in options:
                options.append(out.regex)
        if not options:
            return None
        if len(options) == 1:
            return _Out(options[0], atom=False)
        return _Out("(?:" + "|".join(options) + ")", atom=True)
    # _Repeat
    low = node.low
    high = node.high
    if high is not None and high > REPEAT_CAP:
        high = max(low, REPEAT_CAP)
    if high == 0:
        return _Out("", atom=False)
    inherit = high == 1
    body = _emit(node.body, at_start and inherit, at_end and inherit)
    if body is None:
        return None if low > 0 else _Out("", atom=False)
    if not body.regex:
        return body
    if low == 1 and high == 1:
        return body
    group = body.regex if body.atom else f"(?:{body.regex})"
    if (low, high) == (0, None):
        suffix = "*"
    elif (low, high) == (1, None):
        suffix = "+"
    elif (low, high) == (0, 1):
        suffix = "?"
    elif high is None:
        suffix = f"{{{low},}}"
    elif low == high:
        suffix = f"{{{low}}}"
    else:
        suffix = f"{{{low},{high}}}"
    return _Out(group + suffix, atom=False)


def _min_length(node: _Node) -> int:
    """Characters in the shortest string `node` matches (counts multiply when nested)."""
    if isinstance(node, _Set):
        return 1
    if isinstance(node, _Seq):
        return sum(_min_length(item) for item in node.items)
    if isinstance(node, _Alt):
        return min((_min_length(option) for option in node.options), default=0)
    if isinstance(node, _Repeat):
        return node.low * _min_length(node.body) if node.low else 0
    return 0


def _branches(node: _Node) -> tuple[_Node, ...]:
    return node.options if isinstance(node, _Alt) else (node,)


def _edges(branch: _Node) -> tuple[bool, bool]:
    """Does the branch start with `^` / end with `$` (directly, at top level)?"""
    items = branch.items if isinstance(branch, _Seq) else (branch,)
    return _start_anchor_at(items) is not None, _end_anchor_at(items) is not None


@lru_cache(maxsize=1024)
def pattern_to_regex(pattern: str) -> str:
    """A string-content fragment whose every accepted string contains a match of `pattern`.

    Raises UnsupportedPattern (a ValueError) for constructs that cannot be translated
    soundly, for invalid patterns, and for patterns whose translation matches nothing.
    """
    tree = _Parser(pattern).parse()
    shortest = _min_length(tree)
    if shortest > MIN_LENGTH_CAP:
        raise UnsupportedPattern(
            f"pattern {pattern[:60]!r} matches only strings of at least {shortest:,} "
            f"characters, over the limit of {MIN_LENGTH_CAP:,}"
        )
    options: list[str] = []
    for branch in _branches(tree):
        starts, ends = _edges(branch)
        prefix = starts or not ends  # generated text starts where the body starts
        suffix = ends or not starts
        out = _emit(branch, at_start=prefix, at_end=suffix)
        if out is None:
            continue
        # Emitted regexes never have a top-level `|`, so plain concatenation is safe.
        text = out.regex
        if not prefix:
            text = f"{_ANY_SAFE}*{text}"
        if not suffix:
            text = f"{text}{_ANY_SAFE}*"
        if text not in options:
            options.append(text)
    if not options:
        raise UnsupportedPattern(
            f"translation matches nothing that can be generated, in pattern {pattern!r}"
        )
    if len(options) == 1:
        return options[0]
    return "(?:" + "|".join(options) + ")"
