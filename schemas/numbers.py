"""JSON Schema numeric constraints (minimum, maximum, exclusive bounds, multipleOf) as regexes.

Why a regex and not a check after generation: the grammar engine only masks tokens with the
regex, so the regex is the whole guarantee. Every string it accepts must pass
python-jsonschema's own checks (which compare Python ints and floats, and test multipleOf with
float division), and the values a schema plainly allows should stay reachable.

Building blocks:

* Integers and fixed-point decimals are built by a digit-by-digit walk over the decimal text
  (the `to-regex-range` idea), in one pass per number of integer digits. The walk tracks how
  far the digits still follow the lower and upper bound and, for multipleOf, the remainder of
  the digits read so far, and it groups digits leading to the same rest into one class.
* Unbounded integers that must be multiples of k: when k divides a power of ten only the last
  digits matter (`[1-9][0-9]*` + a suffix); otherwise the remainder automaton is turned into a
  regex by state elimination (small k only).
* Regexes are built as hash-consed trees, so equal sub-regexes are shared while building and
  the size of the written-out regex is known before it is rendered; anything too big raises
  `TooComplexError` instead of producing a regex the engine would be slow to compile.

Subset of JSON numbers produced (all of it valid JSON, each choice documented where made):

* `-0` and other negative zeros are never produced.
* Exponents only when a number has no bound and no multipleOf (`UNBOUNDED_NUMBER`).
* A number written with a fraction has at most `FRACTION_DIGITS` fraction digits and at most
  `FRACTION_INT_DIGITS` integer digits (so it never parses to infinity); numbers written as
  plain integers are unrestricted (Python ints are exact).
* Bounds are honoured both as python-jsonschema checks them (the parsed float against the
  bound's float value) and as the schema author wrote them (the bound's shortest decimal
  form): `maximum: 100` refuses `100.000000000000001` although it parses to 100.0.
* A fractional multipleOf such as 0.01 uses the multiples jsonschema accepts: all of them when
  the range holds at most `ENUMERATION_LIMIT` of them (each one checked the way jsonschema
  checks it; e.g. 0.07 is not, since 0.07 / 0.01 == 7.000000000000001), otherwise only the
  multiples that are exact binary fractions (quarters for 0.01, halves for 0.1), which always
  pass. An integer-valued multipleOf on a number produces integers only.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from numbers import Real

__all__ = [
    "ENUMERATION_LIMIT",
    "FRACTION_DIGITS",
    "FRACTION_INT_DIGITS",
    "UNBOUNDED_NUMBER",
    "EmptyRangeError",
    "TooComplexError",
    "integer_regex",
    "number_regex",
]

# Fraction digits of a bounded number; matches the unbounded number pattern below.
FRACTION_DIGITS = 16
# Integer digits of a number written with a fraction (below 10**16, so always finite).
FRACTION_INT_DIGITS = 16
# A fractional multipleOf whose range holds at most this many multiples lists them all.
ENUMERATION_LIMIT = 2000
# Numbers without any bound: finite (at most 16 integer digits and a two-digit exponent).
UNBOUNDED_NUMBER = r"-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,16})?(?:[eE][+-]?[0-9]{1,2})?"
UNBOUNDED_INTEGER = r"(?:0|-?[1-9][0-9]*)"

# Past these sizes the engine's compile time grows beyond what a schema is worth.
_MAX_REGEX_CHARS = 60_000
_MAX_WALK_STATES = 60_000
_MAX_DFA_STATES = 64
# Regexes with nested stars (remainders modulo 3, 7, ...) compile slowly past this size.
_MAX_CYCLIC_CHARS = 4_000
_MAX_CYCLIC_ENDINGS = 30
_FLOAT_EXACT_INT = 2**53  # integers up to this are exact floats
# Longer bounds are rounded inward to a whole number of digits (regex nesting stays shallow).
_MAX_BOUND_DIGITS = 40
_MIDPOINT_EPS = Fraction(1, 2**54)


class EmptyRangeError(ValueError):
    """No number satisfies the constraints (the schema is unsatisfiable)."""

    def __init__(self, message: str = "empty range") -> None:
        super().__init__(message)


class TooComplexError(ValueError):
    """The constraints are satisfiable but have no regex of reasonable size here."""

    def __init__(self, message: str = "multipleOf too complex") -> None:
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# Hash-consed regex trees
# --------------------------------------------------------------------------------------------

_DIGITS = "0123456789"


class _Node:
    """One regex node.

    kind: cls (a: frozenset of chars), rep (a: node, lo, hi), seq, alt (a: tuple).

    Nodes are interned by `_Ast`, so structurally equal nodes are the same object and can be
    compared and grouped by identity; `size` is the length of the rendered regex.
    """

    __slots__ = ("a", "hi", "kind", "lo", "size")

    def __init__(self, kind: str, a, lo: int = 0, hi: int | None = 0, size: int = 0) -> None:
        self.kind = kind
        self.a = a
        self.lo = lo
        self.hi = hi
        self.size = size


def _escape(ch: str, in_class: bool = True) -> str:
    special = "\\.+*?()|[]{}^$#&-~" if in_class else "\\.+*?()|[]{}^$"
    return "\\" + ch if ch in special else ch


def _render_class(chars: frozenset[str]) -> str:
    if len(chars) == 1:
        return _escape(next(iter(chars)), in_class=False)
    digits = sorted(c for c in chars if c in _DIGITS)
    parts: list[str] = []
    i = 0
    while i < len(digits):
        j = i
        while j + 1 < len(digits) and ord(digits[j + 1]) == ord(digits[j]) + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{digits[i]}-{digits[j]}")
        else:
            parts.extend(digits[i : j + 1])
        i = j + 1
    parts.extend(_escape(c) for c in sorted(chars) if c not in _DIGITS)
    return "[" + "".join(parts) + "]"


def _quantifier(lo: int, hi: int | None) -> str:
    if hi is None:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    if lo == hi:
        return f"{{{lo}}}"
    if (lo, hi) == (0, 1):
        return "?"
    return f"{{{lo},{hi}}}"


class _Ast:
    """Smart constructors with a few exact simplifications (runs, optional runs, merges)."""

    def __init__(self) -> None:
        self._table: dict[tuple, _Node] = {}
        self.eps = self._intern(("seq", ()), lambda: _Node("seq", ()))

    def _intern(self, key: tuple, make: Callable[[], _Node]) -> _Node:
        node = self._table.get(key)
        if node is None:
            node = self._table[key] = make()
        return node

    # leaves ------------------------------------------------------------------------------
    def cls(self, chars: Iterable[str]) -> _Node:
        fs = frozenset(chars)
        return self._intern(("cls", fs), lambda: _Node("cls", fs, size=len(_render_class(fs))))

    def lit(self, text: str) -> _Node:
        return self.seq(*(self.cls(ch) for ch in text))

    # combinators -------------------------------------------------------------------------
    def rep(self, x: _Node, lo: int, hi: int | None) -> _Node:
        if hi is not None and hi < lo:
            raise ValueError("empty repetition")
        if x is self.eps or hi == 0:
            return self.eps
        if lo == 1 and hi == 1:
            return x
        if x.kind == "rep":
            a, b, y = x.lo, x.hi, x.a
            if a == b:
                return self.rep(y, a * lo, None if hi is None else a * hi)
            if lo == 0 and hi == 1 and a in (0, 1):
                return self.rep(y, 0, b)
            if a == 0 and b == 1 and lo == 0:
                return self.rep(y, 0, hi)
            if b is None and a in (0, 1):
                return self.rep(y, 0 if (lo == 0 or a == 0) else 1, None)
        key = ("rep", id(x), lo, hi)

        def make() -> _Node:
            atom = x.size if x.kind in ("cls", "alt") else x.size + 4
            return _Node("rep", x, lo, hi, atom + len(_quantifier(lo, hi)))

        return self._intern(key, make)

    def opt(self, x: _Node) -> _Node:
        return self.rep(x, 0, 1)

    @staticmethod
    def _base(x: _Node) -> tuple[_Node, int, int | None]:
        return (x.a, x.lo, x.hi) if x.kind == "rep" else (x, 1, 1)

    def seq(self, *items: _Node) -> _Node:
        flat: list[_Node] = []
        for item in items:
            for part in item.a if item.kind == "seq" else (item,):
                if flat:
                    b1, lo1, hi1 = self._base(flat[-1])
                    b2, lo2, hi2 = self._base(part)
                    if b1 is b2 and b1.kind == "cls":
                        hi = None if hi1 is None or hi2 is None else hi1 + hi2
                        flat[-1] = self.rep(b1, lo1 + lo2, hi)
                        continue
                flat.append(part)
        if len(flat) == 1:
            return flat[0]
        parts = tuple(flat)
        return self._intern(
            ("seq", tuple(id(p) for p in parts)),
            lambda: _Node("seq", parts, size=sum(p.size for p in parts)),
        )

    def alt(self, items: Iterable[_Node | None]) -> _Node | None:
        flat: list[_Node] = []
        has_eps = False
        for item in items:
            if item is None:
                continue
            for part in item.a if item.kind == "alt" else (item,):
                if part is self.eps:
                    has_eps = True
                elif all(part is not f for f in flat):
                    flat.append(part)
        classes = [p for p in flat if p.kind == "cls"]
        if len(classes) > 1:
            merged = self.cls(frozenset().union(*(c.a for c in classes)))
            first = flat.index(classes[0])
            flat = [p for p in flat if p.kind != "cls"]
            flat.insert(first, merged)
        flat = self._merge_runs(flat)
        if not flat:
            return self.eps if has_eps else None
        if len(flat) == 1:
            node = flat[0]
        else:
            parts = tuple(flat)
            node = self._intern(
                ("alt", tuple(id(p) for p in parts)),
                lambda: _Node("alt", parts, size=3 + len(parts) + sum(p.size for p in parts)),
            )
        return self.opt(node) if has_eps else node

    def _merge_runs(self, flat: list[_Node]) -> list[_Node]:
        """Merge `P X{a,b} S | P X{c,d} S` into `P X{min,max} S` when the counts touch."""
        changed = True
        while changed and len(flat) > 1:
            changed = False
            for i in range(len(flat)):
                for j in range(i + 1, len(flat)):
                    merged = self._merge_pair(flat[i], flat[j])
                    if merged is not None:
                        flat[i] = merged
                        del flat[j]
                        changed = True
                        break
                if changed:
                    break
        return flat

    def _merge_pair(self, u: _Node, v: _Node) -> _Node | None:
        us = u.a if u.kind == "seq" else (u,)
        vs = v.a if v.kind == "seq" else (v,)
        p = 0
        while p < min(len(us), len(vs)) and us[p] is vs[p]:
            p += 1
        s = 0
        while s < min(len(us), len(vs)) - p and us[-1 - s] is vs[-1 - s]:
            s += 1
        mid_u, mid_v = us[p : len(us) - s], vs[p : len(vs) - s]
        if len(mid_u) > 1 or len(mid_v) > 1 or (not mid_u and not mid_v):
            return None
        if mid_u and mid_v:
            bu, lo1, hi1 = self._base(mid_u[0])
            bv, lo2, hi2 = self._base(mid_v[0])
            if bu is not bv:
                return None
        else:
            bu, lo1, hi1 = self._base((mid_u or mid_v)[0])
            lo2, hi2 = 0, 0
        top1 = math.inf if hi1 is None else hi1
        top2 = math.inf if hi2 is None else hi2
        if max(lo1, lo2) > min(top1, top2) + 1:
            return None
        hi = None if hi1 is None or hi2 is None else max(hi1, hi2)
        middle = self.rep(bu, min(lo1, lo2), hi)
        return self.seq(*us[:p], middle, *us[len(us) - s :])

    # output ------------------------------------------------------------------------------
    def render(self, node: _Node) -> str:
        if node.size > _MAX_REGEX_CHARS:
            raise TooComplexError()
        memo: dict[int, str] = {}

        def go(n: _Node) -> str:
            done = memo.get(id(n))
            if done is not None:
                return done
            if n.kind == "cls":
                text = _render_class(n.a)
            elif n.kind == "rep":
                inner = go(n.a)
                atom = inner if n.a.kind in ("cls", "alt") else f"(?:{inner})"
                quant = _quantifier(n.lo, n.hi)
                if (
                    n.a.kind == "cls"
                    and n.lo == n.hi
                    and len(atom) * n.lo <= len(atom) + len(quant)
                ):
                    text = atom * n.lo
                else:
                    text = atom + quant
            elif n.kind == "seq":
                text = "".join(go(p) for p in n.a)
            else:
                text = "(?:" + "|".join(go(p) for p in n.a) + ")"
            memo[id(n)] = text
            return text

        return go(node)


# --------------------------------------------------------------------------------------------
# Digit walks: non-negative fixed-point decimals in a range, optionally multiples of K
# --------------------------------------------------------------------------------------------

_INT, _DOT, _FRAC = 0, 1, 2


def _split_modulus(k: int) -> tuple[int, int]:
    """(j, c): k = 2**a * 5**b * c with c coprime to 10 and j = max(a, b), so k | c * 10**j."""
    a = b = 0
    while k % 2 == 0:
        k //= 2
        a += 1
    while k % 5 == 0:
        k //= 5
        b += 1
    return max(a, b), k


class _Walk:
    """Texts of non-negative decimals whose scaled value T = value * 10**frac lies in a range
    and is a multiple of `modulus`.

    Texts are `I` (when `bare`) and `I.f` with 1..frac fraction digits (when `fractional`);
    missing fraction digits count as zeros, so `2.5` and `2.50` are both written when allowed.
    """

    def __init__(self, ast: _Ast, frac: int, modulus: int, *, bare: bool, fractional: bool) -> None:
        if (fractional and frac < 1) or (bare and not fractional and frac != 0):
            raise AssertionError("inconsistent text forms")
        self.ast = ast
        self.frac = frac
        self.k = modulus
        self.bare = bare
        self.fractional = fractional
        self._memo: dict[tuple, _Node | None] = {}
        self._digit = [ast.cls(d) for d in _DIGITS]
        self._dot = ast.cls(".")

    # feasibility -----------------------------------------------------------------------------
    def _nonempty(self, m: int, lo: str | None, hi: str | None, res: int) -> bool:
        """Some m-digit completion within [lo, hi] makes the whole value a multiple of k."""
        low = int(lo) if lo else 0
        high = int(hi) if hi else 10**m - 1
        target = (-res * pow(10, m, self.k)) % self.k
        return low + (target - low) % self.k <= high

    def _can_end(self, m: int, lo: str | None, res: int) -> bool:
        return lo is None and res * pow(10, m, self.k) % self.k == 0

    # the walk ----------------------------------------------------------------------------
    def state(
        self, ri: int, rf: int, lo: str | None, hi: str | None, res: int, phase: int
    ) -> _Node | None:
        """Regex for the rest of the text: ri integer and rf fraction digits to go."""
        key = (ri, rf, lo, hi, res, phase)
        if key in self._memo:
            return self._memo[key]
        if len(self._memo) > _MAX_WALK_STATES:
            raise TooComplexError()
        ast = self.ast
        m = ri + rf
        options: list[_Node | None] = []
        if phase == _INT and ri == 0:
            if self.bare and self._can_end(m, lo, res):
                options.append(ast.eps)
            if self.fractional and rf > 0:
                rest = self.state(0, rf, lo, hi, res, _DOT)
                if rest is not None:
                    options.append(ast.seq(self._dot, rest))
        else:
            if phase == _FRAC and self._can_end(m, lo, res):
                options.append(ast.eps)
            if m > 0:
                options.extend(self._digits(ri, rf, lo, hi, res))
        result = ast.alt(options)
        self._memo[key] = result
        return result

    def _digits(self, ri: int, rf: int, lo: str | None, hi: str | None, res: int) -> list[_Node]:
        m = ri + rf
        nri, nrf, nphase = (ri - 1, rf, _INT) if ri > 0 else (0, rf - 1, _FRAC)
        d_lo = int(lo[0]) if lo else 0
        d_hi = int(hi[0]) if hi else 9
        groups: dict[int, tuple[_Node, list[str]]] = {}
        for d in range(d_lo, d_hi + 1):
            nlo = lo[1:] if lo and d == d_lo else None
            nhi = hi[1:] if hi and d == d_hi else None
            if nlo is not None and nlo.strip("0") == "":
                nlo = None
            if nhi is not None and nhi.strip("9") == "":
                nhi = None
            nres = (res * 10 + d) % self.k
            if not self._nonempty(m - 1, nlo, nhi, nres):
                continue
            child = self.state(nri, nrf, nlo, nhi, nres, nphase)
            if child is None:
                continue
            groups.setdefault(id(child), (child, []))[1].append(_DIGITS[d])
        return [self.ast.seq(self.ast.cls(chars), child) for child, chars in groups.values()]

    # whole magnitudes --------------------------------------------------------------------
    def magnitude(self, lo: int, hi: int | None) -> _Node | None:
        """All texts with lo <= T <= hi (hi None: unbounded, integers only)."""
        lo = max(lo, 0)
        # Bounds with very many digits would nest groups past the regex parser's limit:
        # round them inward to their leading digits (`1e308` as a minimum is 309 digits:
        # the range keeps 10**308 + a little and up, and digits past the leading ones
        # are free).
        keep = _MAX_BOUND_DIGITS + self.frac
        if hi is not None and len(str(hi)) > keep:
            unit = 10 ** (len(str(hi)) - keep)
            hi = hi // unit * unit - 1
        if len(str(lo)) > keep:
            unit = 10 ** (len(str(lo)) - keep)
            lo = -(-lo // unit) * unit
        if hi is not None and hi < lo:
            return None
        ast, f, scale = self.ast, self.frac, 10**self.frac
        branches: list[_Node | None] = []
        if lo < scale:  # integer part 0
            top = scale - 1 if hi is None else min(hi, scale - 1)
            if f == 0:
                branches.append(ast.lit("0"))  # 0 is a multiple of everything
            else:
                lo_s = _norm_lo(str(lo).zfill(f))
                hi_s = _norm_hi(str(top).zfill(f))
                if self._nonempty(f, lo_s, hi_s, 0):
                    rest = self.state(0, f, lo_s, hi_s, 0, _INT)
                    if rest is not None:
                        branches.append(ast.seq(ast.lit("0"), rest))
        tail: _Node | None = None
        if hi is None:
            if f != 0:
                raise AssertionError("unbounded fixed-point range")
            top_len, tail = self._unbounded_tail(lo)
        else:
            top_len = len(str(hi // scale))
        for length in range(1, top_len + 1):
            low = max(lo, 10 ** (length - 1) * scale)
            high = 10**length * scale - 1
            if hi is not None:
                high = min(high, hi)
            if low > high:
                continue
            lo_s, hi_s = str(low), _norm_hi(str(high))
            if self._nonempty(length + f, lo_s, hi_s, 0):
                branches.append(self.state(length, f, lo_s, hi_s, 0, _INT))
        branches.append(tail)
        return ast.alt(branches)

    def _unbounded_tail(self, lo: int) -> tuple[int, _Node | None]:
        """(n, regex): integers with more than n digits that are multiples of k.

        Callers cover the integers with at most n digits (and >= lo) by digit walks.
        """
        ast = self.ast
        j, c = _split_modulus(self.k)
        if c == 1:
            # k divides 10**j: a multiple is any prefix followed by j digits that are one.
            n = max(len(str(lo)), j)
            suffix = self.state(j, 0, None, None, 0, _INT) if j else ast.eps
            if suffix is None:
                raise AssertionError("no suffix")
            head = ast.seq(ast.cls("123456789"), ast.rep(ast.cls(_DIGITS), n - j, None))
            return n, ast.seq(head, suffix)
        # Other k = c * 2**a * 5**b: a prefix P whose remainder modulo c is r, then n digits
        # that complete the multiple (only P's remainder modulo c matters once n >= j).
        first = -(-lo // self.k) * self.k
        n = max(len(str(first)) if first > self.k else 0, j)
        if 10**n // (self.k // c) > _MAX_CYCLIC_ENDINGS:
            # The engine determinizes `(loop)*ending` by tracking every place the loop might
            # have stopped; with many possible endings that takes seconds (24: 0.25 s).
            raise TooComplexError()
        endings: dict[int, _Node] = {}
        for r in range(c):
            if n == 0:
                ending = ast.eps if r == 0 else None
            elif self._nonempty(n, None, None, r):
                ending = self.state(n, 0, None, None, r, _INT)
            else:
                ending = None
            if ending is not None:
                endings[r] = ending
        return n, _remainder_regex(ast, c, endings)


def _norm_lo(s: str) -> str | None:
    return None if s.strip("0") == "" else s


def _norm_hi(s: str) -> str | None:
    return None if s.strip("9") == "" else s


# --------------------------------------------------------------------------------------------
# Remainder automata to regexes (unbounded multiples of k when k does not divide 10**j)
# --------------------------------------------------------------------------------------------


def _remainder_regex(ast: _Ast, c: int, endings: dict[int, _Node]) -> _Node:
    """Integers without leading zeros with remainder r modulo c, followed by endings[r]."""
    if c > _MAX_DFA_STATES:
        raise TooComplexError()
    dfa: dict[object, dict[str, object]] = {"start": {d: int(d) % c for d in "123456789"}}
    for r in range(c):
        dfa[r] = {d: (r * 10 + int(d)) % c for d in _DIGITS}
    return _dfa_to_regex(ast, dfa, "start", endings)


def _dfa_to_regex(ast: _Ast, dfa: dict, start: object, endings: dict) -> _Node:
    """State elimination, cheapest state first (Delgado-Morais weight); endings maps a state
    to the regex that finishes a match from it."""
    begin, end = ("begin",), ("end",)
    edges: dict[tuple, _Node] = {(begin, start): ast.eps}
    for s, out in dfa.items():
        by_target: dict[object, list[str]] = {}
        for d, t in out.items():
            by_target.setdefault(t, []).append(d)
        for t, chars in by_target.items():
            edges[(s, t)] = ast.cls(chars)
    for s, ending in endings.items():
        edges[(s, end)] = ending
    remaining = set(dfa)

    def weight(s: object) -> int:
        ins = [e for (p, q), e in edges.items() if q == s and p != s]
        outs = [e for (p, q), e in edges.items() if p == s and q != s]
        loop = edges.get((s, s))
        w = sum(e.size for e in ins) * (len(outs) - 1) + sum(e.size for e in outs) * (len(ins) - 1)
        if loop is not None:
            w += loop.size * (len(ins) * len(outs) - 1)
        return w

    while remaining:
        s = min(remaining, key=lambda x: (weight(x), str(x)))
        remaining.discard(s)
        loop = edges.pop((s, s), None)
        star = ast.rep(loop, 0, None) if loop is not None else ast.eps
        ins = [(p, e) for (p, q), e in edges.items() if q == s]
        outs = [(q, e) for (p, q), e in edges.items() if p == s]
        for p, _ in ins:
            del edges[(p, s)]
        for q, _ in outs:
            del edges[(s, q)]
        for p, a in ins:
            for q, c in outs:
                path = ast.seq(a, star, c)
                old = edges.get((p, q))
                new = path if old is None else ast.alt([old, path])
                if new is None or new.size > _MAX_CYCLIC_CHARS:
                    raise TooComplexError()
                edges[(p, q)] = new
    result = edges.get((begin, end))
    if result is None:
        raise EmptyRangeError()
    return result


# --------------------------------------------------------------------------------------------
# Signed ranges
# --------------------------------------------------------------------------------------------


def _signed(walk: _Walk, lo: int | None, hi: int | None) -> _Node | None:
    """Texts of values with lo <= T <= hi (None: unbounded); magnitudes shared as `-?X`.

    Integers never get `-0`. With fractions, when 0 is in range, `-0` and `-0.0` (valid, and
    equal to 0) are let through so that `0.5` and `-0.5` share one magnitude regex.
    """
    ast = walk.ast
    parts: list[_Node | None] = []
    zero_in_range = (lo is None or lo <= 0) and (hi is None or hi >= 0)
    fold_zero = walk.fractional
    if zero_in_range and not fold_zero:
        parts.append(walk.magnitude(0, 0))
    least = 0 if fold_zero else 1
    inf = math.inf
    pos = (max(least, lo if lo is not None else least), inf if hi is None else hi)
    neg = (max(least, -hi if hi is not None else least), inf if lo is None else -lo)
    pos_ok = pos[0] <= pos[1]
    neg_ok = neg[0] <= neg[1] and (lo is None or lo < 0)
    minus = ast.lit("-")

    def mag(a: float, b: float) -> _Node | None:
        return walk.magnitude(int(a), None if b == inf else int(b))

    if pos_ok and neg_ok and max(pos[0], neg[0]) <= min(pos[1], neg[1]):
        common = (max(pos[0], neg[0]), min(pos[1], neg[1]))
        shared = mag(*common)
        if shared is not None:
            parts.append(ast.seq(ast.opt(minus), shared))
        for (a, b), sign in ((pos, None), (neg, minus)):
            for rest in _difference((a, b), common):
                node = mag(*rest)
                if node is not None:
                    parts.append(node if sign is None else ast.seq(sign, node))
    else:
        if pos_ok:
            parts.append(mag(*pos))
        if neg_ok:
            node = mag(*neg)
            if node is not None:
                parts.append(ast.seq(minus, node))
    return ast.alt(parts)


def _difference(a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
    out = []
    if a[0] < b[0]:
        out.append((a[0], min(a[1], b[0] - 1)))
    if a[1] > b[1]:
        out.append((max(a[0], b[1] + 1), a[1]))
    return [r for r in out if r[0] <= r[1]]


# --------------------------------------------------------------------------------------------
# Bounds: exact values, the values as written, and float rounding
# --------------------------------------------------------------------------------------------

# A bound or step: any numbers.Real (int, float, Fraction; bool is refused). numbers.Real is
# invisible to type checkers (PEP 484's numeric tower), so annotations spell out the three.
_Real = int | float | Fraction
_Bound = tuple[_Real, bool]  # (value, exclusive)


def _check_real(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite")


def _written(value: _Real) -> Fraction:
    """The value as the schema wrote it: a float's shortest decimal form."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _tighter(a: _Bound | None, b: _Bound | None, lower: bool) -> _Bound | None:
    if a is None or b is None:
        return a or b
    fa, fb = Fraction(a[0]), Fraction(b[0])
    if fa == fb:
        return (a[0], a[1] or b[1])
    return a if (fa > fb) == lower else b


