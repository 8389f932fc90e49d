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

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import mlx.core as mx
import mlx.nn as nn
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

from agent.errors import UserError
from agent.model_info import ModelInfo
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.stopping import partial_tail
from agent.vocab import IncrementalDecoder, Vocabulary, build_vocabulary

if TYPE_CHECKING:
    from agent.prompt_cache import PromptCachePool

Message = dict[str, Any]
Prompt = str | Sequence[int] | Sequence[Message]


@dataclass
class TextChunk:
    """A piece of streamed output. `forced` marks grammar fast-forwarded tokens."""

    text: str
    token_ids: list[int]
    forced: bool = False


@dataclass
class GenerationResult:
    """The last item of every stream: the whole output and its statistics."""

    text: str
    token_ids: list[int]
    stats: GenerationStats


StreamItem = TextChunk | GenerationResult


class DecodeConstraint(Protocol):
    """What the decode loop needs from a grammar (implemented in agent.constrained)."""

    def forced(self, budget: int) -> list[int]:
        """Tokens that are the only way on from here, already taken (may be empty)."""

    def logit_bias(self, budget: int, width: int) -> mx.array:
        """The allowed tokens as an additive float32 bias of `width`: 0 where allowed,
        a large negative number where not (see `apply_logit_bias`)."""

    def check(self, token: int, budget: int) -> bool:
        """Whether a sampled token may be taken; refused ones are sampled again."""

    def fallback(self, budget: int) -> int:
        """A token that may always be taken now (after repeated refusals)."""

    def advance(self, token: int) -> None:
        """Take `token`."""

    def is_finished(self) -> bool:
        """True once the grammar has taken an end token."""


# Samples drawn again when a constraint refuses a sampled token, before its fallback.
RESAMPLES = 3
FLOOR_MARGIN = 30.0  # masked logits sit this far below the smallest logit


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
class _CacheState:
    """What the prompt cache holds and the text it corresponds to."""

    cache: list[Any] | None = None
    tokens: list[int] = field(default_factory=list)  # fed into the cache
    history_tokens: list[int] = field(default_factory=list)  # prompt + generated
    history_text: str | None = None  # exact text of history_tokens, when known


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


