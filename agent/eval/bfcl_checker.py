"""BFCL's AST verdict on the calls a model made for one case.

The rules mirror `bfcl_eval`'s `ast_checker` (Python categories) so our accuracy is the
leaderboard's accuracy:

- simple categories: exactly one call, checked against the first definition;
- `multiple`: as many calls as expected (one), checked against the expected function;
- `parallel*`: as many calls as expected, matched in any order (greedily, in the order
  of the possible answers, each taking the first unmatched call that passes);
- irrelevance categories: correct when no call was made.

Per call: the function name, then required parameters present, then each given
parameter known and of the right type and value (`bfcl_values`), then every expected
parameter given unless `""` marks it optional. The first failure names the error type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from agent.eval.bfcl_data import BfclCase, BfclDataError, PossibleCall
from agent.eval.bfcl_values import OPTIONAL, check_value


class NamedCall(Protocol):
    """Anything with a `name` and an `arguments` dict, such as `tools.ToolCall`."""

    name: str
    arguments: dict[str, Any]


# `{"name": str, "arguments": {...}}` (the results-file form) or a ToolCall-like object.
Call: TypeAlias = "Mapping[str, Any] | NamedCall"


@dataclass(frozen=True)
class Verdict:
    """BFCL's verdict on one case: `error_type` is BFCL's name for the first failure."""

    valid: bool
    error_type: str | None = None
    error: str = ""


CORRECT = Verdict(True)


def _fail(error_type: str, error: str) -> Verdict:
    return Verdict(False, error_type, error)


def _parts(call: Call) -> tuple[str, Mapping[str, Any]]:
    if isinstance(call, Mapping):
        name, arguments = call.get("name"), call.get("arguments", {})
    else:
        name, arguments = getattr(call, "name", None), getattr(call, "arguments", None)
    if not isinstance(name, str) or not isinstance(arguments, Mapping):
        raise TypeError(f"a call needs a string 'name' and an 'arguments' mapping: {call!r}")
    return name, arguments


def check_call(function: Mapping[str, Any], call: Call, answer: PossibleCall) -> Verdict:
    """One call against one definition and its possible values (BFCL's simple check)."""
    name, arguments = _parts(call)
    expected_name = function.get("name")
    if name != expected_name:
        return _fail(
            "simple_function_checker:wrong_func_name",
            f"called '{name}', expected '{expected_name}'",
        )
    schema = function.get("parameters") or {}
    properties: Mapping[str, Any] = schema.get("properties") or {}
    for param in schema.get("required") or []:
        if param not in arguments:
            return _fail(
                "simple_function_checker:missing_required",
                f"missing required parameter '{param}'",
            )
    for param, value in arguments.items():
        if param not in properties or param not in answer.parameters:
            return _fail(
                "simple_function_checker:unexpected_param", f"unexpected parameter '{param}'"
            )
        rejection = check_value(param, value, properties[param], answer.parameters[param])
        if rejection is not None:
            return _fail(rejection.error_type, rejection.message)
    for param, values in answer.parameters.items():
        if param not in arguments and OPTIONAL not in values:
            return _fail(
                "simple_function_checker:missing_optional",
                f"parameter '{param}' not given, and the answer does not mark it optional",
            )
    return CORRECT


def _definition(case: BfclCase, name: str) -> Mapping[str, Any]:
    function = case.function(name)
    if function is None:
        raise BfclDataError(f"{case.id}: the possible answer calls '{name}', which is not defined")
    return function


def _check_simple(case: BfclCase, calls: Sequence[Call]) -> Verdict:
    if len(calls) != 1:
        return _fail("simple_function_checker:wrong_count", f"{len(calls)} calls, expected 1")
    return check_call(case.functions[0], calls[0], case.possible_answers[0])


def _check_multiple(case: BfclCase, calls: Sequence[Call]) -> Verdict:
    expected = len(case.possible_answers)
    if len(calls) != expected:
        return _fail(
            "multiple_function_checker:wrong_count", f"{len(calls)} calls, expected {expected}"
        )
    answer = case.possible_answers[0]
    return check_call(_definition(case, answer.name), calls[0], answer)


def _check_parallel(case: BfclCase, calls: Sequence[Call]) -> Verdict:
    expected = len(case.possible_answers)
    if len(calls) != expected:
        return _fail(
            "parallel_function_checker_no_order:wrong_count",
            f"{len(calls)} calls, expected {expected}",
        )
    unmatched = list(range(len(calls)))
    for n, answer in enumerate(case.possible_answers):
        function = _definition(case, answer.name)
        match = next((i for i in unmatched if check_call(function, calls[i], answer).valid), None)
        if match is None:
            return _fail(
                "parallel_function_checker_no_order:cannot_find_match",
                f"no call matches expected call {n} ('{answer.name}')",
            )
        unmatched.remove(match)
    return CORRECT


def score_case(case: BfclCase, calls: Sequence[Call]) -> Verdict:
    """BFCL's verdict on `calls` (`[]`: no call, or output that did not parse) for `case`."""
    if case.expects_no_call:
        if calls:
            return _fail(
                "irrelevance_error:decoder_success",
                f"{len(calls)} call(s) made where none of the functions is relevant",
            )
        return CORRECT
    if "parallel" in case.category:
        return _check_parallel(case, calls)
    if "multiple" in case.category:
        return _check_multiple(case, calls)
    return _check_simple(case, calls)
