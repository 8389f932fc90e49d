"""Structured generation for several requests at once: one batch, one grammar per row.

Each request is compiled and checked exactly as `structured.stream_structured` does
(the shortest valid output must fit `max_tokens`), then decoded as a row of an
`agent.batch_runtime.BatchDecoder`; a finished row is parsed and validated. A request
that fails (its grammar does not compile, its prompt is too long) fails alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.batch_runtime import DEFAULT_ROWS, BatchDecoder, supports_batching
from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT
from agent.constrained.select import CompiledOutput, EngineChoice
from agent.errors import UserError
from agent.sampling import SamplingParams
from agent.structured import (
    BudgetTooSmallError,
    GenerationIncomplete,
    StructuredResult,
    compile_output_type,
)
from agent.token_runtime import DecodeConstraint, Prompt


@dataclass
class BatchItem:
    """A finished request: its value, or the error that stopped it (a `UserError` for
    what the request itself caused)."""

    key: Any
    result: StructuredResult | None = None
    error: Exception | None = None


class StructuredBatch:
    """Requests added while there is room, decoded together, returned as they finish.

    `rows` and `row_tokens` bound the batch for engines that set its memory aside up
    front (llama.cpp: see `BatchDecoder`). Close it (or use `with`) when done."""

    def __init__(
        self,
        model: Any,
        *,
        sampling: SamplingParams | None = None,
        whitespace: str = "",
        compile_timeout: float = DEFAULT_COMPILE_TIMEOUT,
        engine: EngineChoice = "auto",
        rows: int = DEFAULT_ROWS,
        row_tokens: int | None = None,
    ) -> None:
        if not supports_batching(model):
            name = getattr(model, "name", "this model")
            raise UserError(f"{name} cannot decode several sequences at once")
        self.model = model
        self._decoder = BatchDecoder(model, sampling, rows=rows, row_tokens=row_tokens)
        self._options = (whitespace, compile_timeout, engine)
        self._compiled: dict[Any, tuple[CompiledOutput, DecodeConstraint]] = {}
        self._failed: list[BatchItem] = []

    @property
    def active(self) -> int:
        """Requests decoding now."""
        return self._decoder.active

    def close(self) -> None:
        """Free the batch's memory (requests still decoding are abandoned)."""
        self._decoder.close()

    def __enter__(self) -> StructuredBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, key: Any, prompt: Prompt, output_type: Any, *, max_tokens: int = 512) -> None:
        """Compile `output_type`, prefill `prompt` and start decoding; the outcome comes
        out of a later `step` under `key` (a key must not be in the batch twice)."""
        if key in self._compiled:
            raise ValueError(f"request {key!r} is already in the batch")
        whitespace, timeout, engine = self._options
        try:
            compiled = compile_output_type(
                self.model,
                output_type,
                whitespace=whitespace,
                compile_timeout=timeout,
                engine=engine,
                max_tokens=max_tokens,
            )
            needed = compiled.grammar.min_tokens()
            if needed > max_tokens:
                raise BudgetTooSmallError(
                    f"the shortest valid output found needs {needed} tokens but max_tokens "
                    f"is {max_tokens}; raise max_tokens"
                )
        except UserError as exc:
            self._failed.append(BatchItem(key, error=exc))
            return
        constraint = compiled.grammar.start()
        self._compiled[key] = (compiled, constraint)
        self._decoder.add(key, prompt, constraint, max_tokens)

    def step(self) -> list[BatchItem]:
        """One decoding step for every request; the ones that finished."""
        done, self._failed = self._failed, []
        for outcome in self._decoder.step():
            compiled, constraint = self._compiled.pop(outcome.key)
            if outcome.result is None:
                done.append(BatchItem(outcome.key, error=outcome.error))
                continue
            result = outcome.result
            stats = result.stats
            stats.compile_ms = compiled.compile_ms
            stats.compile_cached = compiled.cached
            stats.grammar_engine = compiled.engine
            if not constraint.is_finished():
                error = GenerationIncomplete(
                    f"generation stopped before the output was complete ({stats.finish_reason})"
                )
                done.append(BatchItem(outcome.key, error=error))
                continue
            try:
                value = compiled.spec.parse(result.text)
            except (UserError, ValueError) as exc:
                done.append(BatchItem(outcome.key, error=exc))
                continue
            done.append(BatchItem(outcome.key, StructuredResult(value, result.text, stats)))
        return done


__all__: Sequence[str] = ["BatchItem", "StructuredBatch", "supports_batching"]
