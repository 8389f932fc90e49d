"""The regex grammar compiler under damage: a compile worker that dies mid-build, and
files in the on-disk grammar cache that are truncated, garbage or another object."""

from __future__ import annotations

import logging
import os
import pickle
import uuid
from functools import cached_property
from pathlib import Path

import pytest

from agent.constrained.compile import clear_memory_cache, compile_regex
from agent.constrained.target import target_for
from agent.constrained.vocabulary import GrammarVocabulary
from schemas.errors import SchemaCompileError


class _ExitOnLoad:
    """Unpickling this calls os._exit(3): the worker process dies mid-request."""

    def __reduce__(self):
        return (os._exit, (3,))


class _DeadlyVocabulary(GrammarVocabulary):
    """The model's vocabulary, sent to the worker as a pickle that kills it."""

    @cached_property
    def blob(self) -> bytes:
        return pickle.dumps(_ExitOnLoad())


@pytest.fixture
def vocab(tiny) -> GrammarVocabulary:
    return target_for(tiny).regex_vocabulary(tiny.eos_token_ids)


@pytest.fixture
def grammar_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EDGE_AGENT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGE_AGENT_GRAMMAR_CACHE", raising=False)
    return tmp_path / "cache" / "grammars"


def _regex() -> str:
    return rf'\{{"id":"{uuid.uuid4().hex}","n":(0|[1-9][0-9]{{0,3}})\}}'


def test_a_worker_that_dies_mid_compile_is_an_error_and_the_next_compile_works(vocab, caplog):
    caplog.set_level(logging.WARNING, logger="agent.constrained.compile")
    deadly = _DeadlyVocabulary(vocab.tokens, vocab.eos_ids, vocab.size, vocab.lookup)
    with pytest.raises(SchemaCompileError, match="the grammar compiler crashed"):
        compile_regex(_regex(), deadly, timeout=60)
    assert "exit code 3" in caplog.text  # the worker's own exit, from the log
    # A new worker serves the next compile.
    regex = _regex()
    grammar, info = compile_regex(regex, vocab, timeout=60)
    assert not info.cached and grammar.min_tokens() >= 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"\x00garbage" * 8, id="garbage"),
        pytest.param(lambda data: pickle.dumps({"not": "an automaton"}), id="another-object"),
    ],
)
def test_a_damaged_cache_file_is_rebuilt(vocab, grammar_dir, caplog, damage):
    caplog.set_level(logging.WARNING, logger="agent.constrained.compile")
    regex = _regex()
    clear_memory_cache()
    fresh, cold = compile_regex(regex, vocab, timeout=60)
    (path,) = grammar_dir.rglob("*.pkl")
    good = path.read_bytes()
    path.write_bytes(damage(good))

    clear_memory_cache()
    rebuilt, info = compile_regex(regex, vocab, timeout=60)
    assert not cold.cached and not info.cached  # the damaged file was not used
    assert rebuilt.min_tokens() == fresh.min_tokens()
    assert str(path) in caplog.text and "rebuilt" in caplog.text
    # The file was written again, whole: the next load comes from it.
    assert pickle.loads(path.read_bytes()).__class__ is pickle.loads(good).__class__
    clear_memory_cache()
    again, disk = compile_regex(regex, vocab, timeout=60)
    assert disk.cached and again.min_tokens() == fresh.min_tokens()
