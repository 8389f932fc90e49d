"""JSON Schema `pattern` translation (schemas.patterns), checked with the grammar engine.

Soundness is the contract: every string content the fragment accepts must decode to a value
that the pattern matches under `re.search` (python-jsonschema's semantics). Random walks
through the engine's own automaton produce the accepted strings; hand-written cases pin the
anchoring policy, the ECMA/Python differences and the JSON escaping; the JSONSchemaBench
run measures how many real-world patterns translate and compile.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
import unicodedata
import warnings
from collections import Counter, deque
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import JSONSCHEMABENCH, NO_JSONSCHEMABENCH

from schemas.patterns import REPEAT_CAP, UnsupportedPattern, pattern_to_regex
from schemas.regex_check import accepts, byte_index

BENCH, NO_BENCH = JSONSCHEMABENCH, NO_JSONSCHEMABENCH
EOS, END = 256, 0


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def quoted(fragment: str) -> str:
    return f'"{fragment}"'


def content_accepts(fragment: str, content: str) -> bool:
    """Does the fragment accept this *encoded* string content (what sits between quotes)?"""
    return accepts(quoted(fragment), f'"{content}"')


def value_accepts(pattern: str, value: str) -> bool:
    """Does the translation of `pattern` accept `value`, written as compact JSON?"""
    return accepts(quoted(pattern_to_regex(pattern)), json.dumps(value, ensure_ascii=False))


def _shortest_finish(index, state: int) -> bytes:
    seen = {state}
    queue = deque([(state, b"")])
    while queue:
        current, path = queue.popleft()
        allowed = index.get_allowed_tokens(current)
        if END in allowed:
            return path
        for byte in sorted(set(allowed) - {EOS}):
            nxt = index.get_next_state(current, byte)
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, path + bytes([byte])))
    raise AssertionError("no way to finish")


def sample_contents(
    fragment: str, rng: random.Random, count: int, max_steps: int = 80
) -> list[str]:
    """Random accepted string contents, by walking the engine's byte automaton of `"R"\\x00`.

    Byte 0 marks the end of the value (the engine drops transitions out of fully matched
    states, see schemas.regex_check); after `max_steps` the walk takes a shortest
    completion, so every walk ends.
    """
    index = byte_index(quoted(fragment) + "\\x00")
    texts = []
    for _ in range(count):
        state = index.get_initial_state()
        out = bytearray()
        while True:
            allowed = set(index.get_allowed_tokens(state))
            assert allowed, f"dead state after {out!r}"
            assert EOS not in allowed, "EOS allowed before the end marker"
            choices = sorted(allowed - {END})
            if END in allowed and (not choices or rng.random() < 0.15):
                break
            if len(out) >= max_steps:
                out += _shortest_finish(index, state)
                break
            byte = rng.choice(choices)
            out.append(byte)
            state = index.get_next_state(state, byte)
        text = out.decode("utf-8")
        assert text.startswith('"') and text.endswith('"'), text
        texts.append(text[1:-1])
    return texts


# ECMA (Annex B) reads `-` next to a class escape as a literal; Python refuses the range.
PYTHON_EQUIVALENT = {r"^[\d-z]+$": r"^[\d\-z]+$"}


def python_pattern(pattern: str) -> str:
    """The same pattern in Python syntax (ECMA named groups are `(?P<name>` there)."""
    pattern = PYTHON_EQUIVALENT.get(pattern, pattern)
    return re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)


@cache
def category_class(category: str) -> str:
    """`[...]` of the code points whose general category starts with `category`."""
    members = (
        chr(cp)
        for cp in range(sys.maxunicode + 1)
        if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)).startswith(category)
    )
    return "[" + "".join(re.escape(ch) for ch in members) + "]"


def python_search(pattern: str):
    """`search` of the pattern in Python's `re`.

    `re` has no `\\p{..}`; those become explicit classes from `unicodedata`, the tables the
    translation uses (a newer Unicode may have moved a letter, e.g. U+0295 from Ll to Lo).
    """
    python = re.sub(r"\\p\{(\w+)\}", lambda m: category_class(m[1]), python_pattern(pattern))
    return re.compile(python).search


def regex_outline(fragment: str) -> tuple[set[str], str]:
    """The escape letters a regex uses, and its text with escapes and classes blanked out."""
    letters: set[str] = set()
    out: list[str] = []
    i, depth = 0, 0
    while i < len(fragment):
        ch = fragment[i]
        if ch == "\\":
            nxt = fragment[i + 1]
            letters.add(nxt)
            i += 2
            if nxt in "xpP" and fragment[i : i + 1] == "{":
                i = fragment.index("}", i) + 1
            if depth == 0:
                out.append("E")
            continue
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
            if depth == 0:
                out.append("C")
        elif depth == 0:
            out.append(ch)
        i += 1
    return letters, "".join(out)


def assert_conventions(fragment: str) -> None:
    """No anchors, lookaround, lazy quantifiers or Unicode-aware shorthand classes."""
    letters, outline = regex_outline(fragment)
    assert not letters & set("dwsDWSbBAzZ"), letters
    for bad in ("^", "$", "(?=", "(?!", "(?<", "*?", "+?", "??", "}?"):
        assert bad not in outline, (bad, outline)


# ------------------------------------------------------------------------------------------
# realistic patterns: (pattern, values that must be accepted, values that must be refused)
# ------------------------------------------------------------------------------------------

REALISTIC: list[tuple[str, list[str], list[str]]] = [
    (r"^[a-z0-9-]+$", ["my-slug-1"], ["My-Slug", "", "a b"]),
    (r"^\d{4}-\d{2}$", ["2024-05"], ["2024-5", "２０２４-05"]),
    (r"^https?://", ["https://example.com/x", "http://a"], ["ftp://x", " https://x"]),
    (r"^[A-Z]{2,3}$", ["US", "DEU"], ["U", "USAX", "us"]),
    (r"^\+?[0-9 ()-]{7,20}$", ["+1 (555) 123-4567", "5551234"], ["555-12", "+1 555 CALL"]),
    (r"[0-9a-fA-F]+", ["deadBEEF", "0"], ["xyz", ""]),
    (r"^(\([0-9]{3}\))?[0-9]{3}-[0-9]{4}$", ["(555)123-4567", "123-4567"], ["(555) 123-4567"]),
    (
        r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$",
        ["1.2.3", "v10.0.1"],
        ["01.2.3", "1.2", "1.2.3-beta"],
    ),
    (r"^[^@]+@[^@]+$", ["john@example.com", "ü@ß"], ["john", "a@b@c"]),
    (r".*", ["", "anything at all", "tab\there"], ["line\nbreak"]),
    (r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$", ["a.b+c@example.co"], ["a@b.c"]),
    (r"^\S+$", ["no-spaces", "ünïcödé"], ["has space", "", "tab\there"]),
    (r"^#[0-9a-fA-F]{6}$", ["#ff00AA"], ["ff00aa", "#ff00a"]),
    (r"^[A-Za-z_][A-Za-z0-9_]*$", ["_private", "camelCase1"], ["1abc", "a-b"]),
    (r"\.json$", ["data/file.json", ".json"], ["file.json5", "file.JSON"]),
    (r"^(?:[01]\d|2[0-3]):[0-5]\d$", ["09:30", "23:59"], ["24:00", "9:30"]),
    (r"^\d+(\.\d+)?$", ["3", "3.14"], ["3.", ".5", "-1"]),
    (r"^-?\d+$", ["-12", "0"], ["+1", "1.0"]),
    (r"^[a-z]+(-[a-z]+)*$", ["kebab-case-name"], ["-lead", "trail-", "double--dash"]),
    (r"^(GET|POST|PUT|DELETE)$", ["GET", "DELETE"], ["get", "PATCH"]),
    (r"^arn:aws:[a-z0-9-]+:", ["arn:aws:s3:::bucket"], ["arn:aws::x"]),
    (r"^[A-Z]{3}-\d{3,5}$", ["ABC-123", "XYZ-12345"], ["AB-123", "ABC-12"]),
    (r"^\w+$", ["word_1"], ["two words", "naïve"]),
    (r"^[\w.-]+@[\w.-]+$", ["a.b@c-d.e"], ["a@b@c"]),
    (r"^\s*$", ["", "   ", "\t\n"], ["x", "\ufeff"]),
    (r"^[^\s@]+@[^\s@]+\.[^\s@]+$", ["user@mail.example"], ["user@mail", "us er@a.b"]),
    (r"^(?<year>\d{4})-(?<month>0[1-9]|1[0-2])$", ["2024-12"], ["2024-13"]),
    (r"^[a-z]{2}(-[A-Z]{2})?$", ["en", "en-US"], ["en-us", "eng"]),
    (r"^\$\{[A-Z_]+\}$", ["${HOME_DIR}"], ["$HOME", "${home}"]),
    (r'^"[^"]*"$', ['"quoted"', '""'], ["unquoted", '"a"b"']),
    (r"^[^\\/:*?\"<>|]+$", ["file name.txt"], ["a/b", "a\\b", 'a"b']),
    (r"^C:\\Users\\\w+$", ["C:\\Users\\bob"], ["C:/Users/bob"]),
    (r"^\d{1,3}(,\d{3})*$", ["1,234,567", "12"], ["1234,567", ",123"]),
    (r"^(\d{1,3}\.){3}\d{1,3}$", ["10.0.0.1"], ["10.0.0"]),
    (r"^[a-f0-9]{32}$", ["0123456789abcdef0123456789abcdef"], ["0123"]),
    (r"^[A-Z][a-z]+(?: [A-Z][a-z]+)*$", ["John Smith"], ["john smith", "John  Smith"]),
    (r"^([a-z]+\.)+[a-z]{2,6}$", ["www.example.com"], ["example", "example.c"]),
    (r"^.{3,10}$", ["abc", "ten chars!"], ["ab", "eleven char"]),
    (r"^(\+|-)?\d+(\.\d+)?(e[+-]?\d+)?$", ["-1.5e-3", "42"], ["1e", "e5"]),
    (r"^[^\x00-\x1F\x7F]+$", ["printable"], ["\x01", "tab\t"]),
    (r"^\p{Lu}\p{Ll}+$", ["Élan", "Zoë"], ["élan", "ÉLAN"]),
    (r"^(?:a|^b)c$", ["ac", "bc"], ["abc"]),
    (r"^a+?b*?$", ["aab", "a"], ["b"]),
    (r"^[\d-z]+$", ["1-z", "z"], ["a"]),
]

PATTERNS = [pattern for pattern, _, _ in REALISTIC]


@pytest.mark.parametrize(("pattern", "good", "bad"), REALISTIC, ids=PATTERNS)
def test_realistic_patterns_examples(pattern: str, good: list[str], bad: list[str]) -> None:
    fragment = pattern_to_regex(pattern)
    assert_conventions(fragment)
    for value in good:
        assert python_search(pattern)(value), value  # the example is right
        assert value_accepts(pattern, value), value
    for value in bad:
        assert not value_accepts(pattern, value), value


WALKS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("pattern", PATTERNS)
@WALKS
@given(seed=st.integers(0, 2**32 - 1))
def test_walks_match_the_pattern(pattern: str, seed: int) -> None:
    """Everything the engine can emit decodes to a value that `re.search` matches."""
    search = python_search(pattern)
    for content in sample_contents(pattern_to_regex(pattern), random.Random(seed), 10):
        value = json.loads(f'"{content}"')
        assert search(value), (pattern, content)


# ------------------------------------------------------------------------------------------
# anchoring policy
# ------------------------------------------------------------------------------------------


def test_anchoring_policy() -> None:
    # ^... : starts with, anything may follow
    assert value_accepts(r"^ab", "ab") and value_accepts(r"^ab", "abc!")
    assert not value_accepts(r"^ab", "xab")
    # ...$ : ends with, anything may precede
    assert value_accepts(r"ab$", "xyzab") and not value_accepts(r"ab$", "abx")
    # neither: the body must match the whole value (a sound subset of "contains")
    assert value_accepts(r"ab", "ab") and not value_accepts(r"ab", "xaby")
    # per top-level alternative
    fragment = pattern_to_regex(r"^a$|^b|c$")
    assert content_accepts(fragment, "a") and not content_accepts(fragment, "ax")
    assert content_accepts(fragment, "bxx") and content_accepts(fragment, "xxc")
    # anchors that are not at an edge hold only where the text really starts or ends
    assert pattern_to_regex(r"(^|,)x") == "(?:|,)x"
    assert value_accepts(r"^tape\d+$(\.alt\d+)?", "tape12")
    with pytest.raises(UnsupportedPattern, match="matches nothing"):
        pattern_to_regex(r"/^[0-9]{4}$/")  # JavaScript delimiters written into the pattern
    assert pattern_to_regex(r"^$") == ""
    assert value_accepts(r"^", "anything")


# ------------------------------------------------------------------------------------------
# ECMA-262 vs Python, and JSON escaping
# ------------------------------------------------------------------------------------------


def test_shorthand_classes_keep_to_both_dialects() -> None:
    # \d: ECMA is ASCII, Python is Unicode: generate ASCII only
    assert not value_accepts(r"^\d$", "٣")
    # \D: Python's \d includes '٣', so \D must exclude it
    assert not value_accepts(r"^\D$", "٣") and value_accepts(r"^\D$", "x")
    assert not value_accepts(r"^[^\d]$", "٣")
    # \w vs \W likewise
    assert not value_accepts(r"^\w$", "é") and not value_accepts(r"^\W$", "é")
    assert value_accepts(r"^\W$", "!")
    # \s: U+FEFF is space only in ECMA, U+001C and U+0085 only in Python
    for char in ("\ufeff", "\x1c", "\x85"):
        assert not value_accepts(r"^\s$", char) and not value_accepts(r"^\S$", char)
    assert value_accepts(r"^\s$", "\u3000") and value_accepts(r"^\s$", "\n")
    # . excludes all ECMA line terminators (Python's . only excludes \n)
    for char in ("\n", "\r", "\u2028", "\u2029"):
        assert not value_accepts(r"^.$", char)
    assert value_accepts(r"^.$", "\t") and value_accepts(r"^.$", "😀")


def test_json_escaping() -> None:
    # characters JSON must escape appear escaped, never raw
    assert content_accepts(pattern_to_regex(r'^"a"$'), '\\"a\\"')
    assert content_accepts(pattern_to_regex(r"^\\$"), "\\\\")
    assert content_accepts(pattern_to_regex(r"^\t\n$"), "\\t\\n")
    assert not accepts(quoted(pattern_to_regex(r"^\t$")), '"\t"')
    assert content_accepts(pattern_to_regex(r"^\x01$"), "\\u0001")
    assert content_accepts(pattern_to_regex(r"^\u00e9\x41$"), "éA")
    # broad sets produce backslash and the usual whitespace escapes, but not \" (see module)
    broad = pattern_to_regex(r"^[^a]+$")
    assert content_accepts(broad, "x\\\\y\\ty") and not content_accepts(broad, 'x\\"y')
    # the generic \u form is never produced, even where it would decode to a valid char
    assert not content_accepts(broad, "\\u0041")


def test_quantifier_details() -> None:
    assert pattern_to_regex(r"^a*?b+?c??d{2,3}?$") == "a*b+c?d{2,3}"
    assert pattern_to_regex(r"^x{2}y{2,}z{0,1}$") == "x{2}y{2,}z?"
    # a brace that is not a quantifier is a literal, as in both dialects
    assert value_accepts(r"^a{b}$", "a{b}") and value_accepts(r"^{x}$", "{x}")
    # huge upper bounds are lowered (a subset), lower bounds kept
    assert pattern_to_regex(r"^a{1,100000}$") == f"a{{1,{REPEAT_CAP}}}"
    assert pattern_to_regex(r"^a{1000,}$") == "a{1000,}"


UNSUPPORTED = {
    r"^(?=.*\d)\w+$": "lookaround",
    r"^(?!foo).*$": "lookaround",
    r"(?<=a)b": "lookaround",
    r"(?<!a)b": "lookaround",
    r"^(a)\1$": "backreference",
    r"^(?<n>a)\k<n>$": "backreference",
    r"\bword\b": "word boundary",
    r"\Bx": "word boundary",
    r"(?i)abc": "inline flags",
    r"a{,3}": "{,n}",
    r"[]a]": "empty class",
    r"[^]": "empty class",
    r"(abc": "missing )",
    r"abc)": "unbalanced",
    r"a**": "repeated quantifier",
    r"a*+": "repeated quantifier",
    r"*a": "nothing to repeat",
    r"^*a": "quantifier after an anchor",
    r"\cA": "control escape",
    r"\Aabc": "means something else in Python",
    r"a\01": "octal",
    r"\uD83D\uDE00": "surrogate",
    r"\x4": "hex digits",
    r"[z-a]": "out of order",
    r"a{3,2}": "out of order",
    "abc\\": "backslash",
    r"\p{Script=Latin}": "Unicode property",
}


@pytest.mark.parametrize("pattern", list(UNSUPPORTED))
def test_unsupported_constructs_raise(pattern: str) -> None:
    with pytest.raises(UnsupportedPattern, match=re.escape(UNSUPPORTED[pattern])):
        pattern_to_regex(pattern)
    assert issubclass(UnsupportedPattern, ValueError)


def test_translation_is_cached() -> None:
    pattern_to_regex.cache_clear()
    pattern_to_regex(r"^[a-z]+$")
    pattern_to_regex(r"^[a-z]+$")
    assert pattern_to_regex.cache_info().hits == 1


# ------------------------------------------------------------------------------------------
# JSONSchemaBench: how many real patterns translate and compile
# ------------------------------------------------------------------------------------------


def bench_patterns() -> list[str]:
    """Every string-valued `pattern` keyword anywhere in the benchmark schemas."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(BENCH.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            schema = json.loads(line)["schema"]
            walk(json.loads(schema) if isinstance(schema, str) else schema)
    return found


