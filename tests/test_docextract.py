"""Extraction at document scale: folders, long documents, grounded spans, resume, review page.

The grounding guarantee is checked with the random-weight tiny model at a high
temperature: a random walk through the grammar. If every grounded string it writes is
verbatim in its source, any model's is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from agent.cli.main import main
from agent.constrained.grounded import grounded_leaf_pointers
from agent.docextract import Text, check_spans, extract_many
from agent.docextract.spans import leaves, resolve
from agent.sampling import SamplingParams
from schemas import shipped_schema

# Quotes, a backslash, a newline, a tab and non-ASCII: every JSON escape a cut could split.
TRICKY = (
    'Invoice "INV-7" from Café Ünïcode\\Ltd.\nBuyer: Bob; 3 × widgets at 4.50 EUR.\t'
    "Total 13.50, due 2026-01-02. Süß!"
)
ITEMS_SCHEMA = {
    "type": "object",
    "properties": {
        "people": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 40},
                    "city": {"type": "string"},
                    "age": {"type": "integer", "minimum": 0, "maximum": 120},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        },
        "topic": {"type": "string", "enum": ["work", "travel", "other"]},
    },
    "required": ["people", "topic"],
    "additionalProperties": False,
}
HOT = SamplingParams(temperature=1.5, top_p=1.0, min_p=0.0)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def assert_grounded(result, schema, ground_all=True) -> int:
    """Every grounded string is verbatim in the document at its recorded span."""
    pointers = grounded_leaf_pointers(schema, result.value, ground_all=ground_all)
    assert set(result.grounded) == pointers
    for pointer in pointers:
        value = resolve(result.value, pointer)
        assert value in result.text
        span = result.spans[pointer]
        if value:
            assert span is not None and result.text[span[0] : span[1]] == value, pointer
    assert check_spans(result) == []
    return len(pointers)


def validate(schema, value) -> None:
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        value
    )


@pytest.mark.parametrize("name", ["invoice", "product_review", "contact"])
def test_grounded_strings_are_quotes_even_with_random_weights(fresh_tiny, name):
    schema = shipped_schema(name)
    docs = [Text(TRICKY, f"doc{seed}") for seed in range(4)]
    grounded = 0
    for seed, result in enumerate(
        extract_many(schema, docs, fresh_tiny, grounded=True, max_tokens=160, sampling=HOT)
    ):
        assert result.error is None, result.error
        assert result.source == f"doc{seed}"
        validate(schema, result.value)
        grounded += assert_grounded(result, schema)
    assert grounded >= 4  # the schema's first required string, at least, in each document


def test_items_from_a_long_document_are_merged_with_document_offsets(fresh_tiny):
    people = [f"{n} lives in {c}." for n, c in [("Ann", "Oslo"), ("Bo", "Rome"), ("Cy", "Nice")]]
    text = "\n\n".join(f"Part {i}. " + " ".join(people) + " Weather was mild." for i in range(6))
    (result,) = extract_many(
        ITEMS_SCHEMA, [Text(text, "long")], fresh_tiny, grounded=True, chunk_tokens=40,
        overlap=8, max_tokens=120, sampling=HOT,
    )  # fmt: skip
    assert result.error is None and result.chunks > 2
    validate(ITEMS_SCHEMA, result.value)
    assert_grounded(result, ITEMS_SCHEMA)
    names = [json.dumps(p, sort_keys=True) for p in result.value["people"]]
    assert len(names) == len(set(names)) <= 4  # no repeats, cut at maxItems


def test_x_grounded_marks_one_property_only(fresh_tiny):
    schema = {
        "type": "object",
        "properties": {
            "quote": {"type": "string", "maxLength": 30, "x-grounded": True},
            "free": {"type": "string", "maxLength": 12},
        },
        "required": ["quote", "free"],
        "additionalProperties": False,
    }
    results = list(
        extract_many(schema, [Text(TRICKY, f"d{i}") for i in range(3)], fresh_tiny,
                     max_tokens=80, sampling=HOT)
    )  # fmt: skip
    for result in results:
        assert result.error is None
        assert result.grounded == ["/quote"]
        assert result.value["quote"] in TRICKY
        validate(schema, result.value)


def test_a_second_pass_is_told_what_the_first_found(fresh_tiny):
    text = "Ann lives in Oslo. Bo lives in Rome."
    seen = []
    (one,) = extract_many(ITEMS_SCHEMA, [Text(text)], fresh_tiny, grounded=True,
                          max_tokens=100, sampling=HOT)  # fmt: skip
    (two,) = extract_many(ITEMS_SCHEMA, [Text(text)], fresh_tiny, grounded=True, passes=2,
                          max_tokens=100, sampling=HOT, progress=seen.append)  # fmt: skip
    assert [(p.chunk, p.chunks) for p in seen if p.finished is None] == [(1, 1), (1, 1)]
    validate(ITEMS_SCHEMA, two.value)
    assert_grounded(two, ITEMS_SCHEMA)
    # The second prompt is the first plus what was found so far.
    assert two.prompt_tokens > 2 * one.prompt_tokens


def test_non_strings_are_aligned_after_the_fact(fresh_tiny):
    schema = {
        "type": "object",
        "properties": {"total": {"type": "number"}, "paid": {"type": "boolean"}},
        "required": ["total", "paid"],
    }
    (result,) = extract_many(schema, [Text("Total 13.50 EUR, paid.")], fresh_tiny, max_tokens=40)
    assert result.spans["/paid"] is None
    total = result.spans["/total"]
    if total is not None:  # a number is found by its spellings, as a whole token
        assert float(result.text[total[0] : total[1]].replace(",", ".")) == result.value["total"]


def test_unreadable_and_missing_documents_carry_their_error(fresh_tiny, tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "empty.md").write_text("   \n", "utf-8")
    sources = [tmp_path / "broken.pdf", tmp_path / "missing.txt", tmp_path / "empty.md",
               Text("Ann lives in Oslo.")]  # fmt: skip
    results = list(extract_many("contact", sources, fresh_tiny, max_tokens=96))
    errors = {Path(r.source).name: r.error for r in results}
    assert "broken PDF" in errors["broken.pdf"] or "pdf" in errors["broken.pdf"]
    assert "does not exist" in errors["missing.txt"]
    assert "no text" in errors["empty.md"]
    assert errors["<text>"] is None


def test_a_document_longer_than_the_context_is_split_to_fit():
    """llama.cpp lets the context be set small: the pieces follow from it alone."""
    from agent.llamacpp import is_available

    if not is_available():
        pytest.skip('llama.cpp is not installed: pip install -e ".[llama-cpp]"')
    from agent.llamacpp.models import load_llamacpp

    model = load_llamacpp("tiny", n_ctx=1024)
    text = " ".join(f"Item {i}: the widget number {i} costs {i}.50 EUR." for i in range(60))
    assert len(model.encode(text)) > model.context_length
    schema = shipped_schema("product_review")
    (result,) = extract_many(schema, [Text(text, "long")], model, grounded=True, max_tokens=96)
    assert result.error is None and result.chunks > 1
    validate(schema, result.value)
    assert_grounded(result, schema)
    assert result.cached_prompt_tokens > 0  # the instruction prefix came from the cache


# ---------------------------------------------------------------------- the CLI
def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(
        'Great phone, the "Pixel 9". Battery\\life is bad.\nI would buy it again.', "utf-8"
    )
    (folder / "b.html").write_text(
        "<html><body><h1>Review</h1><p>The Kindle Paperwhite is light &amp; sharp."
        "</p><script>x = 1</script></body></html>",
        "utf-8",
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    long = " ".join(f"Day {i}: the camera was good and the screen was sharp." for i in range(12))
    (folder / "long.md").write_text(long, "utf-8")
    return folder


def test_cli_folder_to_jsonl_with_grounded_spans_and_a_review_page(tmp_path):
    folder = _folder(tmp_path)
    out, page = tmp_path / "out.jsonl", tmp_path / "review.html"
    proc = run_cli(
        "extract", "--schema", "product_review", "--model", "tiny", str(folder), "--out",
        str(out), "--grounded", "--html", str(page), "--chunk-tokens", "64",
        "--max-tokens", "80", "--temp", "1.5",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr  # one document failed, the others were done
    assert "Traceback" not in proc.stderr
    assert "1 of 4 documents could not be extracted" in proc.stderr
    assert "ETA" in proc.stderr
    records = {Path(r["source"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(records) == ["a.txt", "b.html", "broken.pdf", "long.md"]
    assert "pdf" in records["broken.pdf"]["error"] and records["broken.pdf"]["value"] is None
    schema = shipped_schema("product_review")
    from agent.docextract.sources import load

    for name in ("a.txt", "b.html", "long.md"):
        record = records[name]
        assert record["error"] is None
        validate(schema, record["value"])
        text = load(folder / name).text
        assert record["grounded"] and "/product" in record["grounded"]
        for pointer in record["grounded"]:
            value, span = resolve(record["value"], pointer), record["spans"][pointer]
            assert value == "" or text[span[0] : span[1]] == value
        assert set(record["spans"]) == {p for p, _ in leaves(record["value"])}
    assert records["long.md"]["chunks"] > 1 and records["a.txt"]["chunks"] == 1
    assert "<script>" not in load(folder / "b.html").text  # HTML read as its text
    html = page.read_text("utf-8")
    assert "http://" not in html and "https://" not in html and "src=" not in html
    assert html.count("<section") == 4


class _Marks(HTMLParser):
    """The highlighted text of every span id, from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.rows: dict[str, str] = {}
        self.body: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = {k: v or "" for k, v in a.items()}
        if tag == "tr" and "data-span" in a:
            self.rows[a["data-span"]] = a["data-text"]
        if tag == "mark":
            self._open = (a.get("data-spans") or "").split()

    def handle_endtag(self, tag):
        if tag == "mark":
            self._open = []

    def handle_data(self, data):
        for sid in self._open:
            self.text[sid] = self.text.get(sid, "") + data


