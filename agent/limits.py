"""Input limits: how much untrusted input edge-agent accepts before any expensive step.

Every path that takes input from outside (a prompt on stdin, a model's tool call, a
schema file, a session row, a request to the server) checks it here *before* the step
whose cost grows with it: tokenization (memory grows by hundreds of bytes per input byte),
`json.loads` and jsonschema (recursive: deep nesting is a RecursionError, not a clean
refusal). One module, so the limits are written down once and the same input meets the
same limit wherever it enters.

The limits, and why they are where they are:

- `MAX_TEXT_BYTES` (1 MiB): prompt text given to `generate`, `extract` and `run` (argument
  or stdin). At a typical 3-5 bytes per token that is over 200k tokens, more than the
  context window of any small model edge-agent targets, so refused text could never have
  fit; what passes costs a bounded amount to tokenize (the context check that follows
  tokenization then gives the exact answer).
- `MAX_JSON_BYTES` (1 MiB) and `MAX_JSON_DEPTH` (64): one JSON value from the model (tool
  arguments, a call payload) or a stored session row. No tool argument a model writes
  legitimately comes near either; 64 levels keep `json.loads` plus jsonschema far inside
  Python's recursion limit.
- `MAX_SCHEMA_BYTES` (1 MiB) and `MAX_SCHEMA_DEPTH` (128): a JSON Schema file. Schemas
  nest twice per level of data (`properties`, then the name), so 128 levels are about 40
  levels of nested objects, which the compiler's recursive passes handle.
- `MAX_REQUEST_BYTES` (16 MiB) and `MAX_JSON_DEPTH`: the body of one request to the server
  (a whole conversation, or up to 2,048 texts to embed).
- `MAX_HISTORY_BYTES` (1 MiB, as for prompt text): a resumed session's messages; above it
  the oldest turns are left out of the conversation (and the output says so) before
  anything is tokenized.

Each violation is an `InputLimitError` (a `UserError`): one line saying what was too
large, the limit, and what to do; the CLI prints it and exits 2.
"""

from __future__ import annotations

import json
import re
import stat
from typing import Any

from agent.errors import UserError

KIB = 1024
MIB = 1024 * KIB

MAX_TEXT_BYTES = 1 * MIB
MAX_JSON_BYTES = 1 * MIB
MAX_JSON_DEPTH = 64
MAX_SCHEMA_BYTES = 1 * MIB
MAX_SCHEMA_DEPTH = 128
MAX_REQUEST_BYTES = 16 * MIB
MAX_HISTORY_BYTES = MAX_TEXT_BYTES


class InputLimitError(UserError):
    """An input above one of the limits of this module (says which, and the way out)."""


# A JSON string (unrolled loop: linear, no backtracking) or one bracket. Brackets inside
# strings are skipped with the string; an unterminated string leaves its brackets counted,
# which can only over-count for text that is not JSON anyway.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def size_text(n_bytes: int) -> str:
    """A byte count for a message: `4 MiB`, `1.5 MiB`, `12 KiB`, `300 bytes`."""
    for unit, size in (("MiB", MIB), ("KiB", KIB)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n_bytes} bytes"


def json_text_depth(text: str | bytes, stop_above: int | None = None) -> int:
    """The deepest nesting of `[`/`{` in JSON text, without parsing it (no recursion).

    With `stop_above`, the scan ends as soon as the depth passes it (the answer is then
    `stop_above + 1`), so a hostile 50 MB document costs only its first brackets.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if stop_above is not None and text.count("[") + text.count("{") <= stop_above:
        return text.count("[") + text.count("{")  # an upper bound that is within the limit
    depth = deepest = 0
    for match in _JSON_TOKEN.finditer(text):
        c = match.group()
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        elif c in "]}":
            depth = max(depth - 1, 0)
    return deepest


def value_depth(value: Any, stop_above: int | None = None) -> int:
    """The nesting depth of parsed JSON (dicts and lists), walked without recursion.

    A scalar is depth 0, `{}` and `[]` depth 1. Stops early past `stop_above`. A value
    built in Python may share one object in several places (a DAG): that is not a cycle,
    and each shared object is measured once. A real cycle is infinitely deep.
    """
    heights: dict[int, int] = {}  # finished containers: id -> depth of their subtree
    path: set[int] = set()  # the containers being walked: the current one's ancestors
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, leaving = stack.pop()
        if not isinstance(item, (dict, list, tuple)):
            continue
        key = id(item)
        children = list(item.values()) if isinstance(item, dict) else list(item)
        if leaving:
            path.discard(key)
            heights[key] = 1 + max(
                (heights[id(c)] for c in children if isinstance(c, (dict, list, tuple))),
                default=0,
            )
            continue
        if key in heights:
            continue
        if key in path:  # a cycle
            return (stop_above if stop_above is not None else len(path)) + 1
        path.add(key)
        if stop_above is not None and len(path) > stop_above:
            return len(path)
        stack.append((item, True))
        stack.extend((child, False) for child in children)
    return heights.get(id(value), 0)


def check_text(text: str | bytes, what: str, limit: int = MAX_TEXT_BYTES) -> None:
    """InputLimitError when `text` is over `limit` bytes (UTF-8), before it is tokenized."""
    size = len(text) if isinstance(text, bytes) else _utf8_len(text, limit)
    if size > limit:
        raise too_large(what, size, limit)


def too_large(
    what: str, size: int | None, limit: int, fix: str = "pass a shorter text (or split it)"
) -> InputLimitError:
    """The error for an input of `size` bytes over `limit` (also for a file, from its
    size on disk, before it is read). `size=None`: a stream read only up to the limit,
    whose real size is unknown."""
    amount = f"more than {size_text(limit)}" if size is None else size_text(size)
    return InputLimitError(f"{what}: {amount}, over the limit of {size_text(limit)}; {fix}")


def _utf8_len(text: str, limit: int) -> int:
    # Characters are 1-4 bytes: a string of at most limit/4 characters cannot be over.
    if len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


def check_json_text(
    text: str | bytes,
    what: str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    fix: str = "send a flatter value",
) -> None:
    """InputLimitError when JSON text is too large or nested too deep to parse safely."""
    size = len(text) if isinstance(text, bytes) else _utf8_len(text, max_bytes)
    if size > max_bytes:
        raise InputLimitError(
            f"{what}: {size_text(size)} of JSON, over the limit of {size_text(max_bytes)}; "
            "send less"
        )
    if json_text_depth(text, stop_above=max_depth) > max_depth:
        raise _too_deep(what, max_depth, fix)


def check_value(value: Any, what: str, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """InputLimitError when already-parsed JSON nests deeper than `max_depth`."""
    if value_depth(value, stop_above=max_depth) > max_depth:
        raise _too_deep(what, max_depth)


def _too_deep(what: str, max_depth: int, fix: str = "send a flatter value") -> InputLimitError:
    return InputLimitError(f"{what}: nested deeper than the limit of {max_depth} levels; {fix}")


def loads(
    text: str | bytes,
    what: str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    fix: str = "send a flatter value",
) -> Any:
    """`json.loads` behind the size and depth checks.

    Raises InputLimitError for an input over the limits and lets `json.JSONDecodeError`
    (a `ValueError`) through for text that is not JSON, as `json.loads` does.
    """
    check_json_text(text, what, max_bytes=max_bytes, max_depth=max_depth, fix=fix)
    return json.loads(text)


def special_file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "a special file"
