"""The three ways a BFCL case is put to a model, each as one `StepRequest` and a reader.

- `constrained`: the request the `Agent`'s first step sends (its system prompt, the
  tools in the chat template, the registry's call schema) with tool choice `required`,
  or `auto` in the irrelevance categories, where the right answer is no call. The
  grammar then guarantees every call it decodes. Like the baseline, it is told whether
  the category expects several calls, through the API's own knob: `max_parallel_calls`
  is 1 outside the parallel categories (OpenAI's `parallel_tool_calls: false`).
- `free`: no grammar. A model with native call tokens (LFM2) or a server with its own
  tool-call parser gets the same request with tool choice `auto` on an engine that
  leaves call blocks unconstrained, and its calls come from its own parser. A model
  without call tokens gets BFCL's prompt for prompt-based models, and its
  `[func(param=value)]` text is parsed by `bfcl_parse`.
- `baseline`: the naive prompt (`bfcl_prompts.baseline_prompt`) and a plain JSON-schema
  grammar for `{"name", "arguments"}` (an array of them in the parallel categories),
  with each definition's properties in declared order; no grammar in the irrelevance
  categories, where the JSON is read if the model wrote one.

One step, no tool execution: BFCL functions have no implementation and BFCL scores the
calls of the first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agent.constrained.defaults import DEFAULT_MAX_PARALLEL_CALLS, LOOSE_JSON_WHITESPACE
from agent.eval.bfcl_data import BfclCase
from agent.eval.bfcl_parse import parse_bfcl_calls
from agent.eval.bfcl_prompts import baseline_prompt, bfcl_prompt, split_system
from agent.messages import as_messages

if TYPE_CHECKING:
    from agent.engines.base import ChatModel, ChoiceMode, StepRequest, StepResult
    from agent.sampling import SamplingParams
    from tools import ToolRegistry

Mode = Literal["constrained", "free", "baseline"]
MODES: tuple[Mode, ...] = ("constrained", "free", "baseline")
# --mode values that stand for several modes.
MODE_SETS: dict[str, tuple[Mode, ...]] = {
    "constrained": ("constrained",),
    "free": ("free",),
    "baseline": ("baseline",),
    "both": ("constrained", "free"),
    "all": MODES,
}
FreePrompt = Literal["native", "bfcl"]
# llama.cpp's JSON-schema grammars allow this between tokens (its SPACE_RULE: nothing,
# a space, or one or two newlines and up to 20 spaces or tabs); the baseline mirrors it.
BASELINE_WHITESPACE = LOOSE_JSON_WHITESPACE


def case_registry(case: BfclCase) -> ToolRegistry:
    """The case's functions as a registry (BFCL types mapped to JSON Schema)."""
    from tools import ToolRegistry

    registry = ToolRegistry()
    registry.add_definitions(list(case.functions), replace=True)
    return registry


def many_calls(case: BfclCase) -> bool:
    """Whether the category expects several calls in one answer."""
    return "parallel" in case.category


def has_native_calls(model: Any) -> bool:
    """Whether the engine reads calls with the model's own format: a local model with
    LFM2's call tokens, or a server (its tool-call parser); not a local model without."""
    return bool(getattr(model, "native_calls", True))


def free_prompt_for(model: Any, choice: str = "auto") -> FreePrompt:
    """`auto`: the model's own format where it has one, else BFCL's prompt."""
    if choice in ("native", "bfcl"):
        return choice  # type: ignore[return-value]
    return "native" if has_native_calls(model) else "bfcl"


def free_engine(model: ChatModel, prompt: FreePrompt) -> ChatModel:
    """The engine for free mode: for a local model with call tokens, a twin that leaves
    call blocks unconstrained (same weights, same prompt cache)."""
    from agent.engines.local import LocalChatModel

    if prompt == "native" and isinstance(model, LocalChatModel) and model.native_calls:
        return LocalChatModel(model.model, native_calls=False)
    return model


@dataclass
class ModeRequest:
    """What one case sends in one mode, and how its output becomes calls."""

    mode: Mode
    request: StepRequest
    reader: str  # "calls" (the engine's parsed calls), "bfcl" (text), "json" (answer)


def build_request(
    mode: Mode,
    case: BfclCase,
    sampling: SamplingParams,
    free_prompt: FreePrompt = "native",
    call_whitespace: str | None = None,
    loop_guard: bool = False,
) -> ModeRequest:
    """The step request of `case` in `mode` (see the module docstring); `call_whitespace`
    is what constrained mode's call grammar allows between JSON tokens, `loop_guard`
    turns on its guard against loops inside values."""
    from agent.engines.base import StepRequest
    from agent.prompting import system_prompt

    no_call = case.expects_no_call
    if mode == "constrained" or (mode == "free" and free_prompt == "native"):
        registry = case_registry(case)
        own = split_system(case)
        choice: ChoiceMode = "auto" if no_call or mode == "free" else "required"
        request = StepRequest(
            system=system_prompt(own.system, json_calls=True),
            messages=as_messages(own.messages),
            sampling=sampling,
            tools=registry.openai_tools(),
            tool_choice=choice,
            call_schema=registry.call_schema(),
            whitespace=call_whitespace if mode == "constrained" else "",
            loop_guard=loop_guard and mode == "constrained",
            max_parallel_calls=DEFAULT_MAX_PARALLEL_CALLS if many_calls(case) else 1,
        )
        return ModeRequest(mode, request, "calls")
    if mode == "free":
        prompt = bfcl_prompt(case)
        request = StepRequest(prompt.system or "", as_messages(prompt.messages), sampling)
        return ModeRequest(mode, request, "bfcl")
    if mode == "baseline":
        prompt = baseline_prompt(case, many_calls(case))
        answer = None if no_call else baseline_answer(case)
        request = StepRequest(
            prompt.system or "",
            as_messages(prompt.messages),
            sampling,
            answer=answer,
            whitespace=BASELINE_WHITESPACE,
        )
        return ModeRequest(mode, request, "json")
    raise ValueError(f"unknown mode {mode!r}")


def baseline_schema(case: BfclCase) -> dict[str, Any]:
    """A plain JSON Schema of the answer: one call, or an array of calls."""
    call = case_registry(case).call_schema()
    if many_calls(case):
        return {"type": "array", "items": call, "minItems": 1}
    return call


def baseline_answer(case: BfclCase) -> Any:
    from agent.constrained.output_types import resolve_output_type

    return resolve_output_type(baseline_schema(case))


def read_calls(mode_request: ModeRequest, result: StepResult) -> list[dict[str, Any]]:
    """The calls of a step as results-file dicts; [] when none was made or the output
    did not parse (any call the engine could not read spoils the whole output)."""
    if mode_request.reader == "calls":
        if any(call.error for call in result.calls):
            return []
        return [{"name": call.name, "arguments": call.arguments} for call in result.calls]
    if mode_request.reader == "bfcl":
        return parse_bfcl_calls(result.raw)
    text = result.answer_text if result.answer_text is not None else result.raw
    return json_calls(text)


def json_calls(text: str) -> list[dict[str, Any]]:
    """Calls from text that is a JSON call object or array of them; [] otherwise."""
    from agent.tool_parser import parse_payload

    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return []
    parsed = parse_payload(stripped)
    if any(call.error for call in parsed):
        return []
    return [{"name": call.name, "arguments": call.arguments} for call in parsed]
