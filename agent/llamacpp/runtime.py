"""A GGUF model run by llama.cpp in this process (llama-cpp-python), under edge-agent's
own grammars.

Only the token layer lives here: llama.cpp computes the logits, and everything else is
the code the MLX runtime uses (`agent.token_runtime` for prompts, prompt-cache reuse,
detokenising and statistics; `agent.constrained` for masks, forced runs and the budget
guarantee), so a guarantee that holds on MLX holds here by construction. Masks and
sampling work on numpy arrays (`agent.np_sampling`); forced runs of tokens are one
`eval` call, a batch for llama.cpp.

The prompt cache is llama.cpp's own memory: a prompt that extends the tokens it holds
evaluates only the new ones; a shorter common prefix is kept where llama.cpp can cut the
memory back (attention caches), and the memory is cleared where it cannot (LFM2's
convolution state, like MLX's, cannot be rewound).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import resource
import sys
import weakref
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import ModelNotFoundError
from agent.model_info import ModelInfo
from agent.np_sampling import NumpySampler, apply_bias
from agent.sampling import SamplingParams
from agent.token_runtime import (
    RESAMPLES,
    DecodeConstraint,
    Message,
    Prompt,
    TokenRuntime,
    _Decode,
    plain_prompt,
)
from agent.vocab import Vocabulary

DEFAULT_CONTEXT = 8192
_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
               10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S",
               15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 30: "BF16"}  # fmt: skip


_LOG_CALLBACK: Any = None
# Every llama.cpp context this process opened. They are closed at exit, while the
# interpreter is whole: llama-cpp-python's own __del__ runs during teardown, after the
# modules it calls have been cleared, and prints a TypeError for each live model.
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()


# Batch contexts (`agent.llamacpp.batch`) share a model's weights: closed first.
_OPEN_BATCHES: weakref.WeakSet[Any] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for batch in list(_OPEN_BATCHES):
        batch.close()
    for llm in list(_OPEN):
        llm.close()


def close_at_exit(batch: Any) -> None:
    """Close `batch` (a context on a model's weights: `agent.llamacpp.batch`) at exit,
    before the models whose weights it uses."""
    _OPEN_BATCHES.add(batch)


def quiet_llama_logs() -> None:
    """Route llama.cpp's own log lines to Python logging (debug), off stderr.

    llama.cpp prints loading details and warnings (a context longer than the model was
    trained on, say) straight to stderr, which would land in the middle of a CLI's
    output; `edge-agent --verbose` shows them through the `agent.llamacpp` logger.
    """
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import logging

    import llama_cpp

    logger = logging.getLogger("agent.llamacpp")

    def log(level: int, text: bytes, _user_data: Any) -> None:
        logger.debug(text.decode("utf-8", "replace").rstrip())

    _LOG_CALLBACK = llama_cpp.llama_log_callback(log)
    llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))


SHORT_BATCH = 16  # tokens: a batch up to this long runs on the decode threads


def decode_threads() -> int:
    """Threads for decoding: `EDGE_AGENT_THREADS`, else half the CPUs (at least one).

    llama.cpp's worker threads spin while they wait; decoding one token at a time is
    bound by memory, not compute, and on a small machine shared with other work a second
    spinning thread costs more than it brings (measured on 2 busy cores: 65 tok/s with
    one thread, 10 with two). Prefill, which is compute, uses every CPU.
    """
    value = os.environ.get("EDGE_AGENT_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, (os.cpu_count() or 1) // 2)


def batch_threads() -> int:
    """Threads for prefill: `EDGE_AGENT_BATCH_THREADS`, else every CPU.

    On cores busy with other work, spinning workers hurt prefill as well (measured on 2
    loaded cores with SmolLM2: about 100 tok/s with one thread, 18 with two), so a
    benchmark on a shared machine can ask for fewer.
    """
    value = os.environ.get("EDGE_AGENT_BATCH_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1


@dataclass
class LlamaPrefill:
    """A prompt in the context's sequence 0: its tokens, how many came from the prompt
    cache, the logits after the last and the seconds it took."""

    tokens: list[int]
    cached: int
    logits: np.ndarray
    seconds: float


class LlamaCppModel(TokenRuntime):
    """A GGUF model in llama.cpp, with edge-agent's prompt, cache and grammar handling."""

    engine = "llama.cpp"
    prefill_step_size = 512
    progress_step_size = 64

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        default_sampling: SamplingParams | None = None,
    ) -> None:
        super().__init__()
        import time

        import llama_cpp

        t0 = time.perf_counter()
        quiet_llama_logs()
        self._lib = llama_cpp
        self.name = name
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"no GGUF file at {self.path}")
        cpus = batch_threads()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=n_threads or decode_threads(),
                n_threads_batch=cpus,
                n_batch=self.prefill_step_size,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelNotFoundError(f"llama.cpp cannot load {self.path}: {exc}") from None
        trained = int(llama_cpp.llama_model_n_ctx_train(self.llm.model))
        if 0 < trained < n_ctx:  # never past what the model was trained on
            self.llm.close()
            self.llm = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=trained,
                n_threads=n_threads or decode_threads(),
                n_threads_batch=cpus,
                n_batch=self.prefill_step_size,
                verbose=False,
            )
        _OPEN.add(self.llm)
        self._threads = (n_threads or decode_threads(), cpus)
        self._batch_threads_now = cpus
        self.metadata: dict[str, str] = dict(self.llm.metadata)
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.vocabulary, eos = self._read_vocabulary()
        self.eos_token_ids = frozenset(eos)
        self.default_sampling = default_sampling or SamplingParams()
        self._n_vocab = self.llm.n_vocab()
        self._template = self.metadata.get("tokenizer.chat_template")
        self._bos = self._piece(self.llm.token_bos()) if self.llm.token_bos() >= 0 else ""
        self._eos = self._piece(self.llm.token_eos()) if self.llm.token_eos() >= 0 else ""
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ facts
    @property
    def context_length(self) -> int:
        return int(self.llm.n_ctx())

    @property
    def info(self) -> ModelInfo:
        lib = self._lib
        file_type = self.metadata.get("general.file_type", "")
        quant = _FILE_TYPES.get(int(file_type), f"type {file_type}") if file_type else "?"
        return ModelInfo(
            name=self.name,
            path=str(self.path),
            model_type=self.metadata.get("general.architecture", "?"),
            quantization=f"GGUF {quant}",
            parameters=int(lib.llama_model_n_params(self.llm.model)),
            weight_bytes=int(lib.llama_model_size(self.llm.model)),
            context_length=self.context_length,
            vocab_size=len(self.vocabulary),
            engine=self.engine,
        )

    # ---------------------------------------------------------------- prompts
    def chat_prompt(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        if not self._template:
            return plain_prompt(messages, add_generation_prompt)
        from agent.chat_render import render_chat

        return render_chat(
            self._template,
            list(messages),
            tools=list(tools) if tools else None,
            add_generation_prompt=add_generation_prompt,
            bos_token=self._bos,
            eos_token=self._eos,
        )

    def encode(self, text: str) -> list[int]:
        add_bos = self._add_bos and not (self._bos and text.startswith(self._bos))
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def encode_fragment(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # ------------------------------------------------------------------ cache
    def reset_cache(self) -> None:
        super().reset_cache()
        self.llm.reset()

    def _reuse_cache(self, tokens: list[int]) -> int:
        state = self._state
        cached = state.tokens
        common = 0
        limit = min(len(cached), len(tokens) - 1)  # always evaluate at least one token
        while common < limit and cached[common] == tokens[common]:
            common += 1
        if common and common == len(cached) and self.llm.n_tokens == common:
            return common
        lib = self._lib
        memory = lib.llama_get_memory(self.llm.ctx)
        if common and memory is not None and lib.llama_memory_seq_rm(memory, 0, common, -1):
            self.llm.n_tokens = common  # the Llama object's own count of evaluated tokens
            del state.tokens[common:]
            return common
        self.llm.reset()
        if memory is not None:
            lib.llama_memory_clear(memory, True)
        state.tokens = []
        return 0

    def _feed(
        self, tokens: list[int], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """Evaluate `tokens` (in batches), return the logits after the last one."""
        step = self.prefill_step_size
        if progress:
            step = self.progress_step_size
            progress(0, len(tokens))
        for done in range(0, len(tokens), step):
            chunk = tokens[done : done + step]
            self._set_batch_threads(len(chunk))
            self.llm.eval(chunk)
            self._state.tokens.extend(chunk)
            if progress:
                progress(min(done + step, len(tokens)), len(tokens))
        pointer = self._lib.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).astype(np.float32)

    def prefill(self, prompt: Prompt) -> LlamaPrefill:
        """Run `prompt` through the prompt cache (reusing what it shares with the last
        prompt, as `stream` does) and stop before the first token is sampled; the
        context's sequence 0 then holds exactly the prompt.

        Batched decoding (`agent.llamacpp.batch`) starts each row from here and copies
        the sequence into its own context, so every row gets the prompt cache's
        savings: the instruction and schema that open every extraction prompt are
        prefilled once, not once per row.
        """
        return LlamaPrefill(*self._prefill(prompt))

    def threads_for(self, n_tokens: int) -> tuple[int, int]:
        """(decode, batch) thread counts for a batch of `n_tokens`: the decode threads
        for a short one, as `_set_batch_threads` explains."""
        decode, batch = self._threads
        return decode, decode if n_tokens <= SHORT_BATCH else batch

    def _set_batch_threads(self, n_tokens: int) -> None:
        """Decode threads for a short batch, every CPU for a long one.

        llama.cpp runs any batch of more than one token on its batch threads, and a
        forced run of a few tokens is decode-like: on 2 busy cores a 2-token run on two
        spinning threads took 0.3-2.3 s against ~25 ms per single token (the reason
        decoding uses one thread, see `decode_threads`).
        """
        decode, want = self.threads_for(n_tokens)
        if want != self._batch_threads_now:
            self._lib.llama_set_n_threads(self.llm.ctx, decode, want)
            self._batch_threads_now = want

    # ------------------------------------------------------------- decoding
    def _begin(self, sampling: SamplingParams) -> None:
        self._sampler = NumpySampler(sampling)

    def _peak_memory_bytes(self) -> int:
        """The process's peak resident memory (llama.cpp allocates outside Python)."""
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)

    def _decode(
        self,
        tokens: list[int],
        cached: int,
        generated: list[int],
        run: _Decode,
        max_tokens: int,
        sampling: SamplingParams,
        constraint: DecodeConstraint | None,
        prefill_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Generator[tuple[list[int], bool], None, None]:
        import time

        sampler = self._sampler
        logits = self._feed(tokens[cached:], prefill_progress)
        # A run the grammar forces at the opening (later ones: `forced_after`).
        opening, ends = run.forced_after(constraint, generated, max_tokens, self.eos_token_ids)
        if opening:
            yield opening, True
            if ends:
                return
            logits = self._feed(opening)  # one batch for the whole run
            run.forward_passes += 1
        while True:
            budget = max_tokens - len(generated)
            if run.ends_before_step(budget, should_stop, constraint):
                return
            scores = sampler.penalise(logits, tokens + generated)
            if constraint is not None:
                t0 = time.perf_counter()
                scores = apply_bias(scores, constraint.packed_mask(budget))
                run.constraint_s += time.perf_counter() - t0
            token = sampler.sample(scores)
            if constraint is not None:
                t0 = time.perf_counter()
                tries = 0
                while not constraint.check(token, budget):
                    tries += 1
                    if tries > RESAMPLES:
                        token = constraint.fallback(budget)
                        break
                    scores = sampler.without(scores, token)
                    token = sampler.sample(scores)
                constraint.advance(token)
                run.constraint_s += time.perf_counter() - t0
            generated.append(token)
            yield [token], False
            if run.ends_after(token, self.eos_token_ids, constraint, len(generated), max_tokens):
                return
            # What the grammar forces next goes in the same batch.
            follow, ends = run.forced_after(constraint, generated, max_tokens, self.eos_token_ids)
            if follow:
                yield follow, True
            if ends:
                return
            logits = self._feed([token, *follow])
            run.forward_passes += 1

    # ------------------------------------------------------------------ vocab
    def _piece(self, token: int) -> str:
        return self._token_bytes(token).decode("utf-8", "replace")

    def _token_bytes(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(256)
        n = self._lib.llama_token_to_piece(self._vocab, token, buffer, 256, 0, True)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = self._lib.llama_token_to_piece(self._vocab, token, buffer, -n, 0, True)
        return bytes(buffer.raw[:n])

    def _read_vocabulary(self) -> tuple[Vocabulary, list[int]]:
        """Every token's exact bytes, which of them are special, and the end tokens."""
        lib = self._lib
        n = int(lib.llama_vocab_n_tokens(self._vocab))
        table: list[bytes] = []
        special: set[int] = set()
        eos: list[int] = []
        control = lib.LLAMA_TOKEN_ATTR_CONTROL | lib.LLAMA_TOKEN_ATTR_UNUSED
        for token in range(n):
            data = self._token_bytes(token)
            table.append(data)
            attr = int(lib.llama_vocab_get_attr(self._vocab, token))
            looks_special = data.startswith(b"<") and data.endswith(b">") and len(data) > 2
            if attr & control or (attr & lib.LLAMA_TOKEN_ATTR_USER_DEFINED and looks_special):
                special.add(token)
            if lib.llama_vocab_is_eog(self._vocab, token):
                eos.append(token)
        if not eos:
            eos = [int(self.llm.token_eos())]
        return Vocabulary(table, frozenset(special)), eos
