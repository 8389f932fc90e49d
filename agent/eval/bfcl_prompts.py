"""The prompts of a BFCL run, one set per mode.

- `constrained` and native `free` use edge-agent's own prompt (the agent's system
  prompt and the tools in the chat template), so they measure what a user of `Agent`
  gets; nothing here is involved beyond splitting the case into system and messages.
- `free` for a model without native call tokens uses BFCL's own prompt for
  prompt-based models, which asks for `[func(param=value)]`, so that the comparison
  with `constrained` measures the grammar, not a prompt the model was never asked in.
- `baseline` is the naive set-up anyone can bolt on: a short system prompt holding the
  functions' JSON, and a plain JSON-schema grammar for `{"name", "arguments"}`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.eval.bfcl_data import BfclCase

# BFCL's default system prompt for prompt-based ("non-FC") models: the format
# `ret_fmt=python&tool_call_tag=False&func_doc_fmt=json&prompt_fmt=plaintext&style=classic`
# of bfcl_eval/constants/default_prompts.py (gorilla repository, Apache-2.0), assembled
# as BFCL assembles it, quirks included (no space between the first two sentences, two
# spaces where the empty parameter-type hint goes).
BFCL_SYSTEM_PROMPT = (
    "You are an expert in composing functions."
    "You are given a question and a set of possible functions. Based on the question, you "
    "will need to make one or more function/tool calls to achieve the purpose. If none of "
    "the functions can be used, point it out. If the given question lacks the parameters "
    "required by the function, also point it out."
    "\n\n"
    "You should only return the function calls in your response.\n\nIf you decide to "
    "invoke any of the function(s), you MUST put it in the format of [func_name1("
    "params_name1=params_value1, params_name2=params_value2...), func_name2(params)].  You "
    "SHOULD NOT include any other text in the response."
    "\n\n"
    "At each turn, you should try your best to complete the tasks requested by the user "
    "within the current turn. Continue to output functions to call until you have "
    "fulfilled the user's request to the best of your ability. Once you have no more "
    "functions to call, the system will consider the current turn complete and proceed to "
    "the next turn or task."
    "\n\n"
    "Here is a list of functions in json format that you can invoke.\n{functions}\n"
)
# BFCL appends this to every Python function's description before it prompts a model.
PYTHON_HINT = " Note that the provided function is in Python 3 syntax."

# The naive baseline: what someone with a JSON-schema grammar and no agent framework
# would write. The functions go in as the data has them (BFCL's type names included).
# `agent.prompting.PLAIN_TOOL_LIST` adopted this wording for models without call
# tokens; the reference keeps its own copy so that it does not move when the agent's
# prompt does.
BASELINE_SYSTEM_PROMPT = (
    "You can call these functions (JSON):\n{functions}\n"
    "To call functions, reply with only {shape}, where arguments maps each parameter "
    "name to its value. If none of the functions fits the request, say so in plain words."
)
BASELINE_ONE_CALL = 'a JSON object {"name": <function name>, "arguments": {...}}'
BASELINE_CALLS = (
    'a JSON array of calls [{"name": <function name>, "arguments": {...}}, ...], one per call'
)


@dataclass(frozen=True)
class CasePrompt:
    """A case as one model step sees it: a system prompt and the chat messages."""

    system: str | None
    messages: list[dict[str, Any]]


def split_system(case: BfclCase) -> CasePrompt:
    """The case's own system messages (joined) and the rest of its conversation.

    A few live cases carry a system message; edge-agent's prompt builders add their
    instructions to it rather than sending two system turns.
    """
    system = [m.content for m in case.messages if m.role == "system"]
    rest = [{"role": m.role, "content": m.content} for m in case.messages if m.role != "system"]
    return CasePrompt("\n\n".join(system) if system else None, rest)


def with_python_hint(functions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The definitions as BFCL shows them to a prompt-based model (a copy)."""
    out = copy.deepcopy(list(functions))
    for function in out:
        function["description"] = f"{function.get('description') or ''}{PYTHON_HINT}"
    return out


def bfcl_prompt(case: BfclCase) -> CasePrompt:
    """BFCL's prompt-based set-up: its system prompt first, then the case's own."""
    functions = json.dumps(with_python_hint(case.functions), indent=4)
    own = split_system(case)
    system = BFCL_SYSTEM_PROMPT.format(functions=functions)
    if own.system:
        system = f"{system}\n\n{own.system}"
    return CasePrompt(system, own.messages)


def baseline_prompt(case: BfclCase, many_calls: bool) -> CasePrompt:
    """The naive prompt; `many_calls` asks for an array of calls (parallel categories)."""
    functions = json.dumps(list(case.functions), ensure_ascii=False)
    shape = BASELINE_CALLS if many_calls else BASELINE_ONE_CALL
    own = split_system(case)
    system = BASELINE_SYSTEM_PROMPT.format(functions=functions, shape=shape)
    if own.system:
        system = f"{system}\n\n{own.system}"
    return CasePrompt(system, own.messages)
