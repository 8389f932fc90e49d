"""An MCP `CallToolResult` as what the model reads and what the application gets.

Text content is the text; structured content (the JSON a tool with an output schema
returns, which the spec says the text repeats) is compact JSON; images, audio and
resources become a one-line note for the model, their raw items going to the
`tool_result` event (`ToolOutput.items`). `isError` results are error results.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tools.calls import ToolOutput
from tools.errors import ToolExecutionError


def to_output(result: Any, tool: str) -> ToolOutput:
    """`result` (mcp.types.CallToolResult) as a ToolOutput; ToolExecutionError if the
    server said the call failed."""
    texts: list[str] = []
    notes: list[str] = []
    items: list[dict[str, Any]] = []
    for block in result.content or []:
        raw = block.model_dump(mode="json", by_alias=True, exclude_none=True)
        kind = raw.get("type")
        if kind == "text":
            texts.append(str(raw.get("text", "")))
            continue
        items.append(raw)
        notes.append(_note(raw))
    if result.is_error:
        message = "\n".join(texts + notes).strip() or f"'{tool}' failed (no message)"
        raise ToolExecutionError(message)
    structured = result.structured_content
    if structured is not None:
        body = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
    else:
        body = "\n".join(texts)
    text = "\n".join(part for part in (body, *notes) if part)
    return ToolOutput(text, tuple(items))


def _note(raw: dict[str, Any]) -> str:
    """'[image image/png, 12.3 kB: in the tool_result event, not shown here]' and the like."""
    kind = raw.get("type")
    if kind in ("image", "audio"):
        size = _decoded_size(raw.get("data"))
        return f"[{kind} {raw.get('mimeType', '?')}, {_size(size)}: not shown to the model]"
    if kind == "resource_link":
        label = raw.get("name") or raw.get("title") or ""
        return f"[resource link {label} <{raw.get('uri', '?')}>]".replace("  ", " ")
    if kind == "resource":
        resource = raw.get("resource") or {}
        uri = resource.get("uri", "?")
        mime = resource.get("mimeType", "?")
        if "text" in resource:
            extent = f"{len(str(resource['text'])):,} characters"
        else:
            extent = _size(_decoded_size(resource.get("blob")))
        return f"[resource <{uri}> {mime}, {extent}: not shown to the model]"
    return f"[{kind} content: not shown to the model]"


def _decoded_size(data: Any) -> int | None:
    if not isinstance(data, str):
        return None
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "unknown size"
    if n < 1000:
        return f"{n} bytes"
    return f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1_000_000:.1f} MB"
