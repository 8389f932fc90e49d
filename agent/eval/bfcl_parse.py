"""Calls out of a prompt-based model's text: BFCL's `[func(param=value), ...]` format.

The text is untrusted model output, so it is parsed with `ast` and read node by node;
nothing is ever executed. Values are read as BFCL's own decoder reads them (its
`default_decode_ast_prompting` and `resolve_ast_by_type`), so free-mode accuracy is the
accuracy BFCL would report for the same text:

- literals are themselves; `-5` is a number; lists, tuples and sets become lists;
- a bare name (`unit=celsius`, `flag=true`) is the string of that name, as in BFCL;
- a nested call with keyword arguments becomes `{name: {arguments}}`, one without them
  its source text (as BFCL does);
- arithmetic such as `10**6` or `1/3` is computed by the calculator's `ast` whitelist
  (BFCL calls `eval` here; this never does);
- positional arguments are ignored, as BFCL ignores them.

Anything else (attribute values, lambdas, f-strings, prose, a syntax error) means the
output did not parse, and it gives no calls at all, as a BFCL decoding error does. The
one leniency over BFCL: a Markdown code fence around the calls (```python ... ```) is
removed first.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from agent.tool_parser import parse_expression

MAX_TEXT_CHARS = 20_000  # far above any budget a case is given; bounds parse cost
_FENCE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?```$", re.DOTALL)


class Unparsable(ValueError):
    """The text is not a list of calls in BFCL's format."""


def parse_bfcl_calls(text: str) -> list[dict[str, Any]]:
    """The calls in `text` as `{"name", "arguments"}` dicts; [] when it does not parse.

    An empty list (`[]`) is a valid answer meaning "no call".
    """
    try:
        return _parse(text)
    except (Unparsable, SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return []


def _parse(text: str) -> list[dict[str, Any]]:
    if len(text) > MAX_TEXT_CHARS:
        raise Unparsable("the text is too long")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    body = body.strip("`\n ")
    if not body:
        raise Unparsable("no text")
    if not body.startswith("["):
        body = "[" + body
    if not body.endswith("]"):
        body = body + "]"
    tree = parse_expression(body)
    if not isinstance(tree, ast.List):  # `[a][b]` parses as a subscript
        raise Unparsable("not a list of calls")
    return [_call(node) for node in tree.elts]


def _call(node: ast.expr) -> dict[str, Any]:
    if not isinstance(node, ast.Call):
        raise Unparsable(f"not a call: {type(node).__name__}")
    name = _dotted_name(node.func)
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise Unparsable("**kwargs in a call")
        arguments[keyword.arg] = _value(keyword.value)
    return {"name": name, "arguments": arguments}


def _dotted_name(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise Unparsable("the called function is not a name")
    parts.append(node.id)
    return ".".join(reversed(parts))


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        value = node.value
        if value is Ellipsis:
            return "..."
        if isinstance(value, (bytes, complex)):
            raise Unparsable(f"a {type(value).__name__} value has no JSON form")
        return value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _value(node.operand)
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise Unparsable("a sign before a value that is not a number")
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise Unparsable("** inside a dict")
        out: dict[Any, Any] = {}
        for key, item in zip(node.keys, node.values, strict=True):
            resolved = _value(key)  # type: ignore[arg-type]
            if isinstance(resolved, (list, dict)):
                raise Unparsable("a dict key that is not a scalar")
            out[resolved] = _value(item)
        return out
    if isinstance(node, ast.Name):
        return node.id  # BFCL: a variable name stands for its own string
    if isinstance(node, ast.BinOp):
        return _arithmetic(node)
    if isinstance(node, ast.Call):
        if node.keywords:
            call = _call(node)
            return {call["name"]: call["arguments"]}
        return ast.unparse(node)
    if isinstance(node, ast.Subscript):
        return ast.unparse(node)
    raise Unparsable(f"unsupported value: {type(node).__name__}")


def _arithmetic(node: ast.BinOp) -> int | float:
    """A numeric expression, computed by the calculator's whitelist (never `eval`)."""
    from tools.builtin.calculator import evaluate
    from tools.errors import ToolExecutionError

    try:
        return evaluate(ast.unparse(node))
    except ToolExecutionError as exc:
        raise Unparsable(f"not arithmetic: {exc}") from None
