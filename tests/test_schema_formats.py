"""JSON Schema `format` fragments (schemas.formats), checked with the grammar engine.

The property that matters is soundness against python-jsonschema: whatever the decoder can
produce under a format must pass `FORMAT_CHECKER`. Random walks through the engine's own
automaton find accepted strings no hand-written example thinks of; hand-written examples
check that real values are not refused and that classic invalid ones are.

Fragments are compiled between quotes, their intended shape (see the schemas.formats
docstring for why bare compilation can explode).
"""

from __future__ import annotations

import datetime
import json
import random
import time
from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from outlines_core import Index, Vocabulary

from schemas.formats import FORMAT_PATTERNS, format_content_regex
from schemas.regex_check import accepts, byte_index

CHECKER = Draft202012Validator.FORMAT_CHECKER
EOS, END = 256, 0


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def quoted(fragment: str) -> str:
    return f'"{fragment}"'


def content_accepts(fragment: str, value: str) -> bool:
    """Does the fragment accept `value` (encoded as JSON) between the quotes?"""
    return accepts(quoted(fragment), json.dumps(value, ensure_ascii=False))


def _shortest_finish(index, state: int) -> bytes:
    """Bytes of a shortest path from `state` to a state that takes the end marker."""
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
    fragment: str, rng: random.Random, count: int, max_steps: int = 120
) -> list[str]:
    """Random string contents the engine accepts, by walking its byte automaton.

    The regex is `"R"\\x00`: byte 0 marks "the whole value ended here" (the engine drops
    transitions out of fully matched states, see schemas.regex_check). Each step picks a
    random allowed byte, or stops when the end marker is allowed; after `max_steps` the walk
    takes a shortest completion.
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
            if END in allowed and (not choices or rng.random() < 0.1):
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


def decoded(content: str) -> str:
    return json.loads(f'"{content}"')


# ------------------------------------------------------------------------------------------
# the checkers really check
# ------------------------------------------------------------------------------------------

OBVIOUSLY_BAD = {
    "date": "2024-02-30",
    "time": "25:00:00Z",
    "date-time": "yesterday",
    "duration": "P",
    "email": "no-at-sign",
    "idn-email": "no-at-sign",
    "hostname": "-bad-",
    "idn-hostname": "a..b",
    "ipv4": "256.1.1.1",
    "ipv6": "1:2",
    "uuid": "not-a-uuid",
    "uri": "no scheme",
    "uri-reference": "a b",
    "iri": "::",
    "iri-reference": "a b",
    "uri-template": "{",
    "json-pointer": "a",
    "relative-json-pointer": "x",
    "regex": "(",
}


def test_every_format_is_covered_and_really_checked() -> None:
    """A checker whose library is missing accepts everything: that would void the walks."""
    assert set(FORMAT_PATTERNS) == set(OBVIOUSLY_BAD)
    assert set(FORMAT_PATTERNS) <= set(CHECKER.checkers)
    for fmt, bad in OBVIOUSLY_BAD.items():
        assert not CHECKER.conforms(bad, fmt), fmt


def test_unknown_formats_give_none() -> None:
    assert format_content_regex("int32") is None
    assert format_content_regex("color") is None
    assert format_content_regex("date") == FORMAT_PATTERNS["date"]


# ------------------------------------------------------------------------------------------
# examples
# ------------------------------------------------------------------------------------------

GOOD = {
    "date": ["2024-05-01", "2024-02-29", "2000-02-29", "1999-12-31", "0001-01-01", "2023-04-30"],
    "time": ["12:30:00Z", "23:59:59.123+02:00", "00:00:00-05:30"],
    "date-time": ["2024-05-01T12:30:00Z", "2024-05-01T12:30:00.5+01:00", "1970-01-01T00:00:00Z"],
    "duration": ["P3Y6M4DT12H30M5S", "PT0S", "P1W", "P1D", "PT36H", "P1M", "PT1M30S"],
    "email": ["john.doe@example.com", "a+b@sub.example.co.uk", "x_y-z@mail-server.org"],
    "idn-email": ["john.doe@example.com"],
    "hostname": [
        "example.com",
        "localhost",
        "a-b.c-d.example",
        "my-service.us-east-1.elb.amazonaws.com",
        "xn--bcher-kva.example",
        "a" * 63 + ".com",
    ],
    "idn-hostname": ["example.com", "localhost", "a-b.c-d.example", "EXAMPLE.org"],
    "ipv4": ["192.168.0.1", "0.0.0.0", "255.255.255.255", "10.0.0.254"],
    "ipv6": [
        "::1",
        "::",
        "fe80::1",
        "2001:db8::8a2e:370:7334",
        "::ffff:192.168.0.1",
        "1:2:3:4:5:6:7:8",
        "2001:DB8:0:0:8:800:200C:417A",
        "1::",
    ],
    "uuid": ["123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000"],
    "uri": [
        "https://example.com/a?b=c",
        "http://localhost:8080/",
        "urn:isbn:0451450523",
        "mailto:john@example.com",
        "https://user:pw@example.com:443/p/a/t/h?query=1&x=y#frag",
        "file:///etc/passwd",
        "https://example.com/%E2%82%AC",
        "http://192.168.0.1/index.html",
    ],
    "uri-reference": [
        "/api/v1/users",
        "../x",
        "#frag",
        "",
        "https://example.com",
        "?q=1",
        "//cdn.example.com/x.js",
    ],
    "iri": ["https://example.com/a?b=c", "https://例え.jp/パス", "http://www.müller.de/straße"],
    "iri-reference": ["/über", "#frag", "https://example.com/"],
    "uri-template": [
        "{/path}/x{?q,lang}",
        "https://api.example.com/users/{id}",
        "{+base}/a{#frag}",
        "http://x/{var:3}",
        "plain",
    ],
    "json-pointer": ["", "/a~1b", "/0/name", "/", "/ü"],
    "relative-json-pointer": ["0#", "1/a", "0", "10/x", "2"],
    "regex": ["^[a-z]+$", "abc", "(a|b)+", "[^ ]+@.*", "^.*$", "[A-Za-z0-9_]+"],
}

BAD = {
    "date": [
        "2024-02-30",
        "2023-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "0000-01-01",
        "24-01-01",
        "2024-1-1",
    ],
    "time": ["24:00:00Z", "12:30:00", "12:60:00Z", "12:30:60Z", "1:30:00Z"],
    "date-time": ["2024-05-01 12:30:00Z", "2024-05-01T12:30:00", "2024-02-30T00:00:00Z"],
    "duration": ["P", "PT", "P1Y1W", "P1DT", "1D", "P1.5D"],
    "email": ["john.doe", "@example.com", "john@", "a@b", "a b@example.com", ".a@example.com"],
    "hostname": ["-a.com", "a..b", "a-.com", "", "a_b.com", "a" * 64 + ".com", "a.b."],
    "idn-hostname": ["ab--cd.com", "-a", "xn--abc"],
    "ipv4": ["256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", " 1.2.3.4"],
    "ipv6": ["1:2:3:4:5:6:7:8:9", ":::", "1::2::3", "12345::", "fe80::1%eth0", "1:2:3:4:5:6:7::8"],
    "uuid": ["123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g"],
    "uri": ["example.com", "/relative", "http://exa mple.com", "http://x/%zz", "1http://x"],
    "uri-reference": ["a b", "http://x/%zz", "a\\b"],
    "iri": ["no scheme", "http://x/%zz"],
    "uri-template": ["{", "{a", "{a:10000}", "{}", "a}"],
    "json-pointer": ["a", "/~2", "/~"],
    "relative-json-pointer": ["01", "-1", "/a", "100", "105/a"],
    "regex": ["(", "[a-", "a**", "\\"],
}


@pytest.mark.parametrize("fmt", sorted(GOOD))
def test_real_values_are_accepted(fmt: str) -> None:
    fragment = FORMAT_PATTERNS[fmt]
    for value in GOOD[fmt]:
        assert CHECKER.conforms(value, fmt), (fmt, value)  # the example itself is right
        assert content_accepts(fragment, value), (fmt, value)


@pytest.mark.parametrize("fmt", sorted(BAD))
def test_invalid_values_are_rejected(fmt: str) -> None:
    fragment = FORMAT_PATTERNS[fmt]
    for value in BAD[fmt]:
        assert not content_accepts(fragment, value), (fmt, value)


def test_dates_are_exact_for_sample_years() -> None:
    """Every month/day spelling of a few years: accepted exactly when the date exists."""
    fragment = FORMAT_PATTERNS["date"]
    for year in (1, 1900, 1999, 2000, 2023, 2024, 9999):
        for month in range(0, 14):
            for day in range(0, 33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    datetime.date(year, month, day)
                    exists = True
                except ValueError:
                    exists = False
                assert content_accepts(fragment, text) == exists, text


def test_ipv4_octets_are_exact() -> None:
    fragment = FORMAT_PATTERNS["ipv4"]
    for octet in [*range(0, 300), "00", "01", "001", "099"]:
        text = f"10.{octet}.0.1"
        assert content_accepts(fragment, text) == CHECKER.conforms(text, "ipv4"), text


def test_hostname_length_limits() -> None:
    """Label ≤ 63 and total ≤ 253 hold by construction (63 + 6 × 31 = 249)."""
    fragment = FORMAT_PATTERNS["hostname"]
    longest = ".".join(["a" * 63] + ["b" * 30] * 6)
    assert len(longest) == 249 and CHECKER.conforms(longest, "hostname")
    assert content_accepts(fragment, longest)
    assert not content_accepts(fragment, longest + ".c")
    assert not content_accepts(fragment, "a" * 63 + "." + "b" * 31)


# ------------------------------------------------------------------------------------------
# random walks: everything the engine can emit passes the checker
# ------------------------------------------------------------------------------------------

WALKS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", sorted(FORMAT_PATTERNS))
@WALKS
@given(seed=st.integers(0, 2**32 - 1))
def test_walks_pass_the_format_checker(fmt: str, seed: int) -> None:
    for content in sample_contents(FORMAT_PATTERNS[fmt], random.Random(seed), 12):
        value = decoded(content)
        assert CHECKER.conforms(value, fmt), (fmt, value)


# ------------------------------------------------------------------------------------------
# shape and cost
# ------------------------------------------------------------------------------------------


def regex_outline(fragment: str) -> tuple[set[str], str]:
    """The escape letters a regex uses, and its text with escapes and classes blanked out.

    Enough of a tokenizer to check the fragment conventions: `[...]` classes (with nested
    escapes) become `C`, escapes become `E`, and `\\x{..}` / `\\p{..}` are consumed whole.
    """
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


@pytest.mark.parametrize("fmt", sorted(FORMAT_PATTERNS))
def test_fragments_are_small_and_compile_fast(fmt: str) -> None:
    fragment = FORMAT_PATTERNS[fmt]
    assert_conventions(fragment)
    vocabulary = Vocabulary(EOS, {bytes([b]): [b] for b in range(256)})
    start = time.perf_counter()
    index = Index(quoted(fragment) + "\\x00", vocabulary)  # uncached, unlike byte_index
    elapsed = time.perf_counter() - start
    states = len(index.get_transitions())
    print(f"{fmt}: {len(fragment)} chars, {states} states, {elapsed * 1000:.1f} ms")
    assert states < 1500  # the size bound; the time is printed, not asserted (load varies)