@pytest.mark.skipif(shutil.which("chromium") is None, reason="apt-get install chromium")
def test_review_page_in_a_headless_browser(fresh_tiny, tmp_path):
    from agent.docextract.review import ReviewItem, render

    items = []
    docs = [Text(TRICKY, "tricky"), Text("Ann <b>lives</b> in Oslo & Bo in Rome.", "html-ish")]
    for result in extract_many(ITEMS_SCHEMA, docs, fresh_tiny, grounded=True,
                               max_tokens=120, sampling=HOT):  # fmt: skip
        items.append(ReviewItem(result.source, result.text, result.value, result.spans,
                                grounded=tuple(result.grounded)))  # fmt: skip
    # An overlap and a nested span, drawn as segments.
    items.append(ReviewItem("overlap", "abcdef", {"a": "abcd", "b": "cdef", "c": "d"},
                            {"/a": [0, 4], "/b": [2, 6], "/c": [3, 4]}))  # fmt: skip
    items.append(ReviewItem("failed", "", None, {}, error="unreadable pdf file"))
    page = tmp_path / "review.html"
    page.write_text(render(items), "utf-8")
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    marks = _Marks()
    marks.feed(proc.stdout)
    spans = sum(1 for item in items for s in item.spans.values() if s is not None)
    assert marks.body.get("data-errors") == ""
    assert marks.body.get("data-check") == f"ok {spans}/{spans}"
    assert len(marks.rows) == spans
    for sid, expected in marks.rows.items():
        assert marks.text.get(sid) == expected, sid
    assert marks.text["d2-s0"] == "abcd" and marks.text["d2-s2"] == "d"


