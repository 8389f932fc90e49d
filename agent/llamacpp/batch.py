"""llama.cpp's half of a batch (`agent.batch_runtime.RowEngine`): rows as the parallel
sequences of one llama.cpp context.

The batch gets its own context on the model's weights (no second copy of them), with
one sequence per row in one unified attention buffer of `rows x row_tokens` cells (a
row's cells may sit anywhere in it; the attention mask keeps rows apart). A row is
prefilled through the model's own context and prompt cache, exactly as one at a time
(the instruction and schema that open every extraction prompt are evaluated once), then
its sequence state is copied into a free sequence of the batch context
(`llama_state_seq_get_data` / `set_data`: attention cells or LFM2's recurrent state
alike). Each step is one `llama_decode` holding every row's pending tokens (its sampled
token and any forced run after it), logits asked only at each row's last token. A
finished row's sequence is cleared and reused.

Masks and draws are the single path's (`agent.np_sampling` on each row's logits), so a
row keeps the single path's guarantees token for token.
"""

from __future__ import annotations

import ctypes
import time
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from agent.batch_runtime import BatchRow, Draw, RowStart
from agent.errors import UserError
from agent.llamacpp.runtime import LlamaCppModel, close_at_exit
from agent.np_sampling import NumpySampler, apply_bias
from agent.sampling import SamplingParams
from agent.token_runtime import RESAMPLES, Prompt

BATCH_TOKENS = 512  # most tokens one pass feeds (over every row)
CELL_ALIGN = 256  # llama.cpp pads a context's size to this many cells


