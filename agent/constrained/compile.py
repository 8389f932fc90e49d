"""Compiling regexes to grammars: in-memory and on-disk caches, and a timeout.

Index construction runs in Rust without yielding, so a thread cannot stop it; it runs in
a persistent worker process instead, which is killed (and restarted on the next call)
when a compile exceeds its timeout. Results are cached in memory and on disk, keyed by
the regex, the vocabulary and the outlines-core version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from agent.constrained.defaults import DEFAULT_COMPILE_TIMEOUT
from agent.constrained.grammar import CompiledGrammar
from agent.constrained.vocabulary import GrammarVocabulary
from agent.paths import cache_dir, write_atomic
from schemas.automaton import Automaton, _read_exact
from schemas.errors import SchemaCompileError, UnsatisfiableSchemaError

_FORMAT_VERSION = "1"
_MEMORY_ENTRIES = 64
log = logging.getLogger(__name__)


class GrammarCompileTimeout(SchemaCompileError):
    """Building the automaton took longer than the compile timeout."""


@dataclass(frozen=True)
class CompileInfo:
    milliseconds: float
    cached: bool  # from the memory or the disk cache


class _Worker:
    """One long-lived process that builds automata; replaced after a timeout.

    It is a plain `python -m schemas.automaton` subprocess speaking length-prefixed
    pickles on its stdin/stdout, not a multiprocessing child: spawn-style children
    re-import the caller's main module, which breaks user scripts without a
    `__main__` guard.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def _start(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "schemas.automaton"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
        self._process = None

    def _crashed(self) -> SchemaCompileError:
        process = self._process
        self._stop()  # reaps it: its own exit code, or -9 if it had hung on a closed pipe
        code = process.returncode if process is not None else None
        log.warning("the grammar compile worker died (exit code %s); it restarts", code)
        return SchemaCompileError(
            "the grammar compiler crashed (out of memory?); simplify the schema"
        )

    def build(self, request: tuple, timeout: float) -> bytes:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                if self._process is not None:
                    log.info("the grammar compile worker had exited (%s): restarted",
                             self._process.returncode)  # fmt: skip
                self._stop()
                self._start()
            process = self._process
            assert process is not None and process.stdin and process.stdout
            blob = pickle.dumps(request)
            try:
                process.stdin.write(len(blob).to_bytes(8, "little") + blob)
                process.stdin.flush()
            except OSError:
                raise self._crashed() from None
            ready, _, _ = select.select([process.stdout], [], [], timeout)
            if not ready:
                log.info("a grammar compile exceeded %g s: the worker is restarted", timeout)
                self._stop()
                raise GrammarCompileTimeout(
                    f"compiling the grammar took more than {timeout:g} s; simplify the "
                    "schema (fewer optional properties, smaller counts) or raise the timeout"
                )
            try:
                size = int.from_bytes(_read_exact(process.stdout, 8), "little")
                status, payload = pickle.loads(_read_exact(process.stdout, size))
            except (EOFError, OSError):
                raise self._crashed() from None
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


def _disk_path(key: str) -> Path | None:
    """Where an automaton is cached on disk; None when EDGE_AGENT_GRAMMAR_CACHE=off
    (benchmarks that time cold compiles)."""
    if os.environ.get("EDGE_AGENT_GRAMMAR_CACHE", "").lower() in ("off", "0", "no"):
        return None
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
    if path is not None and path.exists():
        try:
            automaton = pickle.loads(path.read_bytes())
            if not isinstance(automaton, Automaton):
                raise TypeError(f"it holds a {type(automaton).__name__}, not an automaton")
            cached = True
        except Exception as exc:  # a truncated, stale or foreign file: rebuild it
            log.warning("unreadable grammar cache file %s (%s): rebuilt", path, exc)
            automaton = None
    if automaton is None:
        request = (regex, vocab.blob, vocab.end_id, vocab.byte_ids, vocab.size)
        blob = _WORKER.build(request, timeout)
        automaton = pickle.loads(blob)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, blob)
    grammar = CompiledGrammar(automaton, vocab, regex)
    elapsed = (time.perf_counter() - t0) * 1000
    log.debug("grammar %s: %.1f ms (%s)", key[:12], elapsed, "disk cache" if cached else "built")
    with _MEMORY_LOCK:
        _MEMORY[key] = grammar
        while len(_MEMORY) > _MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)
    return grammar, CompileInfo(elapsed, cached)


def shutdown_worker() -> None:
    """Stop the automaton worker process (the next compile starts a new one): for
    measurements that count its memory once it has exited."""
    with _WORKER._lock:
        _WORKER._stop()


def clear_memory_cache() -> None:
    """Forget compiled grammars held in memory (the disk cache stays)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()
