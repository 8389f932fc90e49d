"""The exact text of assistant turns this server generated, found again when a client
sends the conversation back.

A client sees an assistant turn in OpenAI's shape: the visible text as `content` and the
calls as `tool_calls` with JSON `arguments`. The model generated something else
exactly: LFM2 call blocks (`<|tool_call_start|>[...]<|tool_call_end|>`) with its own
spacing, maybe reasoning. Rendering the OpenAI shape again would give a different
prompt text, and LFM2's prompt cache, which cannot be rewound, would miss from that turn
on. So the server keeps each turn it returned, keyed by the conversation up to and
including that turn as the client sees it, and puts the generated text back in its
place. A turn the client edited, or one that was never generated here, has no key and
is rendered from what the client sent.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any


class TurnMemory:
    """Generated text of recent assistant turns (LRU, at most `max_entries`)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._raw: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._raw)

    def remember(self, before: list[dict[str, Any]], returned: dict[str, Any], raw: str) -> None:
        """`returned` (the assistant message a client got after `before`) was `raw`."""
        if self.max_entries <= 0:
            return
        digest = _Digest()
        for message in before:
            digest.add(message)
        key = digest.add(returned)
        with self._lock:
            self._raw[key] = raw
            self._raw.move_to_end(key)
            while len(self._raw) > self.max_entries:
                self._raw.popitem(last=False)

    def restore(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`messages` with each assistant turn generated here replaced by its exact text."""
        digest = _Digest()
        out = []
        for message in messages:
            key = digest.add(message)
            raw = None
            if message.get("role") == "assistant":
                with self._lock:
                    raw = self._raw.get(key)
                    if raw is not None:
                        self._raw.move_to_end(key)
            out.append({"role": "assistant", "content": raw} if raw is not None else message)
        return out


class _Digest:
    """A running hash of a conversation, message by message, in a canonical form."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, message: dict[str, Any]) -> str:
        self._hash.update(json.dumps(_canonical(message), ensure_ascii=False).encode())
        self._hash.update(b"\x00")
        return self._hash.copy().hexdigest()


def _canonical(message: dict[str, Any]) -> list[Any]:
    """What identifies a message, whatever extra fields (`refusal: null`, ...) a client
    adds or leaves out."""
    calls = [
        [c.get("id", ""), c["function"]["name"], c["function"].get("arguments", "")]
        for c in message.get("tool_calls") or []
    ]
    return [
        message.get("role"),
        message.get("content") or "",
        calls,
        message.get("tool_call_id") or "",
    ]