class Model:
    """A loaded model with its tokenizer, chat template and prompt cache."""

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
        self.name = name
        self.path = path
        self.module = module
        self.tokenizer = tokenizer
        self.config = config
        hf_tokenizer = getattr(tokenizer, "_tokenizer", tokenizer)
        self.vocabulary: Vocabulary = build_vocabulary(hf_tokenizer, size=config.get("vocab_size"))
        self.eos_token_ids: frozenset[int] = frozenset(tokenizer.eos_token_ids)
        self.default_sampling = _default_sampling(path)
        self.load_seconds = load_seconds
        self._state = _CacheState()
        self._pool: PromptCachePool[_CacheState] | None = None
        self._lock = threading.Lock()
        self._settled = False
        self._lists_tools: bool | None = None

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

        params = tree_flatten(self.module.parameters())
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
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
            return text + ("assistant: " if add_generation_prompt else "")
        return self.tokenizer.apply_chat_template(
            list(messages),
            tools=list(tools) if tools else None,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
        )

    def template_lists_tools(self) -> bool:
        """Whether the chat template renders a `tools` list (many silently drop it)."""
        if self._lists_tools is None:
            probe_name = "edge_agent_probe_tool"
            probe = {
                "type": "function",
                "function": {"name": probe_name, "description": "", "parameters": {}},
            }
            text = self.chat_prompt([{"role": "user", "content": "hi"}], tools=[probe])
            self._lists_tools = probe_name in text
        return self._lists_tools

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

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def _prompt_tokens(self, prompt: Prompt) -> tuple[list[int], str | None]:
        """Tokens for `prompt`, extending the cached history when the text extends it.

        Re-tokenising a whole conversation can split the model's own output differently
        from how it was sampled, which would defeat the cache; appending only the new
        text's tokens keeps the sequence an exact extension.
        """
        if isinstance(prompt, str):
            text = prompt
        elif len(prompt) > 0 and isinstance(prompt[0], dict):
            text = self.chat_prompt(prompt)  # type: ignore[arg-type]
        else:
            ids = [int(t) for t in prompt]  # type: ignore[union-attr]
            if self._pool is not None:
                self._state = self._pool.exchange(self._state, _CacheState, tokens=ids)
            return ids, None
        if self._pool is not None:
            self._state = self._pool.exchange(self._state, _CacheState, text=text)
        state = self._state
        if (
            state.history_text is not None
            and len(text) > len(state.history_text)
            and text.startswith(state.history_text)
        ):
            suffix = text[len(state.history_text) :]
            suffix_ids = self.tokenizer.encode(suffix, add_special_tokens=False)
            return state.history_tokens + list(suffix_ids), text
        return self.encode(text), text

    # ------------------------------------------------------------------ cache
    def reset_cache(self) -> None:
        """Forget every cached prompt (the active one and any kept in a pool)."""
        self._state = _CacheState()
        if self._pool is not None:
            self._pool.clear()

    def keep_prompt_caches(self, pool: PromptCachePool[Any] | None) -> None:
        """Keep the caches of recent prompts in `pool` (agent.prompt_cache), so that
        conversations taking turns (a server's) each extend their own; None keeps one."""
        self._pool = pool

    def _reuse_cache(self, tokens: list[int]) -> int:
        """Prepare the cache for `tokens`; return how many of them it already holds."""
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
        state.cache = make_prompt_cache(self.module)
        state.tokens = []
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
        if progress:
            step = min(step, self.progress_step_size)
            progress(0, len(tokens))
        while len(tokens) - done > step:
            chunk = tokens[done : done + step]
            self.module(mx.array(chunk)[None], cache=state.cache)
            mx.eval([c.state for c in state.cache])
            state.tokens.extend(chunk)
            done += step
            if progress:
                progress(done, len(tokens))
            mx.clear_cache()
        rest = tokens[done:]
        logits = self.module(mx.array(rest)[None], cache=state.cache)[:, -1, :]
        state.tokens.extend(rest)
        return logits.astype(mx.float32)

    # ------------------------------------------------------------- generation
    def generate(self, prompt: Prompt, **kwargs: Any) -> GenerationResult:
        """Run `stream` to the end and return its result."""
        result = None
        for item in self.stream(prompt, **kwargs):
            if isinstance(item, GenerationResult):
                result = item
        assert result is not None
        return result

    def stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int = 512,
        sampling: SamplingParams | None = None,
        stop: Sequence[str] = (),
        constraint: DecodeConstraint | None = None,
        prefill_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[StreamItem]:
        """Stream text chunks, then one `GenerationResult`.

        `prompt` is raw text, token ids, or chat messages (rendered with the chat
        template). `should_stop` is polled between tokens so a UI can cancel cleanly;
        the partial output is returned with finish_reason "cancelled".
        """
        if max_tokens < 1:
            raise UserError(f"max_tokens must be at least 1, got {max_tokens}")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Model is already generating; use one Model per thread")
        try:
            yield from self._stream(
                prompt,
                max_tokens=max_tokens,
                sampling=sampling or self.default_sampling,
                stop=tuple(s for s in stop if s),
                constraint=constraint,
                prefill_progress=prefill_progress,
                should_stop=should_stop,
            )
        finally:
            self._lock.release()

    def _stream(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        sampling: SamplingParams,
        stop: tuple[str, ...],
        constraint: DecodeConstraint | None,
        prefill_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> Iterator[StreamItem]:
        """The text layer: token ids -> text, stop strings, statistics."""
        t_start = time.perf_counter()
        tokens, prompt_text = self._prompt_tokens(prompt)
        if not tokens:
            raise UserError("the prompt is empty")
        if len(tokens) >= self.context_length:
            raise UserError(
                f"the prompt has {len(tokens)} tokens but {self.name} has a context of "
                f"{self.context_length}; shorten the prompt"
            )
        if sampling.seed is not None:
            mx.random.seed(sampling.seed)
        mx.reset_peak_memory()
        state = self._state
        state.history_text = None  # unknown until this call completes
        cached = self._reuse_cache(tokens)
        stats = GenerationStats(
            prompt_tokens=len(tokens),
            cached_prompt_tokens=cached,
            constrained=constraint is not None,
        )
        run = _Decode(finish="length")
        decoder = IncrementalDecoder(self.vocabulary)
        generated: list[int] = []
        text_parts: list[str] = []
        held = ""  # text withheld because it may be the start of a stop sequence
        steps = self._decode(
            tokens, cached, generated, run, max_tokens, sampling, constraint,
            prefill_progress, should_stop,
        )  # fmt: skip
        try:
            for step_tokens, forced in steps:
                if not run.t_first:
                    run.t_first = time.perf_counter()
                piece = decoder.add_many([t for t in step_tokens if t not in self.eos_token_ids])
                if forced:
                    stats.forced_tokens += len(step_tokens)
                    if piece:
                        text_parts.append(piece)
                    yield TextChunk(piece, step_tokens, forced=True)
                    continue
                if stop:
                    held += piece
                    hit = min((held.find(s) for s in stop if s in held), default=-1)
                    if hit >= 0:
                        if held[:hit]:
                            text_parts.append(held[:hit])
                            yield TextChunk(held[:hit], step_tokens)
                        run.finish = "stop_sequence"
                        held = ""
                        break
                    keep = partial_tail(held, stop)
                    piece, held = held[: len(held) - keep], held[len(held) - keep :]
                if piece:
                    text_parts.append(piece)
                    yield TextChunk(piece, step_tokens)
        finally:
            steps.close()
            # Keep the bookkeeping exact even when the consumer abandons the stream.
            state.history_tokens = tokens + generated

        tail = decoder.flush() + held
        if tail:
            text_parts.append(tail)
            yield TextChunk(tail, [])
        if prompt_text is not None:
            # The text a caller sees (invalid UTF-8 from a weak model shows as U+FFFD);
            # a next prompt that extends it reuses the tokens actually generated.
            state.history_text = prompt_text + self.vocabulary.decode(generated)

        t_end = time.perf_counter()
        prefill_s = (run.t_first or t_end) - t_start
        stats.generated_tokens = len(generated)
        stats.ttft_s = prefill_s
        stats.prefill_tps = stats.prefilled_tokens / prefill_s if prefill_s > 0 else 0.0
        if len(generated) > 1 and t_end > run.t_first:
            stats.decode_tps = (len(generated) - 1) / (t_end - run.t_first)
        stats.total_s = t_end - t_start
        stats.peak_memory_bytes = int(mx.get_peak_memory())
        stats.finish_reason = run.finish
        stats.decode_forward_passes = run.forward_passes
        if constraint is not None and generated:
            stats.mask_us_per_token = run.constraint_s * 1e6 / len(generated)
        yield GenerationResult("".join(text_parts), generated, stats)

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
    ) -> Iterator[tuple[list[int], bool]]:
        """The token layer: yields (ids, forced) per step, appending them to `generated`.

        Each forward pass is started with `mx.async_eval` before the grammar computes the
        next mask, so mask work (llguidance releases the GIL) overlaps the model, as in
        mlx-lm's `generate_step`. `run.finish` says why it stopped.
        """
        sampler = sampling.sampler()
        processors = sampling.logits_processors()
        context = sampling.repetition_context_size
        logits = self._feed(tokens[cached:], prefill_progress)
        mx.eval(logits)  # the prefill ends here, even if the first tokens are forced
        while True:
            budget = max_tokens - len(generated)
            if budget <= 0:
                run.finish = "length"
                return
            if should_stop is not None and should_stop():
                run.finish = "cancelled"
                return
            if constraint is not None and constraint.is_finished():
                run.finish = "stop"
                return
            if constraint is not None:
                t0 = time.perf_counter()
                forced = constraint.forced(budget)
                run.constraint_s += time.perf_counter() - t0
                if forced:
                    generated.extend(forced)
                    yield forced, True
                    if constraint.is_finished():
                        run.finish = "stop"
                        return
                    if len(generated) >= max_tokens:
                        return  # finish stays "length"; never feed what is not needed
                    logits = self._feed(forced)  # one forward pass for the whole run
                    mx.async_eval(logits)
                    run.forward_passes += 1
                    continue
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
            token = int(sampler(logprobs).item())
            if constraint is not None:
                t0 = time.perf_counter()
                if not constraint.check(token, budget):
                    token = _resample(logprobs, token, sampler, constraint, budget)
                constraint.advance(token)
                run.constraint_s += time.perf_counter() - t0
            generated.append(token)
            yield [token], False
            if token in self.eos_token_ids and (constraint is None or constraint.is_finished()):
                run.finish = "stop"
                return
            if constraint is not None and constraint.is_finished():
                run.finish = "stop"
                return
            if len(generated) >= max_tokens:
                return  # finish stays "length"
            logits = self._feed([token])
            mx.async_eval(logits)
            run.forward_passes += 1


@dataclass
class _Decode:
    """What the token layer tells the text layer about one generation."""

    finish: str
    t_first: float = 0.0
    constraint_s: float = 0.0
    forward_passes: int = 0


def _resample(
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
        token = int(sampler(logprobs).item())
        if constraint.check(token, budget):
            return token
    return constraint.fallback(budget)
