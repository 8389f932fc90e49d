"""Compiling regexes to grammars: in-memory and on-disk caches, and a timeout.

Index construction runs in Rust without yielding, so a thread cannot stop it; it runs in
a persistent worker process instead, which is killed (and restarted on the next call)
when a compile exceeds its timeout. Results are cached in memory and on disk, keyed by
the regex, the vocabulary and the outlines-core version.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from agent.constrained.grammar import CompiledGrammar
from agent.constrained.vocabulary import GrammarVocabulary
from agent.paths import cache_dir
from schemas.errors import SchemaCompileError, UnsatisfiableSchemaError

DEFAULT_COMPILE_TIMEOUT = 30.0
_FORMAT_VERSION = "1"
_MEMORY_ENTRIES = 64


class GrammarCompileTimeout(SchemaCompileError):
    """Building the automaton took longer than the compile timeout."""


@dataclass(frozen=True)
class CompileInfo:
    milliseconds: float
    cached: bool  # from the memory or the disk cache


class _Worker:
    """One long-lived process that builds automata; replaced after a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn = None

    def _start(self) -> None:
        from schemas.automaton import worker_main

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker_main, args=(child,), daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def build(self, request: tuple, timeout: float) -> bytes:
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._stop()
                self._start()
            assert self._conn is not None
            self._conn.send(request)
            if not self._conn.poll(timeout):
                self._stop()
                raise GrammarCompileTimeout(
                    f"compiling the grammar took more than {timeout:g} s; simplify the "
                    "schema (fewer optional properties, smaller counts) or raise the timeout"
                )
            try:
                status, payload = self._conn.recv()
            except EOFError:
                self._stop()
                raise SchemaCompileError(
                    "the grammar compiler crashed (out of memory?); simplify the schema"
                ) from None
        if status != "ok":
            if "no transitions" in payload or "empty" in payload.lower():
                raise UnsatisfiableSchemaError(
                    "no output the tokenizer can spell satisfies this grammar"
                )
            raise SchemaCompileError(f"cannot compile the grammar: {payload[:300]}")
        return payload


_WORKER = _Worker()
_MEMORY: OrderedDict[str, CompiledGrammar] = OrderedDict()
_MEMORY_LOCK = threading.Lock()


def _key(regex: str, vocab: GrammarVocabulary) -> str:
    digest = hashlib.sha256()
    for part in (_FORMAT_VERSION, version("outlines-core"), vocab.fingerprint, regex):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def _disk_path(key: str) -> Path:
    return cache_dir() / "grammars" / key[:2] / f"{key}.pkl"


def compile_regex(
    regex: str,
    vocab: GrammarVocabulary,
    timeout: float = DEFAULT_COMPILE_TIMEOUT,
) -> tuple[CompiledGrammar, CompileInfo]:
    """The grammar for `regex` over `vocab`, from a cache when possible."""
    t0 = time.perf_counter()
    key = _key(regex, vocab)
    with _MEMORY_LOCK:
        grammar = _MEMORY.get(key)
        if grammar is not None:
            _MEMORY.move_to_end(key)
            return grammar, CompileInfo((time.perf_counter() - t0) * 1000, True)
    path = _disk_path(key)
    automaton = None
    cached = False
    if path.exists():
        try:
            automaton = pickle.loads(path.read_bytes())
            cached = True
        except Exception:  # a truncated or stale file: rebuild it
            automaton = None
    if automaton is None:
        request = (regex, vocab.blob, vocab.end_id, vocab.byte_ids, vocab.size)
        blob = _WORKER.build(request, timeout)
        automaton = pickle.loads(blob)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    grammar = CompiledGrammar(automaton, vocab, regex)
    with _MEMORY_LOCK:
        _MEMORY[key] = grammar
        while len(_MEMORY) > _MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)
    return grammar, CompileInfo((time.perf_counter() - t0) * 1000, cached)


def clear_memory_cache() -> None:
    """Forget compiled grammars held in memory (the disk cache stays)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()
