"""Turn a file into document text, by file type.

Each loader takes the file's bytes and returns its text; a file that cannot be read
as text (binary, undecodable, a broken PDF) raises `UnreadableFile` with the reason,
which ingest reports as a warning and counts as skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.retriever.loaders.html import load_html
from agent.retriever.loaders.pdf import load_pdf
from agent.retriever.loaders.text import UnreadableFile, load_text

Loader = Callable[[bytes], str]

TEXT_EXTENSIONS = frozenset({".txt", ".text", ".md", ".markdown", ".rst", ".org", ".adoc"})
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
PDF_EXTENSIONS = frozenset({".pdf"})
CODE_EXTENSIONS = frozenset(
    {
        ".py", ".pyi", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".rs", ".c",
        ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".java", ".kt", ".kts", ".scala",
        ".swift", ".m", ".mm", ".cs", ".fs", ".rb", ".php", ".pl", ".pm", ".lua", ".r",
        ".jl", ".hs", ".ml", ".mli", ".ex", ".exs", ".erl", ".clj", ".dart", ".zig",
        ".nim", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".sql", ".css", ".scss",
        ".vue", ".svelte", ".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".xml",
        ".proto", ".graphql", ".tf", ".cmake", ".mk", ".gradle",
    }
)  # fmt: skip
CODE_FILENAMES = frozenset(
    {"Makefile", "Dockerfile", "CMakeLists.txt", "Rakefile", "Gemfile", "Justfile"}
)

__all__ = [
    "CODE_EXTENSIONS",
    "HTML_EXTENSIONS",
    "PDF_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "UnreadableFile",
    "kind_of",
    "load_document",
]


def kind_of(path: Path) -> str | None:
    """The loader kind for a path by its name ('text', 'code', 'html', 'pdf'), or None
    for a file type ingest does not know."""
    suffix = path.suffix.lower()
    if suffix in TEXT_EXTENSIONS:
        return "text"
    if suffix in HTML_EXTENSIONS:
        return "html"
    if suffix in PDF_EXTENSIONS:
        return "pdf"
    if suffix in CODE_EXTENSIONS or path.name in CODE_FILENAMES:
        return "code"
    return None


_LOADERS: dict[str, Loader] = {
    "text": load_text,
    "code": load_text,
    "html": load_html,
    "pdf": load_pdf,
}


def load_document(kind: str, data: bytes) -> str:
    """The text of a document of `kind`; raises `UnreadableFile`."""
    return _LOADERS[kind](data)