@pytest.mark.skipif(
    not BENCH.is_dir(),
    reason=NO_BENCH,
)
def test_benchmark_patterns_translate_and_compile() -> None:
    patterns = bench_patterns()
    distinct = sorted(set(patterns))
    outcome: dict[str, str] = {}
    reasons: Counter = Counter()
    slowest = (0.0, "")
    for pattern in distinct:
        try:
            fragment = pattern_to_regex(pattern)
        except UnsupportedPattern as err:
            outcome[pattern] = "unsupported"
            reasons[re.split(r",? (?:at position|in pattern) ", str(err))[0]] += 1
            continue
        start = time.perf_counter()
        byte_index(quoted(fragment))  # the shape the schema compiler uses
        elapsed = time.perf_counter() - start
        slowest = max(slowest, (elapsed, pattern))
        outcome[pattern] = "ok" if elapsed < 1.0 else "slow"
    ok_distinct = sum(v == "ok" for v in outcome.values())
    ok_all = sum(outcome[p] == "ok" for p in patterns)
    print(
        f"\n{ok_all}/{len(patterns)} pattern keywords ({ok_all / len(patterns):.1%}) and "
        f"{ok_distinct}/{len(distinct)} distinct patterns ({ok_distinct / len(distinct):.1%}) "
        f"translate and compile (quoted) within 1 s; slowest {slowest[0] * 1000:.0f} ms; "
        f"unsupported: {dict(reasons)}"
    )
    assert len(patterns) > 5000
    assert ok_all / len(patterns) > 0.99
    assert ok_distinct / len(distinct) > 0.98


@pytest.mark.skipif(
    not BENCH.is_dir(),
    reason=NO_BENCH,
)
def test_benchmark_pattern_walks_match() -> None:
    """A slice of the real patterns, walked and checked with Python's `re.search`."""
    rng = random.Random(7)
    distinct = sorted(set(bench_patterns()))
    checked = 0
    for pattern in rng.sample(distinct, 250):
        try:
            fragment = pattern_to_regex(pattern)
        except UnsupportedPattern:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                compiled = re.compile(python_pattern(pattern))
            except re.error:
                continue  # ECMA-only syntax that Python cannot compile at all
        for content in sample_contents(fragment, rng, 3, max_steps=40):
            assert compiled.search(json.loads(f'"{content}"')), (pattern, content)
            checked += 1
    assert checked > 600
