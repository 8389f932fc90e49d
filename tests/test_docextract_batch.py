"""Batched extraction: several pieces decode as the rows of one batch (MLX; llama.cpp's
parallel sequences are in test_llamacpp_batch.py).

Each row keeps the guarantees of one-at-a-time decoding (valid output within
max_tokens, grounded strings verbatim), checked with the random-weight tiny model at a
high temperature, the worst case for the constraints. With greedy sampling the batch
writes exactly what one-at-a-time does: the rows' logits are the same numbers (padding
is masked out, and MLX's CPU kernels compute each row on its own).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_docextract import HOT, ITEMS_SCHEMA, TRICKY, assert_grounded, run_cli, validate

from agent.constrained.output_types import Regex
from agent.docextract import BatchProgress, Text, extract_many
from agent.errors import UserError
from agent.sampling import SamplingParams
from agent.structured_batch import StructuredBatch
from schemas import shipped_schema

GREEDY = SamplingParams(temperature=0.0)
PEOPLE = [("Ann", "Oslo"), ("Bo", "Rome"), ("Cy", "Nice"), ("Dee", "Lima")]


def _docs() -> list[Text]:
    """Documents of different lengths (their rows finish at different steps), one of
    them long enough to be split: its pieces share the batch with other documents."""
    docs = [Text(f"{n} lives in {c} and is {20 + i} years old.", f"short{i}")
            for i, (n, c) in enumerate(PEOPLE)]  # fmt: skip
    docs.insert(2, Text(TRICKY, "tricky"))
    long = "\n\n".join(f"Part {i}. " + " ".join(f"{n} moved to {c}." for n, c in PEOPLE)
                       for i in range(5))  # fmt: skip
    docs.insert(1, Text(long, "long"))
    return docs


def _in_flight(seen: list[BatchProgress]) -> int:
    """Pieces started before the first document finished (1: one at a time)."""
    first = next(i for i, p in enumerate(seen) if p.finished is not None)
    return sum(1 for p in seen[:first] if p.finished is None)


def add_and_drain(batch, requests: dict) -> dict:
    """Add every (text, output type, max_tokens) request, of which two start; step the
    batch until each has come out; the items by key (shared with the llama.cpp tests)."""
    for key, (text, output, max_tokens) in requests.items():
        batch.add(key, [{"role": "user", "content": text}], output, max_tokens=max_tokens)
    assert batch.active == 2  # the two that could start decode side by side
    done = {}
    while len(done) < len(requests):
        for item in batch.step():
            done[item.key] = item
    assert batch.active == 0
    return done


def _records(results) -> list[tuple]:
    return [(r.source, r.value, r.spans, r.chunks, r.notes, r.grounded, r.error)
            for r in results]  # fmt: skip


@pytest.mark.parametrize("grounded", [False, True])
def test_greedy_batches_write_what_one_at_a_time_writes(fresh_tiny, grounded):
    options = dict(grounded=grounded, chunk_tokens=48, overlap=8, max_tokens=96, sampling=GREEDY)
    alone = list(extract_many(ITEMS_SCHEMA, _docs(), fresh_tiny, batch_size=1, **options))
    fresh_tiny.reset_cache()
    seen: list[BatchProgress] = []
    together = list(extract_many(ITEMS_SCHEMA, _docs(), fresh_tiny, batch_size=3,
                                 progress=seen.append, **options))  # fmt: skip
    assert _in_flight(seen) >= 3  # one at a time it would be 1: short0 is one piece
    assert [r.source for r in together] == [d.name for d in _docs()]
    assert together[1].chunks > 1  # the long one was split
    for result in together:
        assert result.error is None, result.error
        validate(ITEMS_SCHEMA, result.value)
    assert _records(together) == _records(alone)
    assert [r.generated_tokens for r in together] == [r.generated_tokens for r in alone]


def check_a_random_walk(model, name: str) -> tuple[list, list[BatchProgress]]:
    """A hot random walk, 4 rows: every result valid and grounded, in source order,
    with 4 pieces in flight (shared with the llama.cpp batch tests)."""
    schema = ITEMS_SCHEMA if name == "items" else shipped_schema(name)
    seen: list[BatchProgress] = []
    results = list(
        extract_many(
            schema, _docs(), model, grounded=True, chunk_tokens=48, overlap=8,
            max_tokens=160, sampling=HOT, batch_size=4, progress=seen.append,
        )
    )  # fmt: skip
    assert [r.source for r in results] == [d.name for d in _docs()]
    for result in results:
        assert result.error is None, result.error
        validate(schema, result.value)
        assert_grounded(result, schema)
        assert result.generated_tokens > 0 and result.stats.finish_reason == "stop"
    assert _in_flight(seen) >= 4
    return results, seen


@pytest.mark.parametrize("name", ["invoice", "items"])
def test_a_random_walk_in_a_batch_is_valid_and_grounded(fresh_tiny, name):
    results, seen = check_a_random_walk(fresh_tiny, name)
    finished = [p for p in seen if p.finished is not None]
    assert [p.finished.source for p in finished] == [d.name for d in _docs()]
    assert [p.done for p in finished] == list(range(1, len(results) + 1))
    assert all(p.total == len(results) for p in seen)
    long_parts = {p.chunk for p in seen if p.source == "long" and p.finished is None}
    assert long_parts == set(range(1, results[1].chunks + 1))


def test_a_second_pass_in_a_batch_stays_valid(fresh_tiny):
    docs = _docs()[:3]
    results = list(extract_many(ITEMS_SCHEMA, docs, fresh_tiny, grounded=True, passes=2,
                                chunk_tokens=48, overlap=8, max_tokens=120, sampling=HOT,
                                batch_size=4))  # fmt: skip
    assert [r.source for r in results] == [d.name for d in docs]
    for result in results:
        assert result.error is None, result.error
        validate(ITEMS_SCHEMA, result.value)
        assert_grounded(result, ITEMS_SCHEMA)
        assert result.prompt_tokens > 0
        # Every piece was extracted twice: each pass's statistics are counted.
        assert result.generated_tokens >= 2 * result.chunks


def test_unreadable_documents_in_a_batch_do_not_spoil_their_neighbours(fresh_tiny, tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "empty.md").write_text("   \n", "utf-8")
    sources = [Text("Ann Lee, ann@example.com, Oslo."), tmp_path / "broken.pdf",
               Text("Bo Berg from Rome, call +39 06 1234.", "bo"), tmp_path / "missing.txt",
               tmp_path / "empty.md", Text("Cy Wei works at Kite Systems.", "cy")]  # fmt: skip
    results = list(extract_many("contact", sources, fresh_tiny, max_tokens=96, sampling=HOT,
                                batch_size=3))  # fmt: skip
    names = [Path(r.source).name for r in results]
    assert names == ["<text>", "broken.pdf", "bo", "missing.txt", "empty.md", "cy"]
    errors = dict(zip(names, (r.error for r in results), strict=True))
    assert "pdf" in errors["broken.pdf"].lower()
    assert "does not exist" in errors["missing.txt"]
    assert "no text" in errors["empty.md"]
    for result in results:
        if Path(result.source).name in ("<text>", "bo", "cy"):
            assert result.error is None, result.error
            validate(shipped_schema("contact"), result.value)


def test_the_prompt_prefix_is_cached_for_batched_rows(fresh_tiny):
    docs = [Text(f"Note {i}: Maria Rossi of Acme called from Rome about order {i}.", f"d{i}")
            for i in range(4)]  # fmt: skip
    results = list(extract_many("contact", docs, fresh_tiny, max_tokens=64, batch_size=4))
    # As one at a time: the third and later rows start from the shared prefix's checkpoint.
    assert [r.cached_prompt_tokens for r in results[:2]] == [0, 0]
    assert all(r.cached_prompt_tokens > r.prompt_tokens // 2 for r in results[2:])


def test_a_failing_request_fails_alone(fresh_tiny):
    """A batch row that cannot start (its budget is too small, its regex does not
    compile, its prompt is longer than the context) fails alone; the others finish."""
    schema = shipped_schema("contact")
    batch = StructuredBatch(fresh_tiny, sampling=HOT)
    too_long = "word " * fresh_tiny.context_length
    requests = {
        "ok1": ("Ann Lee lives in Oslo.", schema, 96),
        "budget": ("Bo", schema, 2),
        "regex": ("Cy", Regex("(unclosed"), 16),
        "long": (too_long, schema, 96),
        "ok2": ("Dee Khan, dee@example.com.", schema, 96),
    }
    done = add_and_drain(batch, requests)
    for key in ("ok1", "ok2"):
        assert done[key].error is None
        validate(schema, done[key].result.value)
        assert done[key].result.stats.generated_tokens <= 96
    assert "raise max_tokens" in str(done["budget"].error)
    assert isinstance(done["regex"].error, UserError)
    assert "shorten the prompt" in str(done["long"].error)


# ---------------------------------------------------------------------- the CLI
def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, (name, city) in enumerate(PEOPLE):
        (folder / f"n{i}.txt").write_text(f"{name} lives in {city}, day {i}.", "utf-8")
    (folder / "n9.pdf").write_bytes(b"%PDF-1.4 garbage")
    return folder


def test_cli_batch_writes_the_lines_of_one_at_a_time_and_resumes(tmp_path):
    folder = _folder(tmp_path)
    schema = tmp_path / "items.json"
    schema.write_text(json.dumps(ITEMS_SCHEMA), "utf-8")
    common = ["extract", "--schema", str(schema), "--model", "tiny", str(folder), "--grounded",
              "--max-tokens", "96", "--temp", "0"]  # fmt: skip
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    first = run_cli(*common, "--out", str(one), "--batch", "1")
    second = run_cli(*common, "--out", str(many), "--batch", "3")
    for proc in (first, second):
        assert proc.returncode == 2, proc.stderr  # the PDF failed, the others were done
        assert "Traceback" not in proc.stderr
        assert "1 of 5 documents could not be extracted" in proc.stderr
    lines = many.read_text("utf-8").splitlines()
    assert lines == one.read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [Path(r["source"]).name for r in records] == [f"n{i}.txt" for i in range(4)] + ["n9.pdf"]
    for record in records[:4]:
        validate(ITEMS_SCHEMA, record["value"])
    # A rerun after a kill: two lines kept, one cut off; the rest is done again, batched.
    many.write_text("\n".join(lines[:2]) + '\n{"source": "cut', "utf-8")
    again = run_cli(*common, "--out", str(many), "--batch", "3")
    assert "resuming: 2 documents" in again.stderr
    assert many.read_text("utf-8").splitlines() == lines


def test_ctrl_c_in_a_batch_keeps_the_finished_lines_and_writes_the_page(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(16):  # two batches' worth: Ctrl+C lands while rows are decoding
        (folder / f"n{i:02d}.txt").write_text(f"Note {i}: Ann met Bo in Oslo on day {i}.", "utf-8")
    out, page = tmp_path / "out.jsonl", tmp_path / "page.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", "extract", "--schema", "contact", "--model",
         "tiny", str(folder), "--out", str(out), "--html", str(page), "--max-tokens", "96",
         "--batch", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_text("utf-8").count("\n") >= 1:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    lines = out.read_text("utf-8").splitlines()
    assert 1 <= len(lines) < 16
    records = [json.loads(line) for line in lines]  # every kept line is whole
    assert [Path(r["source"]).name for r in records] == [f"n{i:02d}.txt" for i in range(len(lines))]
    for record in records:
        validate(shipped_schema("contact"), record["value"])
    assert page.read_text("utf-8").count("<section") == len(lines)


def test_bad_batch_sizes_exit_2_with_one_line(capsys):
    from agent.cli.main import main

    base = ["extract", "--schema", "contact", "--model", "no-such-model", "--text", "x"]
    assert main([*base, "--batch", "65"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--batch must be at most 64" in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit) as exit_:  # argparse's own refusal
        main([*base, "--batch", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "expected a number >= 1, got 0" in err and len(err.splitlines()) == 1, err


def test_a_pass_is_as_long_as_keeps_half_its_positions_real():
    from agent.batch_runtime import fed_length

    assert fed_length([1, 1, 1]) == 1
    assert fed_length([3, 3, 1]) == 3  # 7 of 9 positions real
    assert fed_length([1, 1, 1, 12]) == 1  # the long run goes in over several passes
    assert fed_length([5, 2, 1, 1]) == 2  # 5 would be 9 of 20; 2 is 6 of 8