N_NOTES = 16


def test_cli_resumes_after_a_kill(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    # More documents than a batch (8 by default): the first ones are written while the
    # others still decode, so the kill lands between lines.
    for i in range(N_NOTES):
        (folder / f"n{i:02d}.txt").write_text(f"Note {i}: Ann met Bo in Oslo on day {i}.", "utf-8")
    out = tmp_path / "out.jsonl"
    args = ["extract", "--schema", items_json(tmp_path), "--model", "tiny", str(folder),
            "--out", str(out), "--max-tokens", "80"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_text("utf-8").count("\n") >= 1:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    before = out.read_text("utf-8").splitlines()
    assert 1 <= len(before) < N_NOTES
    with out.open("a", encoding="utf-8") as f:
        f.write('{"source": "' + str(folder / "n15.txt"))  # a line cut off by the kill
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {len(before)} documents" in again.stderr
    after = out.read_text("utf-8").splitlines()
    assert after[: len(before)] == before  # kept as they were, not done again
    assert sorted(Path(json.loads(line)["source"]).name for line in after) == [
        f"n{i:02d}.txt" for i in range(N_NOTES)
    ]


def items_json(tmp_path: Path) -> str:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(ITEMS_SCHEMA), "utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer", "x-grounded": True}}},
         "not a plain string"),
        ({"anyOf": [{"type": "string", "x-grounded": True}, {"type": "integer"}]},
         "cannot be honoured"),
        ({"type": "object", "properties": {"s": {"type": "string", "x-grounded": "yes"}}},
         "must be true or false"),
    ],
)  # fmt: skip
def test_misplaced_x_grounded_is_a_one_line_schema_error(tmp_path, capsys, schema, needle):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema), "utf-8")
    assert main(["extract", "--schema", str(path), "--model", "tiny", "--text", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_cli_one_document_prints_the_value_and_the_grounded_flag_works(tmp_path):
    source = tmp_path / "note.md"
    source.write_text(TRICKY, "utf-8")
    proc = run_cli("extract", "--schema", "invoice", "--model", "tiny", str(source),
                   "--grounded", "--max-tokens", "200", "--temp", "1.5")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout)
    validate(shipped_schema("invoice"), value)
    assert value["invoice_number"] in TRICKY
    for item in value["line_items"]:
        assert item["description"] in TRICKY


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--regex", "[a-z]+", "--grounded", "--text", "x"], "need --schema"),
        (["--schema", "contact", "--text", "x", "--overlap", "900"], "--overlap must be"),
        (["--schema", "contact", "--text", "x", "--chunk-tokens", "8"], "at least 16"),
        (["--schema", "contact", "examples", "--out", "o.jsonl", "--indent", "2"], "--indent"),
        (["--schema", "contact", "examples", "--out", "/no/such/dir/o.jsonl"], "does not exist"),
    ],
)
def test_bad_batch_flags_exit_2_with_one_line_before_loading(capsys, args, needle):
    assert main(["extract", "--model", "no-such-model-needed", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_batch_example_quotes_every_name_from_its_document(tmp_path):
    example = Path(__file__).parents[1] / "examples" / "extract_batch.py"
    page = tmp_path / "page.html"
    proc = subprocess.run(
        [sys.executable, str(example), "--grounded", "--html", str(page), "--max-tokens", "96",
         "--batch", "3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    documents = Path(__file__).parents[1] / "examples" / "documents"
    assert proc.stdout.count("== ") == 3
    from agent.docextract.sources import load

    for block in proc.stdout.split("== ")[1:]:
        source, *lines = block.splitlines()
        assert Path(source).parent == documents
        name = next(line for line in lines if line.strip().startswith("/name = "))
        assert "not in the text" not in name  # grounded: always found
        value = eval_repr(name.split(" = ", 1)[1].rsplit(" (chars", 1)[0])
        assert value in load(Path(source)).text
    assert page.read_text("utf-8").count("<section") == 3


def eval_repr(text: str) -> str:
    """A Python string literal as printed by repr() (json reads the double-quoted ones)."""
    import ast

    return ast.literal_eval(text)


def test_the_instruction_prefix_is_cached_across_documents(fresh_tiny):
    """LFM2's cache cannot be rewound: the shared prefix is kept as a checkpoint."""
    docs = [Text(f"Note {i}: Maria Rossi of Acme called from Rome about order {i}.", f"d{i}")
            for i in range(3)]  # fmt: skip
    results = list(extract_many("contact", docs, fresh_tiny, max_tokens=64))
    # The first two prefill everything (the second keeps a copy at the shared prefix).
    assert [r.cached_prompt_tokens for r in results[:2]] == [0, 0]
    result = results[2]
    assert result.error is None
    validate(shipped_schema("contact"), result.value)
    # The instruction and schema (most of the prompt) came from the checkpoint.
    assert result.cached_prompt_tokens > result.prompt_tokens // 2


def test_a_pydantic_model_as_the_schema(fresh_tiny):
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        city: str
        age: int

    (result,) = extract_many(Person, [Text(TRICKY)], fresh_tiny, grounded=True,
                             max_tokens=96, sampling=HOT)  # fmt: skip
    assert result.error is None
    person = Person.model_validate(result.value)
    assert person.name in TRICKY and person.city in TRICKY
    assert set(result.grounded) == {"/name", "/city"}
    assert check_spans(result) == []


def test_a_server_model_extracts_with_spans_but_cannot_ground():
    from openai_stub import StubReply, StubServer, running

    from agent.engines.remote import RemoteChatModel
    from agent.errors import UserError

    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "city": {"type": "string"}},
        "required": ["name", "city"],
    }
    text = "Call Maria Rossi tomorrow about the order."
    reply = StubReply(text='{"name": "Maria Rossi", "city": "Paris"}')
    with running(StubServer([reply])) as stub:
        model = RemoteChatModel(stub.url, "stub")
        (result,) = extract_many(schema, [Text(text)], model)
        with pytest.raises(UserError, match="need a local model"):
            list(extract_many(schema, [Text(text)], model, grounded=True))
    assert result.value == {"name": "Maria Rossi", "city": "Paris"}
    assert result.spans == {"/name": [5, 16], "/city": None}  # Paris is not in the text
    assert result.grounded == []