def _value_bounds(lower: _Bound | None, upper: _Bound | None):
    """Exact bounds for values that parse to exactly themselves (ints, short binary fractions):
    both jsonschema's comparison with the bound's float value and the written value hold."""
    low = high = None
    if lower is not None:
        low = (max(Fraction(lower[0]), _written(lower[0])), lower[1])
    if upper is not None:
        high = (min(Fraction(upper[0]), _written(upper[0])), upper[1])
    return low, high


def _grid_low(bound: tuple[Fraction, bool] | None, scale: int) -> int | None:
    if bound is None:
        return None
    v = bound[0] * scale
    return math.floor(v) + 1 if bound[1] else math.ceil(v)


def _grid_high(bound: tuple[Fraction, bool] | None, scale: int) -> int | None:
    if bound is None:
        return None
    v = bound[0] * scale
    return math.ceil(v) - 1 if bound[1] else math.floor(v)


def _double_at_least(x: Fraction, strict: bool) -> float:
    f = float(x)
    if Fraction(f) < x or (strict and Fraction(f) == x):
        f = math.nextafter(f, math.inf)
    return f


def _double_at_most(x: Fraction, strict: bool) -> float:
    f = float(x)
    if Fraction(f) > x or (strict and Fraction(f) == x):
        f = math.nextafter(f, -math.inf)
    return f


