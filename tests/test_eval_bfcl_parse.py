"""Free mode's parser of BFCL's `[func(param=value)]` format (agent/eval/bfcl_parse.py):
values are read as BFCL reads them, malformed text gives no calls, and nothing the
model wrote is ever executed."""

from __future__ import annotations

import pytest

from agent.eval.bfcl_parse import parse_bfcl_calls


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        ("[func(a=1, b='x')]", [call("func", a=1, b="x")]),
        (
            "[f(a=1.5, b='two'), g(c=True, d=None)]",
            [call("f", a=1.5, b="two"), call("g", c=True, d=None)],
        ),
        ("[math.factorial(number=5)]", [call("math.factorial", number=5)]),
        ("f(x=-3)", [call("f", x=-3)]),  # BFCL adds the brackets
        ("[f(x=-3)", [call("f", x=-3)]),
        ("  [f(x=+2.5)]\n", [call("f", x=2.5)]),
        ("[f(xs=[1, 2], t=(3.0, 4.0), s={5})]", [call("f", xs=[1, 2], t=[3.0, 4.0], s=[5])]),
        ("[f(d={'k': 'v', 1: [2]})]", [call("f", d={"k": "v", 1: [2]})]),
        ("[f(unit=celsius, flag=true)]", [call("f", unit="celsius", flag="true")]),  # names
        ("[f(n=10**6, r=1/4, m=2*3+1)]", [call("f", n=1_000_000, r=0.25, m=7)]),  # computed
        ("[f(g=h(a=1))]", [call("f", g={"h": {"a": 1}})]),  # nested call with keywords
        ("[f(g=h(1))]", [call("f", g="h(1)")]),  # without keywords: its text, not run
        ("[f(x=data[0])]", [call("f", x="data[0]")]),
        ("[f(x=...)]", [call("f", x="...")]),
        ("[f(1, 2, a=3)]", [call("f", a=3)]),  # positional arguments are ignored, as in BFCL
        ("[f()]", [call("f")]),
        ("```python\n[f(a=1)]\n```", [call("f", a=1)]),  # a code fence is removed
        ("```\nf(a=1)\n```", [call("f", a=1)]),
        ("[]", []),  # "no call" is an answer
    ],
)
def test_reads_values_as_bfcl_does(text, calls):
    assert parse_bfcl_calls(text) == calls


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "I cannot help with that.",
        "The area is 25 square units.",
        "[f(a=1), 'text']",  # an element that is not a call
        "f(a=",
        "[f(**kw)]",
        "[f(a=x.y)]",  # attribute values are not read
        "[f(a=lambda: 1)]",
        "[f(a=f'{x}')]",
        "[(lambda: 1)()]",  # the called thing must be a name
        "[f(a=b'x')]",
        "[f(a=1j)]",
        "[f(a='x' * 3)]",  # arithmetic on numbers only
        "[f(a=9**9**9)]",  # refused before it is computed
        "[f(a=1/0)]",
        "[f(a=[1, 2][0:1])]" + "x",
        "[f(a=1)][0]",
        "def f():\n    return 1",
        "[" * 5000 + "]" * 5000,  # deep nesting: no crash
        "x" * 30_000,
    ],
)
def test_malformed_output_gives_no_calls(text):
    assert parse_bfcl_calls(text) == []


def test_nothing_the_model_writes_is_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "ran"
    attempts = [
        f"[f(a=__import__('os').system('touch {marker}'))]",
        f"[f(a=open('{marker}', 'w'))]",
        f"[__import__('pathlib').Path('{marker}').touch()]",
        f"[f(a=exec(\"open('{marker}', 'w')\"))]",
        f"[f(a=[x for x in open('{marker}', 'w')])]",
    ]
    results = [parse_bfcl_calls(text) for text in attempts]
    assert not marker.exists()
    # Calls without keywords are kept as text (BFCL's reading), never run; the rest fail.
    assert results[0] == [call("f", a=f"__import__('os').system('touch {marker}')")]
    assert results[1] == [call("f", a=f"open('{marker}', 'w')")]
    assert results[2] == [] and results[4] == []
    assert results[3] == [call("f", a=f"exec(\"open('{marker}', 'w')\")")]
