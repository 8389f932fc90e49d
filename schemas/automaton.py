"""Token automaton of a regex, and each state's distance to the end of the output.

This module only imports outlines-core, so a compile worker process can run it without
loading MLX or transformers.

End of output: outlines-core drops transitions out of states where the regex has already
matched, so the index is built for `(?:R)\\x00` with a pseudo token (`end_id`) spelling
the NUL byte. States where R is complete are exactly those that allow `end_id`; the
decoder maps it to the model's end-of-sequence token. The model's own NUL-byte token is
left out of the vocabulary (no JSON text contains a raw NUL).

Distances: `distance[s]` is an upper bound on the tokens needed to finish from state `s`,
counting the end-of-sequence token. With small vocabularies it is exact (shortest path
over all token transitions); otherwise it is the shortest path over single-byte tokens,
which every byte-level vocabulary has. Either way it is *consistent* (some allowed token
leads to a state at distance exactly one less), which is what the decoder needs to
guarantee finishing within budget.
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from dataclasses import dataclass

from outlines_core import Index, Vocabulary

EXACT_DISTANCE_MAX_VOCAB = 8192


@dataclass
class Automaton:
    """A compiled index with distances; pickled into the grammar cache."""

    index: Index
    end_id: int
    distance: dict[int, int]
    complete_states: frozenset[int]  # states where the end token is allowed
    exact: bool
    build_ms: float

    @property
    def initial_state(self) -> int:
        return self.index.get_initial_state()

    def max_distance(self) -> int:
        return max(self.distance.values())


def build_vocabulary(tokens: dict[bytes, list[int]], end_id: int, eos_id: int) -> Vocabulary:
    table = {b: list(ids) for b, ids in tokens.items() if b and b"\x00" not in b}
    table[b"\x00"] = [end_id]
    return Vocabulary(eos_id, table)


def build_automaton(
    regex: str,
    vocabulary: Vocabulary,
    end_id: int,
    byte_ids: list[int | None],
    vocab_size: int,
) -> Automaton:
    """Compile `regex` over `vocabulary` and compute distances to the end."""
    t0 = time.perf_counter()
    index = Index(f"(?:{regex})\\x00", vocabulary)
    initial = index.get_initial_state()
    if vocab_size <= EXACT_DISTANCE_MAX_VOCAB:
        distance, complete = _exact_distances(index, end_id)
        exact = True
    else:
        distance, complete = _byte_distances(index, end_id, byte_ids)
        exact = False
    if initial not in distance:
        raise ValueError("no transitions: the grammar accepts no output")
    return Automaton(
        index=index,
        end_id=end_id,
        distance=distance,
        complete_states=frozenset(complete),
        exact=exact,
        build_ms=(time.perf_counter() - t0) * 1000,
    )


def _exact_distances(index: Index, end_id: int) -> tuple[dict[int, int], set[int]]:
    transitions = index.get_transitions()
    reverse: dict[int, list[int]] = {}
    complete: set[int] = set()
    for state, edges in transitions.items():
        for token, target in edges.items():
            if token == end_id:
                complete.add(state)
            else:
                reverse.setdefault(target, []).append(state)
    return _backward_bfs(reverse, complete), complete


def _byte_distances(
    index: Index, end_id: int, byte_ids: list[int | None]
) -> tuple[dict[int, int], set[int]]:
    ids = [t for t in byte_ids if t is not None]
    reverse: dict[int, list[int]] = {}
    complete: set[int] = set()
    seen = {index.get_initial_state()}
    queue = deque(seen)
    while queue:
        state = queue.popleft()
        if index.get_next_state(state, end_id) is not None:
            complete.add(state)
        for token in ids:
            target = index.get_next_state(state, token)
            if target is None:
                continue
            reverse.setdefault(target, []).append(state)
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return _backward_bfs(reverse, complete), complete


def _backward_bfs(reverse: dict[int, list[int]], complete: set[int]) -> dict[int, int]:
    distance = dict.fromkeys(complete, 1)
    queue = deque(complete)
    while queue:
        state = queue.popleft()
        d = distance[state] + 1
        for source in reverse.get(state, ()):
            if source not in distance:
                distance[source] = d
                queue.append(source)
    return distance


def worker_build(
    regex: str,
    vocabulary_blob: bytes,
    end_id: int,
    byte_ids: list[int | None],
    vocab_size: int,
) -> bytes:
    """Entry point for the compile worker: returns the pickled Automaton."""
    vocabulary = _cached_vocabulary(vocabulary_blob)
    return pickle.dumps(build_automaton(regex, vocabulary, end_id, byte_ids, vocab_size))


_VOCAB_CACHE: dict[int, Vocabulary] = {}


def _cached_vocabulary(blob: bytes) -> Vocabulary:
    key = hash(blob)
    if key not in _VOCAB_CACHE:
        _VOCAB_CACHE.clear()
        _VOCAB_CACHE[key] = pickle.loads(blob)
    return _VOCAB_CACHE[key]


def _read_exact(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def worker_serve(requests, replies) -> None:  # pragma: no cover - runs in the worker
    """Serve length-prefixed pickled build requests until the input closes."""
    while True:
        try:
            size = int.from_bytes(_read_exact(requests, 8), "little")
            request = pickle.loads(_read_exact(requests, size))
        except EOFError:
            return
        reply: tuple[str, object]
        try:
            reply = ("ok", worker_build(*request))
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        blob = pickle.dumps(reply)
        replies.write(len(blob).to_bytes(8, "little") + blob)
        replies.flush()


if __name__ == "__main__":  # pragma: no cover - the compile worker process
    import os
    import sys

    # Replies go on a private copy of stdout; anything a library prints goes to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Serve from the module under its real name so pickles name schemas.automaton.
    from schemas.automaton import worker_serve as serve

    serve(sys.stdin.buffer, replies)
