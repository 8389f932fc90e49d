"""Batched extraction on llama.cpp: the pieces decode as parallel sequences of one
llama.cpp context, each under its own grammar, with the tiny GGUF model (random
weights: a hot random walk is the worst case for the constraints).

With greedy sampling the batch writes exactly what one at a time writes: every row's
logits come from its own cells (the attention mask keeps the sequences apart) and
its prompt state is a copy of what the single path computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_docextract import HOT, ITEMS_SCHEMA, run_cli, validate
from test_docextract_batch import (
    GREEDY,
    PEOPLE,
    _docs,
    _in_flight,
    _records,
    add_and_drain,
    check_a_random_walk,
)

from agent.constrained.output_types import Regex
from agent.docextract import BatchProgress, Text, extract_many
from agent.errors import UserError
from agent.llamacpp import is_available
from agent.structured_batch import StructuredBatch
from schemas import shipped_schema

pytestmark = pytest.mark.skipif(
    not is_available(), reason='llama.cpp is not installed: pip install -e ".[llama-cpp]"'
)


@pytest.fixture(scope="module")
def gguf():
    from agent.llamacpp.models import load_llamacpp

    return load_llamacpp("tiny")


@pytest.fixture
def fresh_gguf(gguf):
    gguf.reset_cache()
    return gguf


@pytest.mark.parametrize("grounded", [False, True])
def test_greedy_batches_write_what_one_at_a_time_writes(fresh_gguf, grounded):
    options = dict(grounded=grounded, chunk_tokens=48, overlap=8, max_tokens=96, sampling=GREEDY)
    alone = list(extract_many(ITEMS_SCHEMA, _docs(), fresh_gguf, batch_size=1, **options))
    fresh_gguf.reset_cache()
    seen: list[BatchProgress] = []
    together = list(extract_many(ITEMS_SCHEMA, _docs(), fresh_gguf, batch_size=3,
                                 progress=seen.append, **options))  # fmt: skip
    assert _in_flight(seen) >= 3  # one at a time it would be 1
    assert [r.source for r in together] == [d.name for d in _docs()]
    assert together[1].chunks > 1  # the long one was split
    for result in together:
        assert result.error is None, result.error
        assert result.stats.engine == "llama.cpp"
        validate(ITEMS_SCHEMA, result.value)
    assert _records(together) == _records(alone)
    assert [r.generated_tokens for r in together] == [r.generated_tokens for r in alone]


def test_rows_reused_many_times_still_write_what_one_at_a_time_writes(fresh_gguf):
    """Two rows for nine documents: each sequence is cleared and refilled several
    times; a cell left behind would change the next row's attention and its output."""
    docs = [Text(f"{n} lives in {c}, note {i}.", f"d{i}")
            for i, (n, c) in enumerate(PEOPLE * 2 + PEOPLE[:1])]  # fmt: skip
    options = dict(max_tokens=64, sampling=GREEDY)
    alone = list(extract_many("contact", docs, fresh_gguf, batch_size=1, **options))
    fresh_gguf.reset_cache()
    together = list(extract_many("contact", docs, fresh_gguf, batch_size=2, **options))
    assert _records(together) == _records(alone)
    assert all(r.error is None for r in together)


@pytest.mark.parametrize("name", ["invoice", "items"])
def test_a_random_walk_in_a_batch_is_valid_and_grounded(fresh_gguf, name):
    check_a_random_walk(fresh_gguf, name)


def test_a_failing_request_fails_alone(fresh_gguf):
    """A row that cannot start (its budget is too small, its regex does not compile,
    its prompt is longer than the context or than a batch row) fails alone; the others
    decode side by side and finish."""
    schema = shipped_schema("contact")
    requests = {
        "ok1": ("Ann Lee lives in Oslo.", schema, 96),
        "budget": ("Bo", schema, 2),
        "regex": ("Cy", Regex("(unclosed"), 16),
        "long": ("word " * fresh_gguf.context_length, schema, 96),
        "row": ("word " * 600, schema, 96),  # fits the context, not a 512-token row
        "ok2": ("Dee Khan, dee@example.com.", schema, 96),
    }
    with StructuredBatch(fresh_gguf, sampling=HOT, rows=4, row_tokens=512) as batch:
        done = add_and_drain(batch, requests)
    for key in ("ok1", "ok2"):
        assert done[key].error is None
        validate(schema, done[key].result.value)
        assert done[key].result.stats.generated_tokens <= 96
        assert done[key].result.stats.engine == "llama.cpp"
    assert "raise max_tokens" in str(done["budget"].error)
    assert isinstance(done["regex"].error, UserError)
    assert "shorten the prompt" in str(done["long"].error)
    assert "do not fit a batch row of 512 tokens; use --batch 1" in str(done["row"].error)


