"""Ingest: chunking, loaders per file type, incremental re-ingest, bad input, CLI."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from rag_helpers import cli, run_cli, write_pdf

from agent.errors import UserError
from agent.retriever import IngestSummary, default_index_dir, ingest, open_index
from agent.retriever.chunking import TokenChunker, count_tokens
from agent.retriever.loaders import load_document
from agent.retriever.loaders.html import html_to_text

PARAGRAPH = (
    "Glaciers form where snow accumulates faster than it melts. Over centuries the snow "
    "compacts into firn and then into dense glacial ice, which flows downhill under its "
    "own weight. Meltwater lakes and moraines mark where a glacier once reached. "
)


def chunks_of(index_dir: Path) -> dict[str, list[tuple[int, int, str]]]:
    with open_index(index_dir) as index:
        rows = index.store.conn.execute(
            "SELECT d.path, c.start, c.end, c.text FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id ORDER BY d.path, c.seq"
        ).fetchall()
    out: dict[str, list[tuple[int, int, str]]] = {}
    for path, start, end, text in rows:
        out.setdefault(path, []).append((start, end, text))
    return out


# -- chunking ------------------------------------------------------------------------


def test_chunks_respect_token_budget_offsets_and_overlap() -> None:
    text = ("Über die Gletscher 日本語. " + PARAGRAPH) * 12 + "\n\n" + PARAGRAPH * 6
    chunker = TokenChunker(chunk_tokens=64, overlap=16)
    chunks = chunker.split(text)
    assert len(chunks) > 5
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert count_tokens(chunk.text) <= 64 + 1  # +1: a split multi-byte char rounds up
        assert chunk.tokens <= 64
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "adjacent chunks overlap"
        assert after.start > before.start
    assert chunks[0].start == 0
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert covered >= {i for i, ch in enumerate(text) if not ch.isspace()}


def test_chunk_boundaries_prefer_paragraph_ends() -> None:
    paragraphs = [f"Paragraph {i}. " + PARAGRAPH for i in range(8)]
    text = "\n\n".join(paragraphs)
    chunks = TokenChunker(chunk_tokens=120, overlap=10).split(text)
    # Every chunk ends at a paragraph or sentence end, none mid-sentence.
    for chunk in chunks:
        assert chunk.text.rstrip()[-1] in ".\n", repr(chunk.text[-30:])
    mid_word = TokenChunker(chunk_tokens=120, overlap=10, snap=False).split(text)
    assert any(c.text.rstrip()[-1] != "." for c in mid_word[:-1])


def test_chunker_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="overlap"):
        TokenChunker(chunk_tokens=50, overlap=40)
    with pytest.raises(ValueError, match="at least 8"):
        TokenChunker(chunk_tokens=4, overlap=0)


# -- loaders -------------------------------------------------------------------------


def test_html_loader_keeps_visible_text_only() -> None:
    markup = (
        "<html><head><title>Trip &amp; notes</title><style>p{color:red}</style>"
        "<script>var secret = 1;</script></head><body><h1>Day one</h1>"
        "<p>We reached the <b>ridge</b> at dusk.</p><ul><li>tent</li><li>stove</li></ul>"
        "<!-- hidden comment --></body></html>"
    )
    text = html_to_text(markup)
    assert text.startswith("Trip & notes\n\n")
    assert "Day one" in text and "We reached the ridge at dusk." in text
    assert "tent\n" in text and "stove" in text
    assert "secret" not in text and "color" not in text and "hidden" not in text


def test_pdf_loader_reads_every_page(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", ["First page about moraines", "Second page (fjords)"])
    text = load_document("pdf", pdf.read_bytes())
    assert "First page about moraines" in text and "Second page (fjords)" in text


# -- ingest --------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "code").mkdir(parents=True)
    (root / "notes.txt").write_text("Basecamp checklist: tent, stove, rope.\r\n" + PARAGRAPH)
    (root / "guide.md").write_text("# Guide\n\nThe **aurora** appears over the fjord.\n")
    (root / "page.html").write_text("<html><body><p>Reindeer migrate in spring.</p></body></html>")
    write_pdf(root / "report.pdf", ["Avalanche report: slab danger high above 2000 m"])
    (root / "code" / "walk.py").write_text("def haversine_distance(a, b):\n    return 0.0\n")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")  # unsupported type
    (root / ".hidden.txt").write_text("should not be indexed")
    return root


def test_ingest_indexes_each_file_type_with_exact_offsets(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    summary = ingest([corpus], index_dir)
    assert (summary.added, summary.updated, summary.removed) == (5, 0, 0)
    assert summary.unsupported == 1 and summary.skipped == []
    chunks = chunks_of(index_dir)
    assert sorted(Path(p).name for p in chunks) == [
        "guide.md",
        "notes.txt",
        "page.html",
        "report.pdf",
        "walk.py",
    ]
    notes = str(corpus / "notes.txt")
    raw = (corpus / "notes.txt").read_bytes().decode("utf-8")
    for start, end, text in chunks[notes]:
        assert raw[start:end] == text  # offsets index the file's text, CRLF kept
    with open_index(index_dir) as index:
        assert index.search("avalanche slab", 1)[0].path.endswith("report.pdf")
        assert index.search("reindeer", 1)[0].path.endswith("page.html")
        assert index.search("haversine_distance", 1)[0].path.endswith("walk.py")


def test_reingest_skips_unchanged_replaces_changed_drops_deleted(
    corpus: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    ingest([corpus], index_dir)
    before = chunks_of(index_dir)

    again = ingest([corpus], index_dir)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 5, 0)
    assert again.chunks == 0 and chunks_of(index_dir) == before

    # Same content, new mtime: hashed, found identical, not rewritten.
    os.utime(corpus / "guide.md", ns=(1, 1))
    touched = ingest([corpus], index_dir)
    assert touched.unchanged == 5 and touched.chunks == 0

    (corpus / "guide.md").write_text("# Guide\n\nThe northern lights shimmer over the sound.\n")
    (corpus / "page.html").unlink()
    (corpus / "new.txt").write_text("Crampons grip on hard ice.")
    changed = ingest([corpus], index_dir)
    assert (changed.added, changed.updated, changed.unchanged, changed.removed) == (1, 1, 3, 1)
    after = chunks_of(index_dir)
    assert str(corpus / "page.html") not in after
    assert "northern lights" in after[str(corpus / "guide.md")][0][2]
    with open_index(index_dir) as index:
        assert index.search("aurora", 5) == []  # the old text left the full-text index too
        assert index.search("reindeer", 5) == []
        assert index.counts()["documents"] == 5


def test_ingesting_one_folder_leaves_another_alone(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.txt").write_text("alpha document")
    (b / "y.txt").write_text("beta document")
    index_dir = tmp_path / "index"
    ingest([a], index_dir)
    summary = ingest([b], index_dir)
    assert summary.removed == 0
    with open_index(index_dir) as index:
        assert index.counts()["documents"] == 2
    # A whole ingested folder deleted: its documents go when it is named again.
    (a / "x.txt").unlink()
    a.rmdir()
    gone = ingest([a], index_dir)
    assert gone.removed == 1
    with open_index(index_dir) as index:
        assert index.counts()["documents"] == 1


def test_binary_and_unreadable_files_are_skipped_with_warnings(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.txt").write_text("A perfectly good note about ice axes.")
    (root / "nul.txt").write_bytes(b"text\x00with NUL bytes")
    (root / "latin1.md").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n%%EOF")
    warnings: list[str] = []
    summary = ingest([root], tmp_path / "index", warn=warnings.append)
    assert summary.added == 1
    reasons = dict(summary.skipped)
    assert set(reasons) == {str(root / n) for n in ("nul.txt", "latin1.md", "broken.pdf")}
    assert "binary" in reasons[str(root / "nul.txt")]
    assert "not UTF-8" in reasons[str(root / "latin1.md")]
    assert "PDF" in reasons[str(root / "broken.pdf")]
    assert len(warnings) == 3 and all(w.startswith("skipped ") for w in warnings)
    assert "3 skipped" in summary.line()


def test_changed_chunk_settings_rechunk(corpus: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    ingest([corpus], index_dir, chunk_tokens=200)
    rechunked = ingest([corpus], index_dir, chunk_tokens=16, overlap=4)
    assert rechunked.updated == 5
    notes = chunks_of(index_dir)[str(corpus / "notes.txt")]
    assert len(notes) > 3
    # The index remembers its settings: a plain re-ingest changes nothing.
    assert ingest([corpus], index_dir).unchanged == 5


def test_default_index_lives_in_the_user_data_dir(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("a note on snow bridges")
    ingest([tmp_path / "n.txt"])
    assert default_index_dir() == data_dir / "index"
    assert (data_dir / "index" / "index.sqlite3").is_file()
    with open_index() as index:
        assert index.search("snow bridges", 1)[0].path == str(tmp_path / "n.txt")


# -- CLI -----------------------------------------------------------------------------


def test_cli_ingest_reports_summary_warnings_and_progress(
    corpus: Path, tmp_path: Path, capsys
) -> None:
    (corpus / "bin.txt").write_bytes(b"\x00\x01\x02")
    index_dir = tmp_path / "index"
    proc = cli("ingest", str(corpus), "--index", str(index_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("5 added, 0 updated, 0 unchanged, 0 removed, 1 skipped")
    assert "1 not supported" in proc.stdout
    assert f"warning: skipped {corpus / 'bin.txt'}: binary file" in proc.stderr
    assert "Ingesting..." in proc.stderr  # the progress display, plain when not a TTY
    again = run_cli(capsys, "ingest", str(corpus), "--index", str(index_dir))
    assert again.stdout.startswith("0 added, 0 updated, 5 unchanged")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/folder"], "cannot ingest '/no/such/folder': no such file or directory"),
        (["{corpus}", "--chunk-tokens", "20", "--overlap", "15"], "overlap must be between"),
        (["{corpus}", "--chunk-tokens", "0"], "expected a number >= 1"),
    ],
)
def test_cli_ingest_bad_input_exits_2(
    corpus: Path, tmp_path: Path, args: list[str], message: str, capsys
) -> None:
    args = [a.replace("{corpus}", str(corpus)) for a in args]
    proc = run_cli(capsys, "ingest", *args, "--index", str(tmp_path / "index"))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_failed_first_ingest_creates_nothing(data_dir: Path, tmp_path: Path, capsys) -> None:
    """No empty index is left behind, so `search` says there is no index (exit 2)."""
    nested = tmp_path / "new" / "index"
    for index_args in ([], ["--index", str(nested)]):
        proc = run_cli(capsys, "ingest", str(tmp_path / "does-not-exist"), *index_args)
        assert proc.returncode == 2 and "no such file or directory" in proc.stderr
    assert not default_index_dir().exists() and not (tmp_path / "new").exists()
    proc = run_cli(capsys, "search", "anything")
    assert proc.returncode == 2 and "no index at" in proc.stderr
    # A failure after the index was made (bad chunk settings) removes it too.
    (tmp_path / "a.txt").write_text("some words")
    with pytest.raises(UserError, match="overlap"):
        ingest([tmp_path / "a.txt"], nested, chunk_tokens=20, overlap=15)
    assert not (tmp_path / "new").exists()
    # An existing index is never deleted by a failed ingest.
    ingest([tmp_path / "a.txt"], nested)
    with pytest.raises(UserError):
        ingest([tmp_path / "gone.txt"], nested)
    assert open_index(nested).search("words", 1)


def test_summary_line_counts() -> None:
    summary = IngestSummary(added=2, skipped=[("x", "binary")], chunks=7, bytes_read=2**20)
    summary.seconds = 0.5
    assert summary.line() == (
        "2 added, 0 updated, 0 unchanged, 0 removed, 1 skipped; 7 chunks written "
        "(1.0 MB in 0.5 s, 2.0 MB/s)"
    )
    assert json.loads(json.dumps(summary.skipped)) == [["x", "binary"]]