def _fraction_grid_low(bound: _Bound | None, scale: int, cap: int) -> int:
    """Smallest T (value * scale) such that every text of T/scale passes the lower bound
    under float parsing (`float(text) >= bound`) and as written."""
    if bound is None:
        return -cap
    value, strict = bound
    exact = Fraction(value)
    if exact > cap or exact < -cap:  # far outside the representable texts
        return cap + 1 if exact > 0 else -cap
    # float(text) >= d holds for every text >= repr(d) (rounding is monotonic).
    if isinstance(value, float):
        d = math.nextafter(value, math.inf) if strict else value
    else:
        d = _double_at_least(exact, strict)
    grid = math.ceil(Fraction(repr(d)) * scale)
    written = _grid_low((_written(value), strict), scale)
    return max(grid, written if written is not None else grid)


def _fraction_grid_high(bound: _Bound | None, scale: int, cap: int) -> int:
    if bound is None:
        return cap
    value, strict = bound
    exact = Fraction(value)
    if exact > cap or exact < -cap:
        return cap if exact > 0 else -cap - 1
    if isinstance(value, float):
        d = math.nextafter(value, -math.inf) if strict else value
    else:
        d = _double_at_most(exact, strict)
    grid = math.floor(Fraction(repr(d)) * scale)
    written = _grid_high((_written(value), strict), scale)
    return min(grid, written if written is not None else grid)