class LlamaCppRows:
    """A llama.cpp context of `rows` sequences of `row_tokens` cells each."""

    def __init__(
        self,
        model: LlamaCppModel,
        sampling: SamplingParams,
        *,
        rows: int,
        row_tokens: int | None = None,
    ) -> None:
        import llama_cpp

        if rows < 1:
            raise ValueError(f"a batch needs at least one row, got {rows}")
        self._lib = llama_cpp
        self.model = model
        self._sampler = NumpySampler(sampling)
        self._width = int(model.llm.n_vocab())
        per_row = min(row_tokens or model.context_length, model.context_length)
        per_row = -(-per_row // CELL_ALIGN) * CELL_ALIGN
        self.row_tokens = per_row
        self._batch_tokens = max(BATCH_TOKENS, rows)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = rows * per_row
        params.n_batch = self._batch_tokens
        params.n_ubatch = self._batch_tokens
        params.n_seq_max = rows
        # One attention buffer for every sequence: a sequence's saved state carries its
        # context's stream count, and the model's context has one stream.
        params.kv_unified = True
        # A sequence's saved state has the layout of its context (V transposed or not):
        # the batch context must lay its cells out as the model's does.
        params.flash_attn_type = model.llm.context_params.flash_attn_type
        params.type_k = model.llm.context_params.type_k
        params.type_v = model.llm.context_params.type_v
        decode, batch = model.threads_for(1)
        params.n_threads = decode
        params.n_threads_batch = batch
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model.llm.model, params)
        if not ctx:
            raise UserError(
                f"llama.cpp could not make a context of {rows} rows x {per_row} tokens for "
                f"{model.name}; use a smaller --batch"
            )
        self._ctx: Any = ctx
        self._batch = llama_cpp.llama_batch_init(self._batch_tokens, 0, 1)
        self._memory = llama_cpp.llama_get_memory(ctx)
        self._threads = (decode, batch)
        self._free_seqs = list(range(rows - 1, -1, -1))  # popped from the end: 0 first
        self._seqs: list[int] = []  # per joined row
        self._positions: list[int] = []  # per joined row: tokens its sequence holds
        self._limits: list[int] = []  # per joined row: cells it may use
        self._closer = weakref.finalize(self, _free, llama_cpp, ctx, self._batch)
        close_at_exit(self)

    # ------------------------------------------------------------- RowEngine
    def prefill(self, prompt: Prompt, max_tokens: int) -> RowStart:
        self._check_open()
        if not self._free_seqs:
            raise RuntimeError("every row of the batch is in use")
        start = self.model.prefill(prompt)
        needed = len(start.tokens) + max_tokens
        if needed > self.row_tokens:
            raise UserError(
                f"the prompt ({len(start.tokens)} tokens) and max_tokens ({max_tokens}) do "
                f"not fit a batch row of {self.row_tokens} tokens; use --batch 1"
            )
        return RowStart(start.tokens, start.cached, start.logits, start.seconds)

    def join(self, start: RowStart) -> None:
        """Copy the prompt's sequence from the model's context into a free row."""
        self._check_open()
        lib = self._lib
        source = self.model.llm.ctx
        size = int(lib.llama_state_seq_get_size(source, 0))
        buffer = (ctypes.c_uint8 * size)()
        written = int(lib.llama_state_seq_get_data(source, buffer, size, 0))
        seq = self._free_seqs.pop()
        lib.llama_memory_seq_rm(self._memory, seq, -1, -1)
        if written == 0 or not lib.llama_state_seq_set_data(self._ctx, buffer, written, seq):
            self._free_seqs.append(seq)
            raise RuntimeError("llama.cpp could not copy a prompt into the batch")
        self._seqs.append(seq)
        self._positions.append(len(start.tokens))
        self._limits.append(self.row_tokens)

    def sample(self, rows: Sequence[BatchRow]) -> list[Draw]:
        """The single path's draw per row: penalty, mask, sample; refused: without."""
        sampler = self._sampler
        draws = []
        for row in rows:
            scores = sampler.penalise(row.logits, row.tokens + row.generated)
            t0 = time.perf_counter()
            scores = apply_bias(scores, row.constraint.packed_mask(row.budget))
            row.run.constraint_s += time.perf_counter() - t0
            draws.append(Draw(sampler.sample(scores), _Redraw(sampler, scores, row)))
        return draws

    def forward(self, pending: list[list[int]]) -> list[tuple[int, Any]]:
        """One `llama_decode` with every row's pending tokens (each row a sequence).

        A pass holds at most `BATCH_TOKENS`: when the rows' runs are longer, each row
        feeds an even share and the rest in the next passes."""
        self._check_open()
        lib = self._lib
        share = self._batch_tokens // max(1, len(pending))
        fed = pending
        if sum(len(tokens) for tokens in pending) > self._batch_tokens:
            fed = [tokens[:share] for tokens in pending]
        batch = self._batch
        index = 0
        last: list[int] = []
        for row, tokens in enumerate(fed):
            seq, position = self._seqs[row], self._positions[row]
            if position + len(tokens) > self._limits[row]:
                raise RuntimeError("a batch row outgrew its cells")  # prefill checks this
            for offset, token in enumerate(tokens):
                batch.token[index] = token
                batch.pos[index] = position + offset
                batch.n_seq_id[index] = 1
                batch.seq_id[index][0] = seq
                batch.logits[index] = offset == len(tokens) - 1
                index += 1
            last.append(index - 1)
            self._positions[row] = position + len(tokens)
        batch.n_tokens = index
        decode, want = self.model.threads_for(index)
        if (decode, want) != self._threads:
            lib.llama_set_n_threads(self._ctx, decode, want)
            self._threads = (decode, want)
        status = int(lib.llama_decode(self._ctx, batch))
        if status != 0:
            raise RuntimeError(f"llama_decode failed for the batch (status {status})")
        out: list[tuple[int, Any]] = []
        for row, tokens in enumerate(fed):
            pointer = lib.llama_get_logits_ith(self._ctx, last[row])
            logits = np.ctypeslib.as_array(pointer, shape=(self._width,)).astype(np.float32)
            out.append((len(tokens), logits))
        return out

    def keep(self, indices: list[int]) -> None:
        if not self._closer.alive:
            return
        kept = set(indices)
        for row, seq in enumerate(self._seqs):
            if row not in kept:
                self._lib.llama_memory_seq_rm(self._memory, seq, -1, -1)
                self._free_seqs.append(seq)
        self._seqs = [self._seqs[i] for i in indices]
        self._positions = [self._positions[i] for i in indices]
        self._limits = [self._limits[i] for i in indices]

    def close(self) -> None:
        self._closer()
        self._seqs, self._positions, self._limits = [], [], []

    def _check_open(self) -> None:
        if not self._closer.alive:
            raise RuntimeError("this batch is closed (its llama.cpp context was freed)")


class _Redraw:
    """Draws again without refused tokens, then falls back (the single path's loop)."""

    def __init__(self, sampler: NumpySampler, scores: np.ndarray, row: BatchRow) -> None:
        self._sampler, self._scores, self._row = sampler, scores, row

    def __call__(self, token: int, budget: int) -> int:
        constraint = self._row.constraint
        scores = self._scores
        for _ in range(RESAMPLES):
            scores = self._sampler.without(scores, token)
            token = self._sampler.sample(scores)
            if constraint.check(token, budget):
                return token
        return constraint.fallback(budget)


def _free(lib: Any, ctx: Any, batch: Any) -> None:
    lib.llama_batch_free(batch)
    lib.llama_free(ctx)


__all__ = ["LlamaCppRows"]
