"""One value for a document from the values of its chunks (and passes).

* An array (the top level, or a property of a top-level object): the items of every
  chunk, in order, without repeats (items equal as JSON are one item; the overlap
  between chunks makes such repeats common), cut at `maxItems`.
* Any other property: taken whole from the chunk that grounds it best (the most of its
  values found in the text), the earliest on a tie. When chunks disagree, a note says
  which value was kept and why.

The merged value is checked against the schema; should a combination break it (a
keyword across properties), the best single chunk's value is used, and a note says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.docextract.spans import Span


@dataclass
class Part:
    """One chunk's (or pass's) extraction: its value and spans in document offsets."""

    value: Any
    spans: dict[str, Span]
    label: str  # "chunk 2", "chunk 2, pass 2"


@dataclass
class Merged:
    value: Any
    spans: dict[str, Span]
    notes: list[str] = field(default_factory=list)


def merge(parts: Sequence[Part], schema: Any, valid: Callable[[Any], bool]) -> Merged:
    if not parts:
        raise ValueError("nothing to merge")
    if len(parts) == 1:
        return Merged(parts[0].value, dict(parts[0].spans))
    node = schema if isinstance(schema, dict) else {}
    first = parts[0].value
    if isinstance(first, list) and all(isinstance(p.value, list) for p in parts):
        merged = _merge_arrays([(p.value, p.spans) for p in parts], "", node.get("maxItems"))
    elif isinstance(first, dict) and all(isinstance(p.value, dict) for p in parts):
        merged = _merge_objects(parts, node.get("properties") or {})
    else:
        merged = _best_whole(parts, "")
    if not valid(merged.value):
        best = max(parts, key=_score)
        return Merged(
            best.value,
            dict(best.spans),
            [f"the merged value broke the schema; kept the value of {best.label} whole"],
        )
    return merged


def _score(part: Part) -> int:
    return sum(1 for span in part.spans.values() if span is not None)


def _merge_objects(parts: Sequence[Part], properties: dict[str, Any]) -> Merged:
    keys: list[str] = []
    for part in parts:
        keys += [k for k in part.value if k not in keys]
    value: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    notes: list[str] = []
    for key in keys:
        pointer = "/" + key.replace("~", "~0").replace("/", "~1")
        having = [p for p in parts if key in p.value]
        subs = [(p.value[key], _sub_spans(p.spans, pointer), p.label) for p in having]
        if all(isinstance(v, list) for v, _, _ in subs):
            prop = properties.get(key)
            cap = prop.get("maxItems") if isinstance(prop, dict) else None
            got = _merge_arrays([(v, s) for v, s, _ in subs], pointer, cap)
            notes += got.notes
        else:
            got = _best_whole([Part(v, s, label) for v, s, label in subs], pointer)
            notes += got.notes
        value[key] = got.value
        spans.update(_prefixed(got.spans, pointer))
    return Merged(value, spans, notes)


def _best_whole(parts: Sequence[Part], pointer: str) -> Merged:
    """The value of the part that grounds it best (earliest on a tie)."""
    best = max(parts, key=_score)  # max keeps the first of equal scores
    distinct = {_canonical(p.value) for p in parts}
    notes: list[str] = []
    if len(distinct) > 1:
        grounded = "found in the text" if _score(best) else "none was found in the text"
        notes.append(
            f"{pointer or '/'}: {len(parts)} chunks gave {len(distinct)} different values; "
            f"kept {json.dumps(best.value, ensure_ascii=False)[:80]} from {best.label} "
            f"({grounded})"
        )
    return Merged(best.value, dict(best.spans), notes)


def _merge_arrays(
    arrays: Sequence[tuple[list[Any], dict[str, Span]]], pointer: str, cap: Any
) -> Merged:
    items: list[Any] = []
    spans: dict[str, Span] = {}
    seen: set[str] = set()
    dropped = 0
    for array, array_spans in arrays:
        for index, item in enumerate(array):
            key = _canonical(item)
            if key in seen:
                continue
            if isinstance(cap, int) and len(items) >= cap:
                dropped += 1
                continue
            seen.add(key)
            item_spans = _sub_spans(array_spans, f"/{index}")
            spans.update(_prefixed(item_spans, f"/{len(items)}"))
            items.append(item)
    notes = []
    if dropped:
        notes.append(f"{pointer or '/'}: {dropped} more items did not fit maxItems {cap}")
    return Merged(items, spans, notes)


def _sub_spans(spans: dict[str, Span], prefix: str) -> dict[str, Span]:
    """The spans under `prefix`, with pointers relative to it."""
    out: dict[str, Span] = {}
    for pointer, span in spans.items():
        if pointer == prefix:
            out[""] = span
        elif pointer.startswith(prefix + "/"):
            out[pointer[len(prefix) :]] = span
    return out


def _prefixed(spans: dict[str, Span], prefix: str) -> dict[str, Span]:
    return {prefix + pointer: span for pointer, span in spans.items()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