def test_a_batch_takes_no_more_rows_than_it_has(fresh_gguf):
    schema = shipped_schema("contact")
    with StructuredBatch(fresh_gguf, sampling=GREEDY, rows=2) as batch:
        for key in ("a", "b", "c"):
            batch.add(key, [{"role": "user", "content": f"{key} lives here."}], schema,
                      max_tokens=64)  # fmt: skip
        assert batch.active == 2
        done = {}
        while len(done) < 3:
            for item in batch.step():
                done[item.key] = item
    assert "every row of the batch is in use" in str(done["c"].error)
    for key in ("a", "b"):
        validate(schema, done[key].result.value)


def test_a_closed_batch_refuses_new_rows_and_a_new_one_works(fresh_gguf):
    """Closing frees the batch's llama.cpp context at once (not at garbage collection):
    a request added afterwards fails with a clear error instead of touching freed
    memory, closing twice is harmless, and the model goes on batching in a new one."""
    schema = shipped_schema("contact")
    batch = StructuredBatch(fresh_gguf, sampling=GREEDY, rows=2)
    batch.close()
    batch.close()
    batch.add("late", [{"role": "user", "content": "Ann lives here."}], schema, max_tokens=64)
    (item,) = batch.step()
    assert "this batch is closed" in str(item.error)
    with StructuredBatch(fresh_gguf, sampling=GREEDY, rows=2) as again:
        again.add("a", [{"role": "user", "content": "Ann lives here."}], schema, max_tokens=64)
        done = []
        while not done:
            done = again.step()
    validate(schema, done[0].result.value)


def test_the_prompt_prefix_is_cached_for_batched_rows(fresh_gguf):
    docs = [Text(f"Note {i}: Maria Rossi of Acme called from Rome about order {i}.", f"d{i}")
            for i in range(4)]  # fmt: skip
    results = list(extract_many("contact", docs, fresh_gguf, max_tokens=64, batch_size=4))
    assert results[0].cached_prompt_tokens == 0
    # llama.cpp's attention cache rewinds: later rows start from the shared prefix.
    assert all(r.cached_prompt_tokens > r.prompt_tokens // 2 for r in results[1:])


def test_cli_batch_on_llama_cpp_writes_the_lines_of_one_at_a_time(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, (name, city) in enumerate(PEOPLE):
        (folder / f"n{i}.txt").write_text(f"{name} lives in {city}, day {i}.", "utf-8")
    (folder / "n9.pdf").write_bytes(b"%PDF-1.4 garbage")
    schema = tmp_path / "items.json"
    schema.write_text(json.dumps(ITEMS_SCHEMA), "utf-8")
    common = ["extract", "--schema", str(schema), "--model", "tiny", "--engine", "llama.cpp",
              str(folder), "--grounded", "--max-tokens", "96", "--temp", "0"]  # fmt: skip
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    first = run_cli(*common, "--out", str(one), "--batch", "1")
    second = run_cli(*common, "--out", str(many), "--batch", "3")
    for proc in (first, second):
        assert proc.returncode == 2, proc.stderr  # the PDF failed, the others were done
        assert "Traceback" not in proc.stderr
        assert "1 of 5 documents could not be extracted" in proc.stderr
        assert "one part at a time" not in proc.stderr
    lines = many.read_text("utf-8").splitlines()
    assert lines == one.read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [Path(r["source"]).name for r in records] == [f"n{i}.txt" for i in range(4)] + ["n9.pdf"]
    for record in records[:4]:
        validate(ITEMS_SCHEMA, record["value"])


def test_by_default_llama_cpp_takes_pieces_one_at_a_time(fresh_gguf, tiny):
    # Batching measured no faster on llama.cpp (BENCHMARKS.md): its default is 1, MLX's 8.
    options = dict(chunk_tokens=48, overlap=8, max_tokens=48, sampling=GREEDY)
    seen: list[BatchProgress] = []
    list(extract_many(ITEMS_SCHEMA, _docs(), fresh_gguf, progress=seen.append, **options))
    assert _in_flight(seen) == 1
    tiny.reset_cache()
    seen = []
    list(extract_many(ITEMS_SCHEMA, _docs(), tiny, progress=seen.append, **options))
    assert _in_flight(seen) > 1
