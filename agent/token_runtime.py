"""The engine-agnostic half of a token runtime: prompts in, text chunks and stats out.

A runtime (MLX in `agent.runtime`, llama.cpp in `agent.llamacpp`) owns a model, its
tokenizer and one prompt cache, and implements the token layer (`_reuse_cache`,
`_decode`: prefill, masks, sampling, forced runs). Everything above tokens is shared
here: rendering and tokenising prompts so that a prompt that extends the last one reuses
the cache, detokenising, stop strings, and the statistics a user sees. So both engines
stream the same `TextChunk`s and `GenerationResult`s and keep the same guarantees.

This module imports no engine: a machine with llama.cpp and without MLX can run it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from agent.errors import UserError
from agent.model_info import ModelInfo
from agent.sampling import SamplingParams
from agent.stats import GenerationStats
from agent.stopping import partial_tail
from agent.vocab import IncrementalDecoder, Vocabulary

if TYPE_CHECKING:
    from agent.prompt_cache import PromptCachePool

Message = dict[str, Any]
Prompt = str | Sequence[int] | Sequence[Message]


def plain_prompt(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """The conversation as `role: content` lines, for a model without a chat template
    (a base model, say): every runtime renders it the same way."""
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")


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

    def logit_bias(self, budget: int, width: int) -> Any:
        """The allowed tokens as an additive float32 bias of `width` (an MLX array):
        0 where allowed, a large negative number where not."""

    def packed_mask(self, budget: int) -> Any:
        """The allowed tokens as packed bits (a numpy uint32 array)."""

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


@dataclass
class _CacheState:
    """What the prompt cache holds and the text it corresponds to."""

    cache: list[Any] | None = None
    tokens: list[int] = field(default_factory=list)  # fed into the cache
    history_tokens: list[int] = field(default_factory=list)  # prompt + generated
    history_text: str | None = None  # exact text of history_tokens, when known


@dataclass
class _Decode:
    """What the token layer tells the text layer about one generation."""

    finish: str
    t_first: float = 0.0
    constraint_s: float = 0.0
    forward_passes: int = 0
    # Prompt lookup: at most this many drafted tokens per pass (0: off; engines that
    # do not draft ignore it), and the counts for the stats.
    lookup: int = 0
    drafted: int = 0
    accepted: int = 0

    # The step logic every engine's token loop shares; only feeding, masking and
    # sampling are the engine's own.
    def ends_before_step(
        self,
        budget: int,
        should_stop: Callable[[], bool] | None,
        constraint: DecodeConstraint | None,
    ) -> bool:
        """Whether the loop stops before its next token (and why, in `finish`)."""
        if budget <= 0:
            self.finish = "length"
        elif should_stop is not None and should_stop():
            self.finish = "cancelled"
        elif constraint is not None and constraint.is_finished():
            self.finish = "stop"
        else:
            return False
        return True

    def forced(self, constraint: DecodeConstraint, budget: int) -> list[int]:
        """The tokens the grammar forces now (timed as constraint work)."""
        t0 = time.perf_counter()
        tokens = constraint.forced(budget)
        self.constraint_s += time.perf_counter() - t0
        return tokens

    def forced_after(
        self,
        constraint: DecodeConstraint | None,
        generated: list[int],
        max_tokens: int,
        eos_ids: frozenset[int],
    ) -> tuple[list[int], bool]:
        """The run the grammar forces next (at the opening, or after a sampled token that
        did not end the output, to be fed in that token's pass), appended to
        `generated`, and whether the output ends with it."""
        if constraint is None:
            return [], False
        follow = self.forced(constraint, max_tokens - len(generated))
        if not follow:
            return [], False
        generated.extend(follow)
        return follow, self.ends_after(None, eos_ids, constraint, len(generated), max_tokens)

    def ends_after(
        self,
        token: int | None,
        eos_ids: frozenset[int],
        constraint: DecodeConstraint | None,
        generated: int,
        max_tokens: int,
    ) -> bool:
        """Whether the loop stops after taking `token` (None: a forced run). A full
        budget leaves `finish` as "length": nothing more is fed."""
        finished = constraint is not None and constraint.is_finished()
        if finished or (token in eos_ids and constraint is None):
            self.finish = "stop"
            return True
        return generated >= max_tokens


class TokenRuntime:
    """A model with a tokenizer, a chat template and one prompt cache (see the module)."""

    name: str
    vocabulary: Vocabulary
    eos_token_ids: frozenset[int]
    default_sampling: SamplingParams
    load_seconds: float = 0.0
    engine = "?"  # "mlx", "llama.cpp"

    def __init__(self) -> None:
        self._state = _CacheState()
        # Caches of other recent prompts, for runtimes whose cache state is theirs to
        # swap (MLX's: `Model.keep_prompt_caches`); None keeps the one.
        self._pool: PromptCachePool[_CacheState] | None = None
        self._lock = threading.Lock()
        self._lists_tools: bool | None = None

    # ------------------------------------------------------------ per engine
    @property
    def context_length(self) -> int:
        raise NotImplementedError

    @property
    def info(self) -> ModelInfo:
        raise NotImplementedError

    def chat_prompt(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render messages with the model's chat template (tools in the system turn)."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Tokens of a whole prompt (with the BOS token the model wants)."""
        raise NotImplementedError

    def encode_fragment(self, text: str) -> list[int]:
        """Tokens of text that continues a prompt: no BOS, special tokens parsed."""
        raise NotImplementedError

    def tokenizer_json(self) -> str | None:
        """The Hugging Face `tokenizer.json` serialisation, where the model has one
        (grammar engines then tokenise in Rust); None otherwise."""
        return None

    def settle(self) -> None:
        """Make the model usable from another thread (MLX arrays are thread-bound)."""

    def reset_cache(self) -> None:
        """Forget every cached prompt (the active one and any kept in a pool)."""
        self._state = _CacheState()
        if self._pool is not None:
            self._pool.clear()

    def _reuse_cache(self, tokens: list[int]) -> int:
        """Prepare the cache for `tokens`; return how many of them it already holds."""
        raise NotImplementedError

    def _feed(self, tokens: list[int]) -> Any:
        """Run `tokens` through the model after the cache; the logits after the last."""
        raise NotImplementedError

    def _begin(self, sampling: SamplingParams) -> None:
        """Seed the sampler and reset peak-memory counters for one generation."""

    def _peak_memory_bytes(self) -> int:
        return 0

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
        """The token layer: yields (ids, forced) per step, appending them to `generated`,
        and says in `run.finish` why it stopped."""
        raise NotImplementedError

    # ---------------------------------------------------------------- shared
    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

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

    def _prompt_tokens(self, prompt: Prompt) -> tuple[list[int], str | None]:
        """Tokens for `prompt`, extending the cached history when the text extends it.

        Re-tokenising a whole conversation can split the model's own output differently
        from how it was sampled, which would defeat the cache; appending only the new
        text's tokens keeps the sequence an exact extension.
        """
        if isinstance(prompt, str):
            text = prompt
        elif len(prompt) > 0 and isinstance(prompt[0], dict):
            # Its first element says which kind of sequence the prompt is.
            text = self.chat_prompt(cast("Sequence[Message]", prompt))
        else:
            ids = [int(t) for t in cast("Sequence[int]", prompt)]
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
            return state.history_tokens + self.encode_fragment(suffix), text
        return self.encode(text), text

    def _check_prompt(self, tokens: list[int]) -> None:
        """Refuse a prompt that is empty or leaves no room in the context."""
        if not tokens:
            raise UserError("the prompt is empty")
        if len(tokens) >= self.context_length:
            raise UserError(
                f"the prompt has {len(tokens)} tokens but {self.name} has a context of "
                f"{self.context_length}; shorten the prompt"
            )

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
        lookup: int = 0,
    ) -> Iterator[StreamItem]:
        """Stream text chunks, then one `GenerationResult`.

        `prompt` is raw text, token ids, or chat messages (rendered with the chat
        template). `should_stop` is polled between tokens so a UI can cancel cleanly;
        the partial output is returned with finish_reason "cancelled". `lookup` > 0
        lets the engine feed up to that many tokens guessed from earlier text with each
        sampled one (`agent.prompt_lookup`; MLX does): the output is the same, the
        forward passes fewer where the output copies its prompt.
        """
        if max_tokens < 1:
            raise UserError(f"max_tokens must be at least 1, got {max_tokens}")
        if isinstance(lookup, bool) or not isinstance(lookup, int) or lookup < 0:
            raise UserError(f"lookup must be a whole number >= 0, got {lookup!r}")
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
                lookup=lookup,
            )
        finally:
            self._lock.release()

    def _prefill(self, prompt: Prompt) -> tuple[list[int], int, Any, float]:
        """Run `prompt` through the prompt cache (reusing what it shares with the last
        prompt, as `stream` does) and stop before the first token is sampled: (tokens,
        how many came from the cache, the logits after the last, seconds).

        Batched decoding starts each row from here, so every row gets the prompt
        cache's savings: the instruction and schema that open every extraction prompt
        are prefilled once, not once per row. `_settle` runs before the lock is let go.
        """
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Model is already generating; use one Model per thread")
        try:
            t0 = time.perf_counter()
            tokens, prompt_text = self._prompt_tokens(prompt)
            self._check_prompt(tokens)
            state = self._state
            state.history_text = None  # unknown until the prefill completes
            cached = self._reuse_cache(tokens)
            logits = self._feed(tokens[cached:])
            self._settle_prefill(logits)
            # The cache holds exactly the prompt: a next prompt extending it reuses it.
            state.history_tokens = list(tokens)
            state.history_text = prompt_text
            return tokens, cached, logits, time.perf_counter() - t0
        finally:
            self._lock.release()

    def _settle_prefill(self, logits: Any) -> None:
        """Finish the prefill's work before the lock is let go (a lazy engine evaluates)."""

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
        lookup: int = 0,
    ) -> Iterator[StreamItem]:
        """The text layer: token ids -> text, stop strings, statistics."""
        t_start = time.perf_counter()
        tokens, prompt_text = self._prompt_tokens(prompt)
        self._check_prompt(tokens)
        self._begin(sampling)
        state = self._state
        state.history_text = None  # unknown until this call completes
        cached = self._reuse_cache(tokens)
        stats = GenerationStats(
            prompt_tokens=len(tokens),
            cached_prompt_tokens=cached,
            constrained=constraint is not None,
            engine=self.engine,
        )
        run = _Decode(finish="length", lookup=lookup)
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
        stats.peak_memory_bytes = self._peak_memory_bytes()
        stats.finish_reason = run.finish
        stats.decode_forward_passes = run.forward_passes
        stats.draft_tokens = run.drafted
        stats.accepted_draft_tokens = run.accepted
        if constraint is not None and generated:
            stats.mask_us_per_token = run.constraint_s * 1e6 / len(generated)
        yield GenerationResult("".join(text_parts), generated, stats)