# --------------------------------------------------------------------------------------------
# multipleOf helpers
# --------------------------------------------------------------------------------------------


def _passes_multiple_of(instance: int | float, k: _Real) -> bool:
    """python-jsonschema's multipleOf check (jsonschema/_keywords.py), verbatim in effect."""
    if isinstance(k, float):
        quotient = instance / k
        try:
            return int(quotient) == quotient
        except OverflowError:
            return (Fraction(instance) / Fraction(k)).denominator == 1
    return not instance % k


def _float_step_is_safe(k: float) -> bool:
    """Every exact multiple t of k's written value that is itself an exact float passes
    jsonschema's `t / k` check: float(k) is within 2**-54 (relative) of the written value,
    so the correctly rounded quotient is the integer t / written(k)."""
    written = Fraction(repr(k))
    delta = (Fraction(k) - written) / written
    return abs(delta) / (1 + delta) < _MIDPOINT_EPS


def _integer_step(multiple_of: _Real | None) -> tuple[int, bool]:
    """(K, via_float): integers n pass multipleOf exactly when K divides n (for |n| <= 2**53
    when via_float, since jsonschema then divides floats)."""
    if multiple_of is None:
        return 1, False
    _check_real("multiple_of", multiple_of)
    if multiple_of <= 0:
        raise ValueError("multipleOf must be greater than 0")
    if isinstance(multiple_of, int):
        return multiple_of, False
    if isinstance(multiple_of, float):
        if multiple_of.is_integer():
            return int(multiple_of), True
        if not _float_step_is_safe(multiple_of):
            raise TooComplexError()
        return Fraction(repr(multiple_of)).numerator, True
    value = Fraction(multiple_of)
    return value.numerator, False


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def integer_regex(
    minimum: _Real | None = None,
    maximum: _Real | None = None,
    multiple_of: _Real | None = None,
) -> str:
    """Regex for exactly the decimal integers n with minimum <= n <= maximum (None: unbounded)
    and, when given, n a multiple of `multiple_of`.

    Bounds are inclusive; a fractional bound keeps the integers inside it (minimum 0.5 -> 1).
    `multiple_of` is normally a positive int. A float is checked the way python-jsonschema
    checks a float multipleOf (by float division), so it is honoured for |n| <= 2**53 only;
    a fractional float (0.5) keeps the integers that are multiples of it.
    `-0`, leading zeros and `+` are never accepted.

    Raises EmptyRangeError (a ValueError, "empty range") when no integer qualifies, and
    TooComplexError ("multipleOf too complex") when multiple_of has no compact exact regex
    over this range (large ranges of multiples of k where k does not divide a power of ten).
    """
    _check_real("minimum", minimum)
    _check_real("maximum", maximum)
    k, via_float = _integer_step(multiple_of)
    lo = None if minimum is None else math.ceil(Fraction(minimum))
    hi = None if maximum is None else math.floor(Fraction(maximum))
    if via_float:
        limit = _float_step_limit(multiple_of)  # type: ignore[arg-type]
        lo = -limit if lo is None else max(lo, -limit)
        hi = limit if hi is None else min(hi, limit)
    return _integer_regex(lo, hi, k)


