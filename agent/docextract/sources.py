"""Where documents come from: files and folders (through the ingest loaders) or text.

A folder is walked as `edge-agent ingest` walks it (sorted, hidden files and tool
folders skipped, only the file types a loader reads); a file named explicitly is read
even with an unknown extension, as text. A document that cannot be read is not an
exception here: it carries its error, so a batch goes on with the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import agent.limits as limits
from agent.retriever.ingest import MAX_FILE_BYTES, SKIP_DIRS
from agent.retriever.loaders import UnreadableFile, kind_of, load_document


@dataclass(frozen=True)
class Text:
    """A document given as text (stdin, `--text`, a notebook cell)."""

    text: str
    name: str = "<text>"


@dataclass(frozen=True)
class Document:
    """A document's name and text, or why it could not be read."""

    source: str
    text: str = ""
    kind: str = "text"
    error: str | None = None


SourceLike = str | os.PathLike[str] | Text


def expand(sources: Iterable[SourceLike]) -> list[Path | Text]:
    """The documents the sources name, in order, without reading them: folders become
    the files a loader reads (sorted), a path named twice counts once. A path that does
    not exist stays in the list (loading it reports the error)."""
    out: list[Path | Text] = []
    seen: set[str] = set()
    for source in sources:
        if isinstance(source, Text):
            out.append(source)
            continue
        root = Path(source).expanduser()
        for path in _walk(root) if root.is_dir() else [root]:
            if str(path) not in seen:
                seen.add(str(path))
                out.append(path)
    return out


def name_of(item: Path | Text) -> str:
    return item.name if isinstance(item, Text) else str(item)


def load(item: Path | Text) -> Document:
    """The document's text, or a Document with the reason it has none."""
    if isinstance(item, Text):
        return _from_text(item)
    return load_file(item, kind_of(item) or "text")


def documents(sources: Iterable[SourceLike]) -> Iterator[Document]:
    """Every document the sources name, loaded one at a time."""
    for item in expand(sources):
        yield load(item)


def _from_text(source: Text) -> Document:
    if not source.text.strip():
        return Document(source.name, error="the text is empty")
    return Document(source.name, source.text)


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and kind_of(path) is not None and path.is_file():
                yield path


def load_file(path: Path, kind: str) -> Document:
    """One file's text through its loader, or a Document with the reason it has none."""
    name = str(path)
    try:
        if not path.exists():
            return Document(name, kind=kind, error="does not exist")
        if not path.is_file():
            return Document(name, kind=kind, error="not a regular file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Document(
                name, kind=kind, error=f"too large ({size / 2**20:.0f} MB; the limit is "
                f"{MAX_FILE_BYTES / 2**20:.0f} MB)"
            )  # fmt: skip
        text = load_document(kind, path.read_bytes())
    except UnreadableFile as exc:
        return Document(name, kind=kind, error=f"unreadable {kind} file: {exc}")
    except OSError as exc:
        return Document(name, kind=kind, error=f"cannot read: {exc.strerror or exc}")
    if not text.strip():
        return Document(name, kind=kind, error=f"no text in this {kind} file")
    if len(text) > limits.MAX_TEXT_BYTES * 16:
        return Document(name, kind=kind, error="too much text in one document")
    return Document(name, text, kind)
