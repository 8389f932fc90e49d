"""One chat completion on the model: run, checked, and told to whoever is listening.

A `Generation` is a task of its own that consumes the engine's stream and puts what it
gets on a queue (text and reasoning pieces, then the finished `Outcome`, or the error),
so the HTTP side can stream it or wait for it and may go away at any time. It holds the
scheduler's ticket until the engine's stream has ended, whatever the client does.

Before an outcome leaves the server it is checked: every call against the call schema
(its tool's parameters) and a `json_schema` answer against its schema. Under a grammar
they cannot fail; if they do (a grammar bug, or an engine behind this server that
guarantees nothing) the client gets a 500, never an invalid call presented as valid.
Output no grammar constrained (a model without LFM2's call tokens, free to write text
in auto mode) that merely looks like an invalid call stays text.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from agent.engines.base import ChatModel, PreparedStep, StepResult, TextPiece
from agent.errors import UserError
from agent.server import responses
from agent.server.responses import Outcome
from agent.server.scheduler import Scheduler, Ticket
from agent.server.stops import StopScanner, calls_before_stop
from agent.server.translate import ChatPlan
from agent.server.turns import TurnMemory
from agent.tracing.server_spans import CompletionSpan

log = logging.getLogger(__name__)

END = object()  # the last item on a generation's queue


class InvalidOutput(RuntimeError):
    """The engine produced a call or answer that does not validate (a 500)."""


@dataclass
class Generation:
    """A running completion: its queue of events and the ticket it holds."""

    ticket: Ticket
    events: asyncio.Queue[Any]
    task: asyncio.Task[None]

    @classmethod
    def start(
        cls,
        engine: ChatModel,
        scheduler: Scheduler,
        memory: TurnMemory,
        plan: ChatPlan,
        prepared: PreparedStep,
        max_tokens: int,
        ticket: Ticket,
        label: str,
        span: CompletionSpan | None = None,
    ) -> Generation:
        events: asyncio.Queue[Any] = asyncio.Queue()
        run = _Run(
            engine, scheduler, memory, plan, prepared, max_tokens, ticket, events, label, span
        )
        return cls(ticket, events, asyncio.create_task(run.main()))


@dataclass
class _Run:
    engine: ChatModel
    scheduler: Scheduler
    memory: TurnMemory
    plan: ChatPlan
    prepared: PreparedStep
    max_tokens: int
    ticket: Ticket
    events: asyncio.Queue[Any]
    label: str
    span: CompletionSpan | None = None

    async def main(self) -> None:
        plan, ticket = self.plan, self.ticket
        # Stop sequences end free text; a JSON answer is completed whatever it contains.
        stops = plan.stops if plan.step.answer is None else ()
        scanner = StopScanner(stops)

        def should_stop() -> bool:  # read on the model thread before every token
            return ticket.cancel.is_set() or scanner.hit

        text: list[str] = []
        reasoning: list[str] = []
        result: StepResult | None = None
        status = "ok"
        outcome: Outcome | None = None
        error: BaseException | None = None
        try:
            async for item in self.engine.stream(self.prepared, self.max_tokens, should_stop):
                if isinstance(item, TextPiece):
                    if item.kind == "reasoning":
                        reasoning.append(item.text)
                        self.events.put_nowait(item)
                    else:
                        visible = scanner.feed(item.text)
                        if visible:
                            text.append(visible)
                            self.events.put_nowait(TextPiece(visible))
                else:
                    result = item
            tail = scanner.flush()
            if tail:
                text.append(tail)
                self.events.put_nowait(TextPiece(tail))
            assert result is not None, "the engine's stream ended without a result"
            if scanner.hit and result.stats.finish_reason == "cancelled":
                result.stats.finish_reason = "stop_sequence"  # stopped for the stop string
            if ticket.cancel.is_set() or result.stats.finish_reason == "cancelled":
                status = "cancelled"
            else:
                outcome = self._outcome(result, "".join(text), "".join(reasoning), scanner)
                self.events.put_nowait(outcome)
                self._log(outcome)
        except asyncio.CancelledError:  # the event loop is closing
            status = "cancelled"
            raise
        except UserError as exc:  # a 400 for the client; nothing went wrong here
            status, error = "refused", exc
            log.info("%s refused: %s", self.label, exc)
            self.events.put_nowait(exc)
        except Exception as exc:
            status, error = "failed", exc
            log.error("%s failed: %s: %s", self.label, type(exc).__name__, exc,
                      exc_info=not isinstance(exc, InvalidOutput))  # fmt: skip
            self.events.put_nowait(exc)
        finally:
            counters = self.scheduler.counters
            if status == "cancelled":
                counters.cancelled += 1
                generated = result.stats.generated_tokens if result else 0
                log.info("%s cancelled after %d token(s)", self.label, generated,
                         extra={"edge_agent_generated": generated})  # fmt: skip
            elif status == "failed":
                counters.failed += 1
            elif status == "ok":
                counters.completed += 1
            self.scheduler.release(ticket)
            if self.span is not None:
                self.span.finish(
                    status,
                    result.stats if result else None,
                    queue_wait_s=ticket.queue_wait_s,
                    content=outcome.content if outcome else None,
                    error=error,
                )
            self.events.put_nowait(END)

    def _outcome(
        self, result: StepResult, text: str, reasoning: str, scanner: StopScanner
    ) -> Outcome:
        plan = self.plan
        calls = list(result.calls)
        exact = True  # the client sees all the model generated: remember it for the cache
        if scanner.hit:
            exact = False
            before = calls_before_stop(result.raw, plan.stops)
            if before is not None:
                calls = calls[:before]
        if not plan.parallel_calls and len(calls) > 1:
            calls, exact = calls[:1], False
        from_text = self.engine.provider == "mlx" and not result.stats.constrained
        if calls and from_text and not _valid_calls(calls, plan):
            # No grammar decoded these (a model without LFM2's call tokens, in auto mode):
            # what only looks like a call is the model's text, not a call to pass on.
            calls = []
        _check_calls(calls, plan.step.call_schema)
        content: str | None = text
        if plan.step.answer is not None and not calls:
            answer = result.answer_text if result.answer_text is not None else text
            try:
                plan.step.answer.parse(answer)
            except Exception as exc:
                raise InvalidOutput(f"the answer does not match response_format: {exc}") from None
            content = answer
        stats = result.stats
        outcome = Outcome(
            content=content if content or not calls else None,
            reasoning=reasoning or None,
            tool_calls=responses.tool_calls(calls),
            finish_reason=responses.finish_reason(stats, bool(calls)),
            stats=stats,
            queue_wait_s=self.ticket.queue_wait_s,
        )
        if exact:
            self.memory.remember(plan.conversation, outcome.message(), result.raw)
        return outcome

    def _log(self, outcome: Outcome) -> None:
        s = outcome.stats
        log.info(
            "%s %s | queue %.0f ms | prompt %d tok (%d cached) | TTFT %.0f ms | prefill %.0f "
            "tok/s | decode %.1f tok/s | %d tok%s",
            self.label, outcome.finish_reason, outcome.queue_wait_s * 1000, s.prompt_tokens,
            s.cached_prompt_tokens, s.ttft_s * 1000, s.prefill_tps, s.decode_tps,
            s.generated_tokens, f" | {s.grammar_engine}" if s.grammar_engine else "",
            extra={"edge_agent_outcome": outcome},
        )  # fmt: skip


def _valid_calls(calls: list[Any], plan: ChatPlan) -> bool:
    try:
        _check_calls(calls, plan.step.call_schema)
    except InvalidOutput:
        return False
    return True


def _check_calls(calls: list[Any], call_schema: dict[str, Any] | None) -> None:
    if not calls:
        return
    if call_schema is None:
        raise InvalidOutput("the model called a tool although tool_choice was none")
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        call_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for call in calls:
        if call.error is not None:
            raise InvalidOutput(f"the model made an invalid call: {call.error}")
        errors = list(validator.iter_errors({"name": call.name, "arguments": call.arguments}))
        if errors:
            raise InvalidOutput(f"the call of '{call.name}' does not validate: {errors[0].message}")