def _float_step_limit(k: float) -> int:
    """Largest |n| up to which jsonschema's `n / k` check passes for every multiple n of k.

    Up to 2**53, float(n) is exact and the quotient rounds to the integer n / k. Beyond, the
    quotient is a large double, and every double >= 2**52 is an integer: that holds for all
    n when k < 2 or when k is a power of two (float(n) then stays a multiple of k), until the
    quotient overflows. Otherwise (k = 3.0) some multiples just above 2**53 fail.
    """
    if k < 2 or (k.is_integer() and int(k) & (int(k) - 1) == 0):
        top = Fraction(1.7e308) * min(Fraction(k), Fraction(1))
        return 10 ** (len(str(math.floor(top))) - 1) - 1  # all numbers of fewer digits
    return _FLOAT_EXACT_INT


@functools.lru_cache(maxsize=1024)
def _integer_regex(lo: int | None, hi: int | None, k: int) -> str:
    # Cached: a schema repeats its integer ranges (one `if/then/else` chain of a
    # configuration schema built 4,458 of them, 70% of its 3 s to the refusal).
    if lo is not None and hi is not None and lo > hi:
        raise EmptyRangeError()
    if k > 1:  # tighten to the first and last multiples
        lo = None if lo is None else -(-lo // k) * k
        hi = None if hi is None else hi // k * k
        if lo is not None and hi is not None and lo > hi:
            raise EmptyRangeError()
    if lo is None and hi is None and k == 1:
        return UNBOUNDED_INTEGER
    ast = _Ast()
    node = _signed(_Walk(ast, 0, k, bare=True, fractional=False), lo, hi)
    if node is None:
        raise EmptyRangeError()
    return ast.render(node)


def number_regex(
    minimum: _Real | None = None,
    maximum: _Real | None = None,
    exclusive_minimum: _Real | None = None,
    exclusive_maximum: _Real | None = None,
    multiple_of: _Real | None = None,
) -> str:
    """Regex for JSON numbers whose value satisfies the bounds (draft 6+ semantics: exclusive
    bounds are numbers; callers translate draft-4 booleans) and multipleOf.

    Every accepted text passes python-jsonschema (ints compared exactly, fractions parsed as
    floats) and also the bounds as written. Integers are accepted whole; numbers with a
    fraction are limited to FRACTION_DIGITS fraction digits and FRACTION_INT_DIGITS integer
    digits; exponents only without any bound or multipleOf. See the module docstring for the
    multipleOf subset. Raises EmptyRangeError / TooComplexError like `integer_regex`.
    """
    for name, value in (
        ("minimum", minimum),
        ("maximum", maximum),
        ("exclusive_minimum", exclusive_minimum),
        ("exclusive_maximum", exclusive_maximum),
    ):
        _check_real(name, value)
    lower = _tighter(
        None if minimum is None else (minimum, False),
        None if exclusive_minimum is None else (exclusive_minimum, True),
        lower=True,
    )
    upper = _tighter(
        None if maximum is None else (maximum, False),
        None if exclusive_maximum is None else (exclusive_maximum, True),
        lower=False,
    )
    if lower is not None and upper is not None:
        lv, hv = Fraction(lower[0]), Fraction(upper[0])
        if lv > hv or (lv == hv and (lower[1] or upper[1])):
            raise EmptyRangeError()
    if multiple_of is not None:
        _check_real("multiple_of", multiple_of)
        if multiple_of <= 0:
            raise ValueError("multipleOf must be greater than 0")
        return _number_multiple_regex(lower, upper, multiple_of)
    if lower is None and upper is None:
        return UNBOUNDED_NUMBER

    int_low, int_high = _value_bounds(lower, upper)
    lo_i, hi_i = _grid_low(int_low, 1), _grid_high(int_high, 1)
    scale = 10**FRACTION_DIGITS
    cap = 10**FRACTION_INT_DIGITS * scale - 1
    lo_t = _fraction_grid_low(lower, scale, cap)
    hi_t = _fraction_grid_high(upper, scale, cap)

    ast = _Ast()
    parts: list[_Node | None] = []
    int_cap = 10**FRACTION_INT_DIGITS - 1
    clip_lo = -int_cap if lo_i is None else max(lo_i, -int_cap)
    clip_hi = int_cap if hi_i is None else min(hi_i, int_cap)
    both = _Walk(ast, FRACTION_DIGITS, 1, bare=True, fractional=True)
    if lo_t <= hi_t and (clip_lo, clip_hi) == (-(-lo_t // scale), hi_t // scale):
        # One walk writes `I` and `I.f` together; integers past the fraction cap come extra.
        parts.append(_signed(both, lo_t, hi_t))
        ints = _Walk(ast, 0, 1, bare=True, fractional=False)
        if hi_i is None or hi_i > int_cap:
            parts.append(_signed(ints, max(int_cap + 1, clip_lo), hi_i))
        if lo_i is None or lo_i < -int_cap:
            parts.append(_signed(ints, lo_i, min(-int_cap - 1, clip_hi)))
    else:
        if lo_i is None or hi_i is None or lo_i <= hi_i:
            parts.append(_signed(_Walk(ast, 0, 1, bare=True, fractional=False), lo_i, hi_i))
        if lo_t <= hi_t:
            frac_walk = _Walk(ast, FRACTION_DIGITS, 1, bare=False, fractional=True)
            parts.append(_signed(frac_walk, lo_t, hi_t))
    node = ast.alt(parts)
    if node is None:
        raise EmptyRangeError()
    return ast.render(node)


def _number_multiple_regex(lower: _Bound | None, upper: _Bound | None, k: _Real) -> str:
    int_low, int_high = _value_bounds(lower, upper)
    lo_i, hi_i = _grid_low(int_low, 1), _grid_high(int_high, 1)
    if isinstance(k, int) or (isinstance(k, float) and k.is_integer()):
        # Integer steps: integers only (a sound subset; `5.0` would pass too).
        return integer_regex(lo_i, hi_i, k)
    if not isinstance(k, float):
        raise TooComplexError()
    written = Fraction(repr(k))
    exact_step = Fraction(k) == written  # 0.5, 0.25: every multiple is an exact float

    if not exact_step and int_low is not None and int_high is not None:
        first = math.ceil(int_low[0] / written)
        last = math.floor(int_high[0] / written)
        if last - first + 1 <= ENUMERATION_LIMIT:
            return _enumerated_multiples(lower, upper, k, first, last)
    if not _float_step_is_safe(k):
        raise TooComplexError()
    # Multiples t of the written step that are exact binary fractions: t = m * p / 2**x.
    # Scaled by 10**f they are the integers divisible by p * 5**x * 10**(f - x); f is the
    # step's own number of decimals (at least one), so that `6.00` (step 0.02) and `3.0`
    # (step 0.2) are written too.
    p, q = written.numerator, written.denominator
    x = 0
    while q % 2 == 0:
        q //= 2
        x += 1
    frac = max(_decimal_places(written), 1)
    modulus = p * 5**x * 10 ** (frac - x)
    # Keep |t| * 2**x below 2**53 so that t parses to exactly itself.
    digits = len(str(2 ** (53 - x))) - 1
    scale = 10**frac
    cap = 10**digits * scale - 1
    lo_t = _grid_low(int_low, scale)
    hi_t = _grid_high(int_high, scale)
    lo_t = -cap if lo_t is None else max(lo_t, -cap)
    hi_t = cap if hi_t is None else min(hi_t, cap)
    if lo_t > hi_t:
        raise EmptyRangeError()
    ast = _Ast()
    walk = _Walk(ast, frac, modulus, bare=True, fractional=True)
    node = _signed(walk, lo_t, hi_t)
    if node is None:
        raise EmptyRangeError()
    return ast.render(node)


def _decimal_places(value: Fraction) -> int:
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    return places


def _enumerated_multiples(
    lower: _Bound | None, upper: _Bound | None, k: float, first: int, last: int
) -> str:
    """Every written form of every multiple in range that jsonschema accepts, as a trie."""
    written = Fraction(repr(k))
    places = _decimal_places(written)
    texts: list[str] = []
    for n in range(first, last + 1):
        for text in _decimal_texts(n * written, places):
            if _valid_number_text(text, lower, upper, k):
                texts.append(text)
    if not texts:
        raise EmptyRangeError()
    ast = _Ast()
    return ast.render(_trie(ast, sorted(set(texts))))


def _decimal_texts(value: Fraction, places: int) -> list[str]:
    """JSON spellings of a decimal with at most `places` fraction digits (no `-0`)."""
    sign = "-" if value < 0 else ""
    scaled = abs(value) * 10**places
    whole, frac = divmod(int(scaled), 10**places)
    digits = str(frac).zfill(places) if places else ""
    texts = []
    if frac == 0:
        if whole == 0:
            sign = ""
        texts.append(f"{sign}{whole}")
    shortest = max(len(digits.rstrip("0")), 1)
    for n in range(shortest, places + 1):
        texts.append(f"{sign}{whole}.{digits[:n]}")
    return texts


def _valid_number_text(
    text: str, lower: _Bound | None, upper: _Bound | None, k: float | None
) -> bool:
    """python-jsonschema's verdict on the parsed text, plus the bounds as written."""
    instance = json.loads(text)
    exact = Fraction(text)
    if lower is not None:
        value, strict = lower
        if (instance <= value) if strict else (instance < value):
            return False
        w = _written(value)
        if (exact <= w) if strict else (exact < w):
            return False
    if upper is not None:
        value, strict = upper
        if (instance >= value) if strict else (instance > value):
            return False
        w = _written(value)
        if (exact >= w) if strict else (exact > w):
            return False
    return k is None or _passes_multiple_of(instance, k)


def _trie(ast: _Ast, texts: list[str]) -> _Node:
    def build(group: list[str], pos: int) -> _Node:
        options: list[_Node | None] = []
        by_char: dict[str, list[str]] = {}
        for t in group:
            if len(t) == pos:
                options.append(ast.eps)
            else:
                by_char.setdefault(t[pos], []).append(t)
        children: dict[int, tuple[_Node, list[str]]] = {}
        for ch, sub in by_char.items():
            child = build(sub, pos + 1)
            children.setdefault(id(child), (child, []))[1].append(ch)
        options.extend(ast.seq(ast.cls(chars), child) for child, chars in children.values())
        node = ast.alt(options)
        assert node is not None
        return node

    return build(texts, 0)
