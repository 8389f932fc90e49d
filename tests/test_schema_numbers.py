"""Numeric schema keywords as regexes (schemas.numbers), checked against the grammar engine.

Three kinds of evidence, because each misses bugs the others catch:
* value-driven properties (random bounds, random values near and far from them) compare the
  engine's verdict with exact arithmetic and with python-jsonschema;
* random walks through the engine's own automaton sample strings the regex allows, which
  finds accepted strings no value generator thought of;
* size and compile-time records for the ranges schemas use most, plus coverage of the
  numeric keywords found in JSONSchemaBench.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from outlines_core import Index, Vocabulary
from shared_data import JSONSCHEMABENCH, NO_JSONSCHEMABENCH

from schemas.numbers import (
    ENUMERATION_LIMIT,
    UNBOUNDED_NUMBER,
    EmptyRangeError,
    TooComplexError,
    integer_regex,
    number_regex,
)
from schemas.regex_check import accepts, byte_index

BENCH, NO_BENCH = JSONSCHEMABENCH, NO_JSONSCHEMABENCH
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def quoted(regex: str) -> str:
    """`"R"`: the regex as it appears inside a JSON document.

    outlines-core builds its DFA with an unanchored start state too, so compiling a bare R
    costs as much as `.*R`: a range like [10**20, inf) that matches nothing before its 21st
    digit then needs ~2**20 states. In a schema the number follows a literal (`"age":`),
    which stops those restarts; the tests compile R the same way (between quotes).
    """
    return f'"(?:{regex})"'


def matches(regex: str, text: str) -> bool:
    """regex_check.accepts for a number regex, compiled as it is used inside a document."""
    return accepts(quoted(regex), f'"{text}"')


def sample_texts(regex: str, rng: random.Random, count: int) -> list[str]:
    """Random accepted strings, drawn by walking the engine's automaton byte by byte.

    The regex is wrapped as `(?:"R")\x00` (as the decoder does with its end marker), so
    that byte 0 marks "R has matched here" and the engine's late-match quirk cannot cut
    walks short.
    """
    index = byte_index(f"(?:{quoted(regex)})\\x00")
    texts: list[str] = []
    while len(texts) < count:
        state = index.get_initial_state()
        out = bytearray()
        while len(out) < 200:
            allowed = set(index.get_allowed_tokens(state))
            assert allowed, f"dead state after {out!r}"
            assert 256 not in allowed, "EOS allowed before the end marker"
            choices = sorted(allowed - {0})
            if 0 in allowed and (not choices or rng.random() < 0.4):
                break
            byte = rng.choice(choices)
            out.append(byte)
            state = index.get_next_state(state, byte)
        else:
            continue  # an unbounded regex can walk on for long: draw again
        text = out.decode()
        assert text[0] == text[-1] == '"', text
        texts.append(text[1:-1])
    return texts


def schema_of(kind: str, **bounds: object) -> dict:
    names = {
        "minimum": "minimum",
        "maximum": "maximum",
        "exclusive_minimum": "exclusiveMinimum",
        "exclusive_maximum": "exclusiveMaximum",
        "multiple_of": "multipleOf",
    }
    schema: dict = {"type": kind}
    schema.update({names[k]: v for k, v in bounds.items() if v is not None})
    return schema


def written_ok(text: str, **bounds: object) -> bool:
    """The exact decimal value of `text` against the bounds as written (shortest repr)."""

    def w(v: object) -> Fraction:
        return Fraction(repr(v)) if isinstance(v, float) else Fraction(v)  # type: ignore[arg-type]

    value = Fraction(text)
    checks = {
        "minimum": lambda b: value >= w(b),
        "maximum": lambda b: value <= w(b),
        "exclusive_minimum": lambda b: value > w(b),
        "exclusive_maximum": lambda b: value < w(b),
    }
    return all(checks[k](b) for k, b in bounds.items() if b is not None and k in checks)


def decimal_text(value: Fraction) -> str:
    """The shortest exact decimal spelling of a terminating fraction."""
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    sign = "-" if value < 0 else ""
    whole, frac = divmod(int(abs(value) * 10**places), 10**places)
    return f"{sign}{whole}" + (f".{str(frac).zfill(places)}".rstrip("0") if frac else "")


# ------------------------------------------------------------------------------------------
# integers
# ------------------------------------------------------------------------------------------

SUFFIX_STEPS = [1, 2, 4, 5, 8, 10, 16, 20, 25, 50, 100, 125, 1000]
OTHER_STEPS = [3, 6, 7, 9, 11, 12, 15]
int_bound = st.one_of(
    st.none(),
    st.integers(-200, 200),
    st.integers(-(10**6), 10**6),
    st.integers(-(2**70), 2**70),
)


def integer_candidates(lo: int | None, hi: int | None, k: int, rng: random.Random) -> set[int]:
    values = {0, 1, -1, k, -k, 10**20, -(10**20), 7 * k, -7 * k}
    for b in (lo, hi):
        if b is not None:
            values.update(b + d for d in range(-2 * k - 1, 2 * k + 2))
    a = lo if lo is not None else (hi if hi is not None else 0) - 10**9
    z = hi if hi is not None else a + 10**9
    for _ in range(150):
        values.add(rng.randint(min(a, z) - 50, max(a, z) + 50))
        values.add(rng.randint(min(a, z), max(a, z)) // k * k)
        values.add(rng.randint(-(10**25), 10**25))
    return values


@FAST
@given(lo=int_bound, hi=int_bound, k=st.sampled_from([None, *SUFFIX_STEPS, *OTHER_STEPS]))
def test_integer_regex_is_exact(lo: int | None, hi: int | None, k: int | None) -> None:
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    step = k or 1
    try:
        regex = integer_regex(lo, hi, k)
    except EmptyRangeError:
        assert lo is not None and hi is not None
        assert -(-lo // step) * step > hi
        return
    except TooComplexError:
        # Only steps with a factor coprime to 10 over ranges too big to list run out.
        assert step in OTHER_STEPS
        return
    rng = random.Random(f"{lo},{hi},{k}")
    for n in integer_candidates(lo, hi, step, rng):
        expected = (lo is None or n >= lo) and (hi is None or n <= hi) and n % step == 0
        assert matches(regex, str(n)) == expected, (regex, n)
    for bad in ("-0", "+1", "01", "00", "1.0", "", "-", "1e3", " 1"):
        assert not matches(regex, bad), (regex, bad)


@pytest.mark.parametrize(
    ("lo", "hi", "k"),
    [
        (-2032, 2031, 16),
        (0, 4096, 16),
        (16, 100, 4),
        (None, None, 3),
        (0, None, 12),
        (None, None, 2),
        (5, None, 3),
        (0, None, 375),
        (-(2**31), 2**31 - 1, 1),
        (0, 2**63 - 1, 1000),
        (-50, 50, 7),
        (10**18, 10**18 + 3000, 13),
    ],
)
def test_integer_regex_walks_stay_valid(lo: int | None, hi: int | None, k: int) -> None:
    regex = integer_regex(lo, hi, k)
    rng = random.Random(1)
    for text in sample_texts(regex, rng, 300):
        n = int(text)
        assert text == str(n) and text != "-0", text
        assert (lo is None or n >= lo) and (hi is None or n <= hi) and n % k == 0, text


def test_integer_regex_shapes_and_errors() -> None:
    assert integer_regex() == r"(?:0|-?[1-9][0-9]*)"
    assert integer_regex(0, 100) == r"(?:0|[1-9][0-9]?|100)"
    assert integer_regex(0) == r"(?:0|[1-9][0-9]*)"
    assert integer_regex(0.5, 3.7) == "[1-3]"  # fractional bounds keep the integers inside
    assert integer_regex(7, 7) == "7"
    assert integer_regex(None, None, 10) == r"(?:0|-?[1-9][0-9]*0)"
    with pytest.raises(EmptyRangeError, match=r"^empty range$"):
        integer_regex(5, 4)
    with pytest.raises(EmptyRangeError):
        integer_regex(1, 9, 10)
    with pytest.raises(TooComplexError, match=r"^multipleOf too complex$"):
        integer_regex(0, 10**12, 7)
    with pytest.raises(TooComplexError):
        integer_regex(1024, None, 256)  # the last 8 digits would have to be listed
    with pytest.raises(ValueError):
        integer_regex(0, 10, 0)
    with pytest.raises(TypeError):
        integer_regex(True, 10)


def test_integer_regex_float_steps_follow_jsonschema() -> None:
    """A float multipleOf is checked by float division; the regex stays inside what passes."""
    for k, lo, hi in [(1.0, 0, None), (16.0, None, None), (3.0, -100, 100), (0.5, -10, 10)]:
        regex = integer_regex(lo, hi, k)
        validator = Draft202012Validator(schema_of("integer", multiple_of=k))
        for text in sample_texts(regex, random.Random(2), 200):
            assert validator.is_valid(json.loads(text)), (k, text)
    big = integer_regex(0, None, 10.0)  # 3.0 the same, but with a hole past 2**53
    assert matches(big, str(10**15)) and not matches(big, str(10**16))
    with pytest.raises(TooComplexError):
        integer_regex(None, 100, 3.0)  # multiples of 3 down to -2**53: too many digits
    assert matches(integer_regex(0, None, 1.0), "9" * 300)
    assert not matches(integer_regex(0, None, 1.0), "9" * 309)  # would overflow the division


# ------------------------------------------------------------------------------------------
# numbers
# ------------------------------------------------------------------------------------------


def decimal_bound() -> st.SearchStrategy:
    short = st.builds(
        lambda n, places: float(Fraction(n, 10**places)),
        st.integers(-100_000, 100_000),
        st.integers(0, 4),
    )
    return st.one_of(
        st.none(),
        st.integers(-1000, 1000),
        short,
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([0, 0.0, 1, 100, 0.1, 0.5, 99.99, 1e-7, 2**53 + 1, 1e20, -1e20]),
    )


def number_texts(rng: random.Random, anchors: list[float]) -> set[str]:
    texts = {"0", "-0", "0.0", "-0.0", "1", "-1", "0.5", "100", "100.0", "99.99"}
    for a in anchors:
        f = Fraction(a)
        texts.update({str(math.floor(f)), str(math.ceil(f)), repr(float(a))})
        for places in (1, 2, 3, 16, 17, 20):
            for d in (-2, -1, 0, 1, 2):
                v = (f * 10**places).__floor__() + d
                sign = "-" if v < 0 else ""
                whole, frac = divmod(abs(v), 10**places)
                texts.add(f"{sign}{whole}.{str(frac).zfill(places)}")
    for _ in range(250):
        scale = rng.choice([1, 10, 1000, 10**6, 10**15])
        whole = rng.randint(-scale, scale)
        texts.add(str(whole))
        digits = rng.randint(1, 4)
        texts.add(f"{whole}.{rng.randint(0, 10**digits - 1):0{digits}d}")
    return {t for t in texts if "e" not in t and not t.endswith(".")}


@FAST
@given(
    bounds=st.fixed_dictionaries(
        {},
        optional={
            "minimum": decimal_bound(),
            "maximum": decimal_bound(),
            "exclusive_minimum": decimal_bound(),
            "exclusive_maximum": decimal_bound(),
        },
    )
)
def test_number_regex_sound_and_complete(bounds: dict) -> None:
    try:
        regex = number_regex(**bounds)
    except EmptyRangeError:
        regex = None
    validator = Draft202012Validator(schema_of("number", **bounds))
    anchors = [b for b in bounds.values() if b is not None]
    rng = random.Random(repr(bounds))
    for text in number_texts(rng, anchors):
        ok = validator.is_valid(json.loads(text)) and written_ok(text, **bounds)
        got = regex is not None and matches(regex, text)
        if got:
            assert ok, (regex, bounds, text)
        short = "." not in text or len(text.split(".")[1]) <= 3
        if ok and short and len(text.split(".")[0].lstrip("-")) <= 15 and text != "-0":
            if text.startswith("-0") and Fraction(text) == 0:
                continue  # negative zero: allowed only alongside negative numbers
            assert got, (regex, bounds, text)
    if regex is not None:
        for text in sample_texts(regex, rng, 60):
            assert validator.is_valid(json.loads(text)), (regex, bounds, text)
            assert written_ok(text, **bounds), (regex, bounds, text)


@pytest.mark.parametrize(
    ("bounds", "yes", "no"),
    [
        (
            {"minimum": 0, "maximum": 100},
            ["0", "99.5", "100", "100.0", "0.0001", "7"],
            ["100.5", "-1", "100.0000000000000001", "1e2", "007", "+5"],
        ),
        ({"exclusive_minimum": 0}, ["0.001", "5", "0.0000000000000001"], ["0", "0.0", "-0.5"]),
        ({"exclusive_maximum": 100, "minimum": 0}, ["99.99999", "0"], ["100", "100.0"]),
        ({"minimum": 0.5, "maximum": 99.99}, ["0.5", "99.99", "99.990"], ["0.49", "99.991"]),
        ({"minimum": -90, "maximum": 90}, ["-90", "-89.5", "90.0", "0"], ["-90.01", "90.5"]),
        ({"minimum": 0.1}, ["0.1", "0.10", "12345"], ["0.09999", "0"]),
    ],
)
def test_number_regex_examples(bounds: dict, yes: list[str], no: list[str]) -> None:
    regex = number_regex(**bounds)
    for text in yes:
        assert matches(regex, text), (regex, text)
    for text in no:
        assert not matches(regex, text), (regex, text)


def test_number_regex_unbounded_and_empty() -> None:
    assert number_regex() == UNBOUNDED_NUMBER
    assert matches(number_regex(), "-1.5e10")
    assert not matches(number_regex(minimum=0), "1e3")  # exponents only when unbounded
    with pytest.raises(EmptyRangeError):
        number_regex(minimum=1, maximum=0)
    with pytest.raises(EmptyRangeError):
        number_regex(exclusive_minimum=1, maximum=1)
    with pytest.raises(ValueError):
        number_regex(multiple_of=0)
    with pytest.raises(ValueError):
        number_regex(minimum=float("nan"))


STEPS = [0.01, 0.1, 0.25, 0.5, 0.05, 0.001, 0.2, 0.3, 0.02, 1.5, 2.5, 1, 1.0, 10, 16.0]


@FAST
@given(
    k=st.sampled_from(STEPS),
    lo=st.one_of(st.none(), st.integers(-3000, 3000), st.sampled_from([0.5, 0.01, -7.25])),
    width=st.one_of(st.none(), st.integers(0, 40), st.integers(0, 5000)),
)
def test_number_multiple_of_passes_jsonschema(k: float, lo: float | None, width) -> None:
    hi = None if width is None else (lo if lo is not None else 0) + width
    bounds = {"minimum": lo, "maximum": hi, "multiple_of": k}
    try:
        regex = number_regex(**bounds)
    except EmptyRangeError:
        return
    except TooComplexError:
        assert k == 0.3 or k == 1.5  # a step of 3/10 or 3/2 needs remainders modulo 3
        return
    validator = Draft202012Validator(schema_of("number", **bounds))
    rng = random.Random(repr(bounds))
    texts = number_texts(rng, [b for b in (lo, hi, k) if b is not None])
    written = Fraction(repr(k)) if isinstance(k, float) else Fraction(k)
    # Multiples near the bounds and zero, in their shortest spellings.
    for center in (lo or 0, hi or 0, 0):
        base = math.floor(Fraction(center) / written)
        texts.update(decimal_text(n * written) for n in range(base - 30, base + 30))
    for text in texts:
        ok = validator.is_valid(json.loads(text)) and written_ok(text, minimum=lo, maximum=hi)
        if matches(regex, text):
            assert ok, (regex, bounds, text)
        value = Fraction(text)
        # Multiples that are exact binary fractions are always kept (the documented subset);
        # integer steps keep the integers only.
        exact = Fraction(float(value)) == value and abs(value) < 10**15
        integral_step = float(k).is_integer()
        places = len(repr(float(k)).split(".")[1]) if not integral_step else 0
        short = "." not in text or len(text.split(".")[1]) <= places
        multiple = (value / written).denominator == 1
        negative_zero = text.startswith("-") and value == 0
        if ok and exact and short and multiple and text != "-0" and not negative_zero:
            assert matches(regex, text), (regex, bounds, text)
    for text in sample_texts(regex, rng, 80):
        assert validator.is_valid(json.loads(text)), (regex, bounds, text)


def test_small_ranges_list_every_multiple_jsonschema_accepts() -> None:
    bounds = {"minimum": 0, "maximum": 10, "multiple_of": 0.01}
    regex = number_regex(**bounds)
    validator = Draft202012Validator(schema_of("number", **bounds))
    for n in range(0, 1001):
        text = f"{n // 100}.{n % 100:02d}"
        assert matches(regex, text) == validator.is_valid(json.loads(text)), text
    assert not matches(regex, "0.07")  # 0.07 / 0.01 == 7.000000000000001
    assert matches(regex, "0.25") and matches(regex, "10") and matches(regex, "2.5")
    assert ENUMERATION_LIMIT >= 1000


def test_large_ranges_keep_binary_fraction_multiples() -> None:
    regex = number_regex(minimum=0, multiple_of=0.01)
    for text in ("0", "12.25", "12.5", "12.50", "99999.75", "3"):
        assert matches(regex, text), text
    for text in ("0.07", "12.3", "1.001", "-1"):
        assert not matches(regex, text), text
    assert matches(number_regex(multiple_of=0.1), "-2.5")
    with pytest.raises(TooComplexError):
        number_regex(multiple_of=1e-5)  # float(1e-05) is too far from 1/100000


# ------------------------------------------------------------------------------------------
# sizes and compile times
# ------------------------------------------------------------------------------------------

TYPICAL = {
    "integer 0..100": (integer_regex, {"minimum": 0, "maximum": 100}, 30),
    "integer 1..65535": (integer_regex, {"minimum": 1, "maximum": 65535}, 120),
    "integer int32": (integer_regex, {"minimum": -(2**31), "maximum": 2**31 - 1}, 250),
    "integer 0..2**63-1": (integer_regex, {"minimum": 0, "maximum": 2**63 - 1}, 400),
    "integer >= 0, multipleOf 12": (integer_regex, {"minimum": 0, "multiple_of": 12}, 1000),
    "number 0..100": (number_regex, {"minimum": 0, "maximum": 100}, 100),
    "number -180..180": (number_regex, {"minimum": -180, "maximum": 180}, 150),
    "number > 0": (number_regex, {"exclusive_minimum": 0}, 500),
    "number 0..1e11 step 0.01": (
        number_regex,
        {"minimum": 0, "maximum": 99999999999.99, "multiple_of": 0.01},
        150,
    ),
    "number 0..10 step 0.01": (
        number_regex,
        {"minimum": 0, "maximum": 10, "multiple_of": 0.01},
        2000,
    ),
}


@pytest.mark.parametrize("name", list(TYPICAL))
def test_typical_regexes_are_small_and_compile_to_small_automata(name: str) -> None:
    """Size, not time (timings are for benchmarks): a short regex and an automaton of a
    few hundred states at most, which compiles in milliseconds on any machine."""
    build, kwargs, max_len = TYPICAL[name]
    regex = build(**kwargs)
    byte_vocab = Vocabulary(256, {bytes([b]): [b] for b in range(256)})
    states = len(Index(regex, byte_vocab).get_transitions())
    assert len(regex) <= max_len
    assert states <= 200, states


# ------------------------------------------------------------------------------------------
# JSONSchemaBench coverage
# ------------------------------------------------------------------------------------------

NUMERIC_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def numeric_subschemas(node: object):
    """Integer/number subschemas with a bound or multipleOf, anywhere in a schema."""
    if isinstance(node, dict):
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        keys = [k for k in NUMERIC_KEYS if k in node and not isinstance(node[k], (dict, list))]
        kind = "integer" if "integer" in types else "number" if "number" in types else None
        if keys and kind:
            yield kind, {k: node[k] for k in keys}
        for value in node.values():
            yield from numeric_subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from numeric_subschemas(value)


def regex_for(kind: str, keywords: dict) -> str:
    """What a schema compiler would call, draft-4 boolean exclusive bounds included."""
    lo, hi = keywords.get("minimum"), keywords.get("maximum")
    xlo, xhi = keywords.get("exclusiveMinimum"), keywords.get("exclusiveMaximum")
    if isinstance(xlo, bool):
        lo, xlo = (None, lo) if xlo else (lo, None)
    if isinstance(xhi, bool):
        hi, xhi = (None, hi) if xhi else (hi, None)
    k = keywords.get("multipleOf")
    if kind == "integer":
        lows = [math.ceil(Fraction(lo))] if lo is not None else []
        lows += [math.floor(Fraction(xlo)) + 1] if xlo is not None else []
        highs = [math.floor(Fraction(hi))] if hi is not None else []
        highs += [math.ceil(Fraction(xhi)) - 1] if xhi is not None else []
        return integer_regex(max(lows, default=None), min(highs, default=None), k)
    return number_regex(lo, hi, xlo, xhi, k)


def benchmark_coverage() -> tuple[Counter, Counter]:
    combos: Counter = Counter()
    failures: Counter = Counter()
    cache: dict[str, str | None] = {}
    for path in sorted(BENCH.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            for kind, keywords in numeric_subschemas(json.loads(line)["schema"]):
                combo = (kind, *sorted(f"{k}:{type(v).__name__}" for k, v in keywords.items()))
                combos[combo] += 1
                key = json.dumps([kind, keywords], sort_keys=True)
                if key not in cache:
                    try:
                        regex_for(kind, keywords)
                        cache[key] = None
                    except ValueError as err:
                        cache[key] = f"{type(err).__name__}: {keywords}"
                if cache[key]:
                    failures[cache[key]] += 1
    return combos, failures


@pytest.mark.skipif(
    not BENCH.is_dir(),
    reason=NO_BENCH,
)
def test_benchmark_numeric_keywords_are_covered() -> None:
    combos, failures = benchmark_coverage()
    total = sum(combos.values())
    handled = total - sum(failures.values())
    print(f"\n{handled}/{total} numeric subschemas handled; failures: {dict(failures)}")
    for combo, count in combos.most_common():
        print(f"{count:6d} {' '.join(combo)}")
    assert total > 4000
    assert handled / total > 0.995
