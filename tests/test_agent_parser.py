"""Call parsing (pythonic, JSON, marked blocks) and the streaming output splitter."""

from __future__ import annotations

import pytest

from agent.output_split import OutputSplitter
from agent.tool_parser import ParsedCall, parse_output, parse_payload


def test_pythonic_parallel_calls_with_literals():
    calls = parse_payload('[get_weather(city="Paris", days=3), now(), f(x=[1, 2], y={"a": None})]')
    assert calls == [
        ParsedCall("get_weather", {"city": "Paris", "days": 3}),
        ParsedCall("now", {}),
        ParsedCall("f", {"x": [1, 2], "y": {"a": None}}),
    ]


def test_pythonic_accepts_json_literals_and_dotted_names():
    (call,) = parse_payload("[ns.tool(flag=true, other=null, n=-1.5)]")
    assert call == ParsedCall("ns.tool", {"flag": True, "other": None, "n": -1.5})


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("[f(1)]", "by keyword"),
        ("[f(x=open('/etc/passwd'))]", "must be a literal"),
        ("[f(x=__import__('os').system('true'))]", "must be a literal"),
        ("[f(**{'a': 1})]", "**kwargs"),
        ("[(lambda: 1)()]", "plain name"),
        ("[f(x=1]", "neither JSON nor Python"),
        ("[1, f(a=1)]", "expected a call"),
        ("[1, 2]", "must be an object"),
        ("", "empty"),
    ],
)
def test_pythonic_rejects_anything_but_literal_keyword_calls(payload, fragment):
    calls = parse_payload(payload)
    assert len(calls) >= 1
    assert any(c.error and fragment in c.error for c in calls), calls


def test_json_calls_list_object_and_openai_shapes():
    assert parse_payload(
        '[{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]'
    ) == [
        ParsedCall("a", {"x": 1}),
        ParsedCall("b", {}),
    ]
    assert parse_payload('{"name": "a", "parameters": {"x": 2}}') == [ParsedCall("a", {"x": 2})]
    assert parse_payload(
        '{"type": "function", "function": {"name": "a", "arguments": "{\\"x\\": 3}"}}'
    ) == [ParsedCall("a", {"x": 3})]
    (bad,) = parse_payload('{"name": "a", "arguments": [1]}')
    assert bad.name == "a" and "must be an object" in bad.error
    (nameless,) = parse_payload('{"arguments": {}}')
    assert nameless.error and '"name"' in nameless.error


def test_marked_blocks_are_split_from_text():
    text = (
        "Let me check.<|tool_call_start|>[f(a=1)]<|tool_call_end|> and "
        '<|tool_call_start|>[{"name": "g", "arguments": {"b": "x"}}]<|tool_call_end|>done'
    )
    out = parse_output(text, bare=False)
    assert out.calls == [ParsedCall("f", {"a": 1}), ParsedCall("g", {"b": "x"})]
    assert out.text == "Let me check. and done"


def test_cut_off_block_is_an_error_call_not_silence():
    out = parse_output('<|tool_call_start|>[{"name": "f", "argu', bare=False)
    assert len(out.calls) == 1 and "cut off" in out.calls[0].error
    # A complete payload whose end marker is missing is still a call.
    out = parse_output("<|tool_call_start|>[f(a=1)]", bare=False)
    assert out.calls == [ParsedCall("f", {"a": 1})]


def test_bare_payloads_only_when_asked():
    assert parse_output('[f(a="x")]').calls == [ParsedCall("f", {"a": "x"})]
    assert parse_output('[{"name": "f", "arguments": {}}]').calls == [ParsedCall("f", {})]
    assert parse_output('[f(a="x")]', bare=False).calls == []
    plain = parse_output("The answer is 4 (probably).")
    assert plain.calls == [] and plain.text == "The answer is 4 (probably)."
    # JSON that is not a call stays text (e.g. a JSON answer).
    assert parse_output('{"answer": 4}').calls == []


def _split(chunks):
    splitter = OutputSplitter()
    segments = []
    for chunk in chunks:
        segments.extend(splitter.feed(chunk))
    segments.extend(splitter.flush())
    merged: list[tuple[str, str]] = []
    for s in segments:
        if merged and merged[-1][0] == s.kind:
            merged[-1] = (s.kind, merged[-1][1] + s.text)
        else:
            merged.append((s.kind, s.text))
    return merged


def test_splitter_handles_markers_split_across_chunks():
    text = "<think>plan it</think>Hi <|tool_call_start|>[f()]<|tool_call_end|> bye"
    expected = [("reasoning", "plan it"), ("text", "Hi "), ("call", "[f()]"), ("text", " bye")]
    assert _split([text]) == expected
    assert _split(list(text)) == expected  # one character at a time
    assert _split([text[:3], text[3:17], text[17:30], text[30:]]) == expected


def test_splitter_releases_text_that_only_looks_like_a_marker_start():
    assert _split(["a <thin", "king> b <"]) == [("text", "a <thinking> b <")]


def test_a_call_repeated_in_one_reply_is_made_once():
    text = (
        '[{"name": "add", "arguments": {"a": 1, "b": 2}}, '
        '{"name": "add", "arguments": {"b": 2, "a": 1}}, '
        '{"name": "add", "arguments": {"a": 1, "b": 3}}]'
    )
    calls = parse_output(text).calls
    assert [(c.name, c.arguments) for c in calls] == [
        ("add", {"a": 1, "b": 2}),
        ("add", {"a": 1, "b": 3}),
    ]


def test_repeats_that_failed_or_that_a_server_numbered_are_all_kept():
    from agent.tool_parser import unique_calls

    broken = ParsedCall("", error="the tool call is empty")
    numbered = [ParsedCall("f", {"x": 1}, call_id=f"call_{i}") for i in range(2)]
    assert unique_calls([broken, broken, *numbered]) == [broken, broken, *numbered]


def test_a_pythonic_call_with_an_invalid_escape_parses_without_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        calls = parse_output('[f(x="a\\)")]').calls
    assert [(c.name, c.arguments) for c in calls] == [("f", {"x": "a\\)"})]
