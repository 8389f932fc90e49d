"""Docstrings -> a tool description and per-parameter descriptions.

The model chooses tools and fills arguments from these texts, so the parameter
descriptions a developer already wrote (Google, NumPy or Sphinx style) are reused
instead of asking for them twice.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

_GOOGLE_PARAMS = {
    "args",
    "arguments",
    "parameters",
    "params",
    "keyword args",
    "keyword arguments",
    "other parameters",
}
_GOOGLE_OTHER = {
    "returns",
    "return",
    "yields",
    "yield",
    "raises",
    "raise",
    "examples",
    "example",
    "notes",
    "note",
    "attributes",
    "see also",
    "references",
    "warnings",
    "warning",
    "todo",
    "methods",
}
_UNDERLINE = re.compile(r"^\s*(-{3,}|={3,})\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::\s*(.*))?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:\s*(.*)$")


@dataclass
class DocInfo:
    """What a docstring says about a function."""

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> DocInfo:
    """Split a docstring into its description and its parameter descriptions."""
    if not doc or not doc.strip():
        return DocInfo()
    lines = inspect.cleandoc(doc).splitlines()
    sections = _split_sections(lines)
    info = DocInfo()
    head = sections.pop(0)[2] if sections and sections[0][0] == "" else []
    # Sphinx fields live in the description block itself.
    body: list[str] = []
    sphinx: list[str] = []
    for line in head:
        continued = bool(sphinx) and line.startswith((" ", "\t")) and bool(line.strip())
        if line.lstrip().startswith(":") or continued:
            sphinx.append(line)
        else:
            if sphinx:
                _parse_sphinx(sphinx, info.params)
                sphinx = []
            body.append(line)
    if sphinx:
        _parse_sphinx(sphinx, info.params)
    info.description = _paragraphs(body)
    for name, style, content in sections:
        if name in _GOOGLE_PARAMS:
            parse = _parse_numpy_entries if style == "numpy" else _parse_google_entries
            for param, text in parse(content).items():
                info.params.setdefault(param, text)
    return info


def _split_sections(lines: list[str]) -> list[tuple[str, str, list[str]]]:
    """[(lowercase section name or "" for the head, style, lines)] in order."""
    sections: list[tuple[str, str, list[str]]] = [("", "", [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        is_top = not line.startswith((" ", "\t"))
        if is_top and stripped and _UNDERLINE.match(nxt) and not _UNDERLINE.match(line):
            sections.append((stripped.lower(), "numpy", []))
            i += 2
            continue
        if is_top and stripped.endswith(":"):
            name = stripped[:-1].strip().lower()
            if name in _GOOGLE_PARAMS or name in _GOOGLE_OTHER:
                sections.append((name, "google", []))
                i += 1
                continue
        sections[-1][2].append(line)
        i += 1
    return sections


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _parse_google_entries(lines: list[str]) -> dict[str, str]:
    content = [line for line in lines if line.strip()]
    if not content:
        return {}
    base = min(_indent(line) for line in content)
    params: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines:
        if not line.strip():
            if current:
                params[current].append("")
            continue
        match = _GOOGLE_ENTRY.match(line.strip()) if _indent(line) == base else None
        if match:
            current = match.group(1)
            params[current] = [match.group(3)]
        elif current:
            params[current].append(line.strip())
    return {name: _paragraphs(text) for name, text in params.items()}


def _parse_numpy_entries(lines: list[str]) -> dict[str, str]:
    content = [line for line in lines if line.strip()]
    if not content:
        return {}
    base = min(_indent(line) for line in content)
    params: dict[str, list[str]] = {}
    current: list[str] = []
    for line in lines:
        if not line.strip():
            for name in current:
                params[name].append("")
            continue
        match = _NUMPY_ENTRY.match(line.strip()) if _indent(line) == base else None
        if match:
            current = [n.strip().lstrip("*") for n in match.group(1).split(",")]
            for name in current:
                params[name] = []
        else:
            for name in current:
                params[name].append(line.strip())
    return {name: _paragraphs(text) for name, text in params.items()}


def _parse_sphinx(lines: list[str], into: dict[str, str]) -> None:
    current: str | None = None
    texts: dict[str, list[str]] = {}
    for line in lines:
        match = _SPHINX_PARAM.match(line.strip())
        if match:
            current = match.group(1)
            texts[current] = [match.group(2)]
        elif line.lstrip().startswith(":"):
            current = None
        elif current:
            texts[current].append(line.strip())
    for name, text in texts.items():
        into.setdefault(name, _paragraphs(text))


def _paragraphs(lines: list[str]) -> str:
    """Join wrapped lines into paragraphs separated by one blank line."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)
