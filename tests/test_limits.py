"""The input-limits module: depth and size are measured without recursion, and every
violation is a one-line `UserError` that names the input and the limit."""

from __future__ import annotations

import json

import pytest

from agent import limits
from agent.errors import UserError
from agent.limits import InputLimitError


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("{}", 1),
        ('[{"a": [1, 2]}, []]', 3),
        ('{"a": "[[[[[[[[[["}', 1),  # brackets inside strings do not count
        ('["\\"[[[[[["]', 1),  # nor after an escaped quote
        ("[" * 10_000 + "]" * 10_000, 10_000),
    ],
)
def test_json_text_depth(text, depth):
    assert limits.json_text_depth(text) == depth
    assert limits.json_text_depth(text.encode()) == depth


def test_the_depth_scan_stops_past_the_limit():
    assert limits.json_text_depth("[" * 1_000_000, stop_above=64) == 65


def test_value_depth_walks_without_recursion():
    value: list = []
    for _ in range(50_000):
        value = [value]
    assert limits.value_depth(value) == 50_001
    assert limits.value_depth({"a": [1, {"b": 2}]}) == 3
    assert limits.value_depth("scalar") == 0


def test_shared_objects_are_not_cycles():
    """A schema built in Python shares sub-dicts (`base | {...}`): measured, not refused."""
    leaf = {"type": "string"}
    shared = {"p": leaf, "q": leaf, "r": [leaf, leaf]}
    assert limits.value_depth({"a": shared, "b": shared}) == 4
    # Doubling sharing: 2**60 paths, one walk of each object.
    node: list = []
    for _ in range(60):
        node = [node, node]
    assert limits.value_depth(node) == 61
    assert limits.value_depth(node, stop_above=10) == 11


def test_a_cycle_is_too_deep():
    cyclic: dict = {}
    cyclic["self"] = cyclic
    with pytest.raises(InputLimitError):
        limits.check_value(cyclic, "a cycle")


def test_loads_refuses_deep_json_before_parsing():
    with pytest.raises(InputLimitError) as info:
        limits.loads("[" * 5_000 + "]" * 5_000, "the payload")
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert message == (
        "the payload: nested deeper than the limit of 64 levels; send a flatter value"
    )
    assert limits.loads("[" * 64 + "]" * 64, "ok") == json.loads("[" * 64 + "]" * 64)


def test_loads_refuses_large_json_and_passes_bad_json_as_value_error():
    with pytest.raises(InputLimitError, match=r"^big: 2 MiB of JSON, over the limit of 1 MiB"):
        limits.loads(" " * (2 * limits.MIB), "big")
    with pytest.raises(ValueError):
        limits.loads("{not json", "bad")


def test_check_text_counts_utf8_bytes():
    limits.check_text("é" * 100, "the prompt", limit=200)
    with pytest.raises(InputLimitError, match=r"^the prompt: 202 bytes, over the limit of 200"):
        limits.check_text("é" * 101, "the prompt", limit=200)
    with pytest.raises(InputLimitError, match="over the limit of 1 MiB"):
        limits.check_text(b"x" * (limits.MIB + 1), "stdin")


@pytest.mark.parametrize(
    ("n", "text"), [(300, "300 bytes"), (2048, "2 KiB"), (1536 * 1024, "1.5 MiB")]
)
def test_size_text(n, text):
    assert limits.size_text(n) == text
