"""Tool calls out of model text: LFM2's call blocks, JSON calls and pythonic calls.

Constrained output is always a JSON array of `{"name", "arguments"}` objects, but output
that was not constrained (other backends, models without LFM2's call tokens, or a
conversation loaded from elsewhere) can carry calls in any of the forms LFM2 and its
peers emit:

- `<|tool_call_start|>[f(a=1), g(b="x")]<|tool_call_end|>` (LFM2's default, pythonic);
- `<|tool_call_start|>[{"name": "f", "arguments": {"a": 1}}]<|tool_call_end|>` (JSON);
- the same payloads without the markers, when they are the whole reply.

Pythonic calls are parsed with `ast` and their argument values with `ast.literal_eval`:
nothing the model writes is ever executed.
"""

from __future__ import annotations

import ast
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from agent.limits import InputLimitError, check_json_text, check_value, loads

CALL_START = "<|tool_call_start|>"
CALL_END = "<|tool_call_end|>"


@dataclass(frozen=True)
class ParsedCall:
    """One call as written by the model; `error` says why it cannot be run."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    call_id: str | None = None  # given by a remote server; else the loop makes one


@dataclass(frozen=True)
class ParsedOutput:
    """A reply split into its calls and the text around them."""

    calls: list[ParsedCall]
    text: str


def parse_output(text: str, *, bare: bool = True) -> ParsedOutput:
    """Calls in `text` (marked blocks first; with `bare`, a whole-reply payload).

    An unterminated block (the output was cut off) still counts as a call so the model
    is told that it failed instead of having its call silently dropped.
    """
    calls: list[ParsedCall] = []
    outside: list[str] = []
    pos = 0
    found = False
    while True:
        start = text.find(CALL_START, pos)
        if start < 0:
            outside.append(text[pos:])
            break
        found = True
        outside.append(text[pos:start])
        body_start = start + len(CALL_START)
        end = text.find(CALL_END, body_start)
        if end < 0:
            payload = text[body_start:]
            calls.extend(
                parse_payload(payload)
                if _complete(payload)
                else [ParsedCall("", error="the tool call was cut off before it ended")]
            )
            break
        calls.extend(parse_payload(text[body_start:end]))
        pos = end + len(CALL_END)
    rest = "".join(outside)
    if not found and bare:
        bare_calls = _bare_calls(rest)
        if bare_calls:
            return ParsedOutput(unique_calls(bare_calls), "")
    return ParsedOutput(unique_calls(calls), rest)


def unique_calls(calls: list[ParsedCall]) -> list[ParsedCall]:
    """`calls` without repeats of an earlier call (same name and arguments).

    A small model that may write several calls often writes its one call again and
    again (measured on BFCL's simple cases with SmolLM2: most wrong answers of the
    constrained path were the right call repeated); within one step a repeat asks for
    nothing new. Calls that failed to parse are all kept (each is its own error), and so
    are calls a remote server numbered (each id it gave expects its own result).
    """
    seen: set[str] = set()
    out: list[ParsedCall] = []
    for call in calls:
        if call.error is None and call.call_id is None:
            key = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
        out.append(call)
    return out


def _complete(payload: str) -> bool:
    try:
        return all(c.error is None for c in parse_payload(payload))
    except Exception:
        return False


def _bare_calls(text: str) -> list[ParsedCall]:
    """Calls when the whole reply is a call payload; [] when it is just text."""
    stripped = text.strip()
    if not stripped or (stripped[0] not in "[{" and not _looks_pythonic(stripped)):
        return []
    calls = parse_payload(stripped)
    return [] if any(c.error for c in calls) else calls


def _looks_pythonic(text: str) -> bool:
    head = text.split("(", 1)[0]
    return text.endswith(")") and head.replace("_", "a").replace(".", "a").isalnum()


def parse_payload(payload: str) -> list[ParsedCall]:
    """The calls in one block: JSON (object or list) or pythonic (`[f(a=1), g()]`).

    Never raises: model output is untrusted, and a payload that is too large, nested too
    deep (a RecursionError in `json.loads` or `ast`), or broken in a way nothing foresaw
    is one failed call the model is told about, not a crashed loop.
    """
    try:
        return _parse_payload(payload)
    except Exception as exc:
        return [
            ParsedCall(
                "",
                error=f"the tool call could not be read ({type(exc).__name__}); "
                'write it as {"name": ..., "arguments": {...}}',
            )
        ]


def _parse_payload(payload: str) -> list[ParsedCall]:
    stripped = payload.strip()
    if not stripped:
        return [ParsedCall("", error="the tool call is empty")]
    try:
        check_json_text(stripped, "the tool call")
    except InputLimitError as exc:
        return [ParsedCall("", error=str(exc))]
    if stripped[0] in "[{":
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            value = None
        else:
            return _json_calls(value)
    return _pythonic_calls(stripped)


def _json_calls(value: Any) -> list[ParsedCall]:
    items = value if isinstance(value, list) else [value]
    if not items:
        return [ParsedCall("", error="the tool call list is empty")]
    return [_json_call(item) for item in items]


def _json_call(item: Any) -> ParsedCall:
    if not isinstance(item, dict):
        return ParsedCall("", error=f"a JSON tool call must be an object, got {_kind(item)}")
    if "function" in item and isinstance(item["function"], dict):
        item = item["function"]  # OpenAI's {"type": "function", "function": {...}}
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return ParsedCall("", error='a JSON tool call needs a "name" string')
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = loads(arguments, "the arguments string") if arguments.strip() else {}
        except InputLimitError as exc:
            return ParsedCall(name, error=str(exc))
        except ValueError:
            return ParsedCall(name, error="the arguments string is not JSON")
    if not isinstance(arguments, dict):
        return ParsedCall(name, error=f"arguments must be an object, got {_kind(arguments)}")
    return ParsedCall(name, arguments)


def parse_expression(text: str) -> ast.expr:
    """`text` as one Python expression, quietly: model output such as `"a\\)"` would
    otherwise print an invalid-escape warning on the user's terminal (a
    DeprecationWarning, a SyntaxWarning from Python 3.12)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(text, mode="eval").body


