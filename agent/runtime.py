"""The model runtime: token streaming with live statistics and prompt-cache reuse.

One `Model` owns an mlx-lm model, its tokenizer and one prompt cache. Every call that
extends the previous call's token sequence (what an agent loop does every step) only
prefills the new tokens. LFM2's short-conv state cannot be rewound, so reuse needs an
exact token prefix; caches that can be trimmed (pure KV models) also reuse a shorter
common prefix.

The decode loop is our own rather than `mlx_lm.generate_step` because constrained
decoding needs two things it does not offer: a mask that depends on the token just
sampled, and feeding several grammar-forced tokens in one forward pass.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

from agent.last_logits import last_logits_fn
from agent.model_info import ModelInfo
from agent.sampling import SamplingParams
from agent.token_runtime import (
    RESAMPLES,
    DecodeConstraint,
    GenerationResult,
    Message,
    Prompt,
    StreamItem,
    TextChunk,
    TokenRuntime,
    _Decode,
    plain_prompt,
)
from agent.vocab import Vocabulary, build_vocabulary

if TYPE_CHECKING:
    from agent.prompt_cache import PromptCachePool

__all__ = [
    "DecodeConstraint",
    "GenerationResult",
    "Message",
    "Model",
    "ModelInfo",
    "Prefill",
    "Prompt",
    "StreamItem",
    "TextChunk",
    "apply_logit_bias",
]

FLOOR_MARGIN = 30.0  # masked logits sit this far below the smallest logit
# A shared prompt prefix at least this long is kept as a checkpoint (`_reuse_cache`).
CHECKPOINT_MIN_TOKENS = 64


def apply_logit_bias(logits: mx.array, bias: mx.array) -> mx.array:
    """`logits` with masked tokens (a large negative bias) far below every allowed one.

    Adding the bias and clamping from below are two cheap element-wise ops; `mx.where`
    costs ~6x an add on MLX's CPU backend, and -inf or -1e30 left in the logits slows the
    sampler's `exp` several times. A masked token keeps a probability ~e^-30 relative
    to the least likely allowed one, and the constraint checks every sampled token, so a
    masked one is never taken.
    """
    floor = mx.min(logits, axis=-1, keepdims=True) - FLOOR_MARGIN
    return mx.maximum(logits + bias, floor)


@dataclass
class Prefill:
    """A prompt run through the model, ready for a batch to decode from it
    (`agent.batch_runtime`): its tokens, how many came from the prompt cache, the cache
    after them (the Model's own: a batch copies it) and the logits after the last."""

    tokens: list[int]
    cached: int
    cache: list[Any]
    logits: mx.array
    seconds: float


def _default_sampling(path: Path) -> SamplingParams:
    """The model's recommended sampling (generation_config.json), else LFM2's."""
    import json

    try:
        config = json.loads((path / "generation_config.json").read_text())
    except (OSError, ValueError):
        return SamplingParams()
    return (
        SamplingParams.from_generation_config(config)
        if isinstance(config, dict)
        else (SamplingParams())
    )


def _describe_quantization(config: dict[str, Any]) -> str:
    quant = config.get("quantization") or config.get("quantization_config")
    if not quant or "bits" not in quant:
        return str(config.get("torch_dtype", "float16"))
    return f"{quant['bits']}-bit (group {quant.get('group_size', 64)})"


class Model(TokenRuntime):
    """An mlx-lm model with its tokenizer, chat template and prompt cache."""

    engine = "mlx"

    prefill_step_size = 512
    progress_step_size = 64  # prefill chunk when someone watches the progress

    def __init__(
        self,
        name: str,
        path: Path,
        module: nn.Module,
        tokenizer: Any,
        config: dict[str, Any],
        load_seconds: float = 0.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.path = path
        self.module = module
        self._last_logits = last_logits_fn(module)
        self.tokenizer = tokenizer
        self.config = config
        hf_tokenizer = getattr(tokenizer, "_tokenizer", tokenizer)
        self.vocabulary: Vocabulary = build_vocabulary(hf_tokenizer, size=config.get("vocab_size"))
        self.eos_token_ids: frozenset[int] = frozenset(tokenizer.eos_token_ids)
        self.default_sampling = _default_sampling(path)
        self.load_seconds = load_seconds
        self._settled = False
        # A copy of the cache at a prefix two prompts shared (see `_reuse_cache`).
        self._checkpoint: tuple[list[int], list[Any]] | None = None
        self._checkpoint_at: int | None = None

    # ------------------------------------------------------------------ facts
    @property
    def context_length(self) -> int:
        return int(
            self.config.get("max_position_embeddings")
            or getattr(self.tokenizer, "model_max_length", 0)
            or 4096
        )

    @property
    def info(self) -> ModelInfo:
        from mlx.utils import tree_flatten

        # tree_flatten returns a list of (key, array) pairs unless given a `destination` dict.
        params = cast(list[tuple[str, mx.array]], tree_flatten(self.module.parameters()))
        n_params = 0
        bits = (self.config.get("quantization") or {}).get("bits")
        for key, value in params:
            if key.endswith(".weight") and value.dtype == mx.uint32 and bits:
                n_params += value.size * 32 // bits
            elif not key.endswith((".scales", ".biases")):
                n_params += value.size
        return ModelInfo(
            name=self.name,
            path=str(self.path),
            model_type=str(self.config.get("model_type", "?")),
            quantization=_describe_quantization(self.config),
            parameters=n_params,
            weight_bytes=sum(v.nbytes for _, v in params),
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
        """Render messages with the model's chat template (tools in the system turn)."""
        if not getattr(self.tokenizer, "has_chat_template", False):
            return plain_prompt(messages, add_generation_prompt)
        return self.tokenizer.apply_chat_template(
            list(messages),
            tools=list(tools) if tools else None,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
        )

    def settle(self) -> None:
        """Evaluate the model's lazy arrays so another thread can use them.

        MLX arrays are bound to the stream of the thread that made them: a freshly
        loaded model's weights are lazy casts (float32 on CPU), and after a generation
        the cache's convolution state stays lazy (the last logits do not need it).
        """
        if not self._settled:
            mx.eval(self.module.parameters())
            self._settled = True
        cache = self._state.cache
        if cache:
            mx.eval([c.state for c in cache])

    def encode(self, text: str) -> list[int]:
        bos = getattr(self.tokenizer, "bos_token", None)
        add_special = not (bos and text.startswith(bos))
        return list(self.tokenizer.encode(text, add_special_tokens=add_special))

    def encode_fragment(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def tokenizer_json(self) -> str | None:
        import copy

        hf = getattr(self.tokenizer, "_tokenizer", self.tokenizer)
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            return None
        backend = copy.copy(backend)  # serialised without padding or truncation
        backend.no_padding()
        backend.no_truncation()
        return str(backend.to_str())

    def _begin(self, sampling: SamplingParams) -> None:
        if sampling.seed is not None:
            mx.random.seed(sampling.seed)
        mx.reset_peak_memory()

    def _peak_memory_bytes(self) -> int:
        return int(mx.get_peak_memory())

    # ------------------------------------------------------------------ cache
    def keep_prompt_caches(self, pool: PromptCachePool[Any] | None) -> None:
        """Keep the caches of recent prompts in `pool` (agent.prompt_cache), so that
        conversations taking turns (a server's) each extend their own; None keeps one.
        MLX caches are plain arrays this runtime owns, so they can be swapped."""
        self._pool = pool

    def reset_cache(self) -> None:
        super().reset_cache()
        self._checkpoint = None
        self._checkpoint_at = None

    def prefill(self, prompt: Prompt) -> Prefill:
        """`prompt` through the prompt cache, ready for a batch row (`_prefill`)."""
        tokens, cached, logits, seconds = self._prefill(prompt)
        assert self._state.cache is not None  # _reuse_cache made it
        return Prefill(tokens, cached, list(self._state.cache), logits, seconds)

    def _settle_prefill(self, logits: Any) -> None:
        assert self._state.cache is not None
        mx.eval(logits, [c.state for c in self._state.cache])

    def _reuse_cache(self, tokens: list[int]) -> int:
        """Prepare the cache for `tokens`; return how many of them it already holds.

        A cache that cannot be rewound (LFM2's short-convolution state) cannot serve a
        prompt that only shares a prefix with the last one, such as the next part of a
        document after the same instruction and schema. So when a prompt shares at
        least `CHECKPOINT_MIN_TOKENS` with the last one and cannot reuse it, that prefix
        prefilled as usual but a copy of the cache is kept when the prefill passes its
        end; later prompts that start with it begin from a copy of the copy.
        """
        state = self._state
        cached = state.tokens
        common = 0
        limit = min(len(cached), len(tokens) - 1)  # always prefill at least one token
        while common < limit and cached[common] == tokens[common]:
            common += 1
        if state.cache is not None and common == len(cached) and common > 0:
            return common
        if state.cache is not None and common > 0 and can_trim_prompt_cache(state.cache):
            trim_prompt_cache(state.cache, len(cached) - common)
            del state.tokens[common:]
            return common
        checkpoint = self._checkpoint
        if checkpoint is not None:
            held = len(checkpoint[0])
            if held < len(tokens) and tokens[:held] == checkpoint[0]:
                state.cache = copy.deepcopy(checkpoint[1])
                state.tokens = list(checkpoint[0])
                return held
        state.cache = make_prompt_cache(self.module)
        state.tokens = []
        if common >= CHECKPOINT_MIN_TOKENS:
            self._checkpoint_at = common  # `_feed` keeps a copy when it gets there
        return 0

    def _feed(
        self, tokens: list[int], progress: Callable[[int, int], None] | None = None
    ) -> mx.array:
        """Run `tokens` through the model, return the logits after the last one (1, V).

        With `progress`, it is told (done, total) before the first chunk and after each,
        and chunks are at most `progress_step_size` tokens so that a display moves.
        """
        state = self._state
        step = self.prefill_step_size
        done = 0
        # Where to keep a checkpoint of the cache (a prefix `_reuse_cache` saw shared).
        cut = self._checkpoint_at - len(state.tokens) if self._checkpoint_at else None
        self._checkpoint_at = None
        if cut is not None and not 0 < cut < len(tokens):
            cut = None
        if progress:
            step = min(step, self.progress_step_size)
            progress(0, len(tokens))
        while len(tokens) - done > step or (cut is not None and done < cut):
            size = min(step, cut - done) if cut is not None and done < cut else step
            chunk = tokens[done : done + size]
            self.module(mx.array(chunk)[None], cache=state.cache)
            assert state.cache is not None  # _reuse_cache made it before the first feed
            mx.eval([c.state for c in state.cache])
            state.tokens.extend(chunk)
            done += size
            if done == cut:
                self._checkpoint = (list(state.tokens), copy.deepcopy(state.cache))
            if progress:
                progress(done, len(tokens))
            mx.clear_cache()
        rest = tokens[done:]
        logits = self._last_logits(mx.array(rest)[None], state.cache)
        state.tokens.extend(rest)
        return logits.astype(mx.float32)

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
        """The token layer: yields (ids, forced) per step, appending them to `generated`.

        Each forward pass is started with `mx.async_eval` before the grammar computes the
        next mask, so mask work (llguidance releases the GIL) overlaps the model, as in
        mlx-lm's `generate_step`. A run of tokens the grammar forces after a sampled
        token is fed in the sampled token's pass. `run.finish` says why it stopped.

        With `run.lookup`, a sampled token is fed together with tokens drafted from
        earlier text (`agent.prompt_lookup`; at the start of a value copied from the
        prompt, `agent.text_lookup`). Each next token is then chosen exactly as
        without a draft (same logits, same sampler call, same grammar); while it equals
        the drafted one, its logits are already computed and no pass is needed; at the
        first difference the rest of the draft is taken back out of the cache.
        """
        sampler = sampling.sampler()
        processors = sampling.logits_processors()
        context = sampling.repetition_context_size
        logits = self._feed(tokens[cached:], prefill_progress)
        mx.eval(logits)  # the prefill ends here, even if the first tokens are forced
        ahead = _Ahead(self, tokens, run) if run.lookup else None
        try:
            # A run the grammar forces at the opening; later runs ride with the sampled
            # token before them, and a run is never followed by another.
            opening, ends = run.forced_after(constraint, generated, max_tokens, self.eos_token_ids)
            if opening:
                yield opening, True
                rest = opening if ahead is None else ahead.take(opening)
                if ends:
                    return
                assert isinstance(rest, list)  # nothing was drafted before the first token
                logits = self._feed(rest) if ahead is None else ahead.feed(rest, 0)
                mx.async_eval(logits)
                run.forward_passes += 1
            while True:
                budget = max_tokens - len(generated)
                if run.ends_before_step(budget, should_stop, constraint):
                    return
                if processors:
                    history = mx.array((tokens + generated)[-context:])
                    for processor in processors:
                        logits = processor(history, logits)
                if constraint is not None:
                    t0 = time.perf_counter()
                    bias = constraint.logit_bias(budget, logits.shape[-1])
                    logits = apply_logit_bias(logits, bias)
                    run.constraint_s += time.perf_counter() - t0
                logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
                token = _token_id(sampler(logprobs))
                if constraint is not None:
                    t0 = time.perf_counter()
                    if not constraint.check(token, budget):
                        token = resample(logprobs, token, sampler, constraint, budget)
                    constraint.advance(token)
                    run.constraint_s += time.perf_counter() - t0
                generated.append(token)
                yield [token], False
                ends = run.ends_after(
                    token, self.eos_token_ids, constraint, len(generated), max_tokens
                )
                fed = [token]
                if not ends:  # what the grammar forces next goes in the same pass
                    follow, ends = run.forced_after(
                        constraint, generated, max_tokens, self.eos_token_ids
                    )
                    if follow:
                        yield follow, True
                        fed += follow
                taken = fed if ahead is None else ahead.take(fed)
                if ends:
                    return
                if isinstance(taken, mx.array):  # the token was drafted: its logits are in
                    logits = taken
                    continue
                if ahead is not None:
                    logits = ahead.feed(taken, max_tokens - len(generated))
                else:
                    logits = self._feed(taken)
                mx.async_eval(logits)
                run.forward_passes += 1
        finally:
            if ahead is not None:
                ahead.close()


class _Ahead:
    """Drafted tokens fed ahead of the ones taken, and their rows (see `_decode`)."""

    # Tokens taken since a cache that cannot be trimmed was marked are fed again with
    # the next pass; past this many, the next pass feeds no draft so they are kept.
    MAX_AGAIN = 32
    FIRST_SIZE = 1

    def __init__(self, model: Model, prompt: list[int], run: _Decode) -> None:
        from agent.cache_rewind import CacheMark
        from agent.last_logits import split_fn
        from agent.prompt_lookup import PromptLookup
        from agent.text_lookup import TextLookup

        state = model._state
        assert state.cache is not None  # the prefill made it
        self.model = model
        self.run = run
        self.lookup = PromptLookup(prompt)
        vocabulary = model.vocabulary
        self.text = TextLookup(
            prompt, vocabulary.token_bytes, model.encode_fragment, vocabulary.special_ids
        )
        self.mark = CacheMark(state.cache, state.tokens)
        self.hidden, self.project = split_fn(model.module)
        self.drafts: list[int] = []  # fed, not yet taken
        self.rows: mx.array | None = None  # rows after the last taken token, then each draft
        self.again: list[int] = []  # taken, then lost from the cache by a rewind
        self.size = min(run.lookup, self.FIRST_SIZE)  # the next draft's length
        self.draft_size = self.draft_taken = 0  # the last draft: fed, taken so far

    def take(self, taken: list[int]) -> mx.array | list[int]:
        """`taken` were just chosen: the logits after them if all were drafted (no pass
        needed); else the draft is dropped from the cache and the tokens still to feed
        are returned (the drafted ones among them stay fed)."""
        self.lookup.extend(taken)
        self.text.extend(taken)
        drafts = self.drafts
        same = 0
        while same < min(len(drafts), len(taken)) and drafts[same] == taken[same]:
            same += 1
        self.run.accepted += same
        self.draft_taken += same
        if drafts and same == len(taken):
            assert self.rows is not None
            self.drafts = drafts[same:]
            self.rows = self.rows[same:]
            if not self.drafts:
                self._resize()
            return self.project(self.rows[:1]).astype(mx.float32)
        if drafts:
            self._resize()
        self._drop(len(drafts) - same)  # the taken ones among them stay fed
        return taken[same:]

    def _resize(self) -> None:
        """Draft more after a draft taken whole, fewer after one refused: a refused
        token still costs its share of a pass."""
        taken, size = self.draft_taken, self.draft_size
        if taken >= size:
            self.size = min(self.run.lookup, size * 2)
        else:
            self.size = taken + 1 if taken else max(1, size // 2)

    def _drop(self, count: int) -> None:
        if count > 0:
            self.again += self.mark.rewind(count)
        self.drafts = []
        self.rows = None

    def feed(self, tokens: list[int], room: int) -> mx.array:
        """Feed `tokens` (after any to feed again) and a draft of at most `room` tokens
        after them; return the logits after `tokens`."""
        model = self.model
        state = model._state
        assert state.cache is not None
        room = min(self.size, room)
        draft = []
        if len(self.again) <= self.MAX_AGAIN:
            draft = self.lookup.draft(room) or self.text.draft(room)
        inputs = [*self.again, *tokens, *draft]
        if not draft:
            self.again = []
            self.mark.forget()
            return model._feed(inputs)
        if not self.again:
            self.mark.mark()
        self.again = []
        rows = self.hidden(mx.array(inputs)[None], state.cache)[0, -(1 + len(draft)) :]
        state.tokens.extend(inputs)
        self.drafts = draft
        self.rows = rows
        self.draft_size, self.draft_taken = len(draft), 0
        self.run.drafted += len(draft)
        return self.project(rows[:1]).astype(mx.float32)

    def close(self) -> None:
        """Leave the cache holding only taken tokens (a next call feeds the rest)."""
        self._drop(len(self.drafts))
        self.mark.forget()


def _token_id(sample: mx.array) -> int:
    """The id a sampler drew (mlx types `item()` as any scalar, complex included)."""
    return int(cast(int, sample.item()))


def resample(
    logprobs: mx.array,
    token: int,
    sampler: Callable[[mx.array], mx.array],
    constraint: DecodeConstraint,
    budget: int,
) -> int:
    """Another sample without the refused token(s); the constraint's fallback at last."""
    for _ in range(RESAMPLES):
        logprobs[:, token] = -mx.inf
        if not bool(mx.isfinite(logprobs).any().item()):
            break
        token = _token_id(sampler(logprobs))
        if constraint.check(token, budget):
            return token
    return constraint.fallback(budget)
