"""What stops a run that is not converging, and the message that says why.

Small models loop: they call the same tool with the same arguments again and again, or
keep calling tools without ever answering. Every guard ends the run with a `Stop`
naming itself (`FinalEvent.stopped_by`) and a sentence a user can act on.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

# What ended a run that did not end with an answer (`FinalEvent.stopped_by`); these
# strings are stored in sessions and sent in JSON events: never rename one.
StopReason = Literal[
    "max_steps", "token_budget", "repeated_call", "context_window", "cancelled", "error"
]
STOP_REASONS: tuple[StopReason, ...] = get_args(StopReason)
MAX_STEPS: Final = "max_steps"
TOKEN_BUDGET: Final = "token_budget"
REPEATED_CALL: Final = "repeated_call"
CONTEXT_WINDOW: Final = "context_window"
CANCELLED: Final = "cancelled"
ERROR: Final = "error"


@dataclass(frozen=True)
class Stop:
    by: StopReason
    message: str


def stop_reason(value: object) -> StopReason | None:
    """A stop reason read back from storage: one of STOP_REASONS, or None."""
    return next((r for r in STOP_REASONS if r == value), None)


@dataclass(frozen=True)
class Limits:
    """The guards of one run.

    `max_tokens` is the total of tokens the model may generate over all steps of a run
    (prompt tokens are bounded by the context window instead); `max_identical_calls`
    is in how many steps of a run one call (same tool, same arguments) may be made.
    """

    max_steps: int = 8
    max_tokens: int = 4096
    max_identical_calls: int = 2
    context_window: int | None = None  # default: the model's context length

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_tokens", "max_identical_calls"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                from agent.errors import UserError

                raise UserError(f"{name} must be a whole number >= 1, got {value!r}")


def step_budget(
    limits: Limits, used_tokens: int, prompt_tokens: int, context: int, needed: int
) -> tuple[int, Stop | None]:
    """Tokens the next step may generate, or the guard that forbids the step.

    `needed` is the fewest tokens the step can end in (a forced call's shortest
    completion, say): a step that cannot finish is not started.
    """
    left = limits.max_tokens - used_tokens
    room = context - prompt_tokens
    if room < needed:
        return 0, Stop(
            CONTEXT_WINDOW,
            f"the conversation has {prompt_tokens} tokens and the context window is {context}: "
            f"no room for another step (it needs at least {needed}); start a new session",
        )
    if left < needed:
        return 0, Stop(
            TOKEN_BUDGET,
            f"the run generated {used_tokens} of its {limits.max_tokens}-token budget and the "
            f"next step needs at least {needed}; raise max_tokens",
        )
    return min(left, room), None


def call_key(name: str, arguments: Any) -> str:
    return name + "\x00" + json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)


class RepeatGuard:
    """Counts, per distinct call, the steps it was made in.

    A model stuck in a loop re-issues the same call step after step; the same call
    twice within one step (parallel duplicates) is waste, not a loop, and counts once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: Counter[str] = Counter()

    def check(self, calls: list[tuple[str, Any]]) -> Stop | None:
        """The stop when running `calls` would exceed the limit; else records them."""
        keys = {call_key(n, a) for n, a in calls}
        for key in sorted(keys):
            if self._seen[key] + 1 > self.limit:
                name = key.split("\x00", 1)[0]
                return Stop(
                    REPEATED_CALL,
                    f"the model called '{name}' with the same arguments in more than "
                    f"{self.limit} step(s); stopped to avoid a loop",
                )
        self._seen.update(keys)
        return None


def max_steps_stop(limit: int) -> Stop:
    return Stop(
        MAX_STEPS,
        f"the model was still calling tools after {limit} step(s); raise max_steps",
    )