def _pythonic_calls(text: str) -> list[ParsedCall]:
    try:
        tree = parse_expression(text)
    except SyntaxError as exc:
        return [ParsedCall("", error=f"the tool call is neither JSON nor Python syntax: {exc.msg}")]
    nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    if not nodes:
        return [ParsedCall("", error="the tool call list is empty")]
    return [_pythonic_call(node) for node in nodes]


def _pythonic_call(node: ast.expr) -> ParsedCall:
    if not isinstance(node, ast.Call):
        return ParsedCall("", error="expected a call like name(arg=value)")
    name = _dotted_name(node.func)
    if name is None:
        return ParsedCall("", error="the called function must be a plain name")
    if node.args:
        return ParsedCall(name, error="pass arguments by keyword: name(arg=value)")
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return ParsedCall(name, error="**kwargs is not allowed in a tool call")
        try:
            arguments[keyword.arg] = _literal(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return ParsedCall(
                name, error=f"the value of '{keyword.arg}' must be a literal (string, number, ...)"
            )
    try:
        check_value(arguments, f"the arguments of '{name}'")
    except InputLimitError as exc:
        return ParsedCall(name, error=str(exc))
    return ParsedCall(name, arguments)


_JSON_NAMES = {"true": True, "false": False, "null": None}


def _literal(node: ast.expr) -> Any:
    """`ast.literal_eval` that also takes JSON's true/false/null (LFM2 writes either)."""
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("dict unpacking")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    value = ast.literal_eval(node)
    if isinstance(value, (tuple, set)):
        return list(value)
    return value


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(value), type(value).__name__)
