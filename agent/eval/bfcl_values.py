"""BFCL's AST rules for one parameter value (Python categories).

These mirror `bfcl_eval`'s `ast_checker` decision for decision, quirks included, so a
score computed here is a BFCL score: a type check against the declared BFCL type (with
the possible answers' own type accepted as a "variable"), then a value check that
normalises strings, compares lists element-wise, and checks dicts and lists of dicts
one level deep. The error-type names are BFCL's, so reports can be compared with the
leaderboard's.

Values are compared with Python `==`, as BFCL does: 1 == 1.0 == True, and lists and
dicts compare by content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from agent.eval.bfcl_data import BfclDataError

# BFCL type name -> the Python type a value must have. `tuple` values arrive as lists
# once JSON-encoded, and BFCL checks `any` as a string.
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
# Types whose elements are type-checked too (one level deep, as BFCL does).
_ELEMENT_CHECKED = ("array", "tuple")
OPTIONAL = ""  # among the possible values: the parameter may be omitted
_STRIPPED = re.compile(r"[ ,./\-_*^]")


def normalize_string(text: str) -> str:
    """BFCL's string normalisation: drop spaces and `,./-_*^`, lowercase, ' -> ".

    So "April 1, 2024" matches "april 1 2024": the benchmark grades the call, not the
    model's spelling of punctuation.
    """
    return _STRIPPED.sub("", text).lower().replace("'", '"')


@dataclass(frozen=True)
class Rejection:
    """Why a value was rejected: BFCL's error type and a message."""

    error_type: str
    message: str


def _normalized(value: Any) -> Any:
    return normalize_string(value) if type(value) is str else value


def _answer_type(answers: list[Any]) -> type | None:
    """The type of the first possible value that is not the optional marker."""
    for answer in answers:
        if answer != OPTIONAL:
            return type(answer)
    return None


def python_type(type_name: Any, param: str) -> type:
    try:
        return PYTHON_TYPES[type_name]
    except (KeyError, TypeError):
        raise BfclDataError(
            f"parameter '{param}' has type {type_name!r}, which BFCL's Python checker "
            f"does not know (expected one of: {', '.join(PYTHON_TYPES)})"
        ) from None


def _elements_match(value: list[Any], answer: list[Any], element_type: type) -> bool:
    """Each element has the declared element type or the type of the answer's elements."""
    answer_element_type = _answer_type(answer)
    return all(
        type(item) is element_type
        or (answer_element_type is not None and type(item) is answer_element_type)
        for item in value
    )


def check_type(
    param: str, value: Any, answers: list[Any], type_name: Any, element_type: type | None
) -> tuple[Rejection | None, bool]:
    """(error or None, is_variable).

    `is_variable` is BFCL's escape hatch: when the possible answers are of another type
    than declared (a variable name given as a string, say), a value of the answers'
    type passes, and the value is then compared as-is rather than normalised.
    """
    expected = python_type(type_name, param)
    answer_type = _answer_type(answers)
    is_variable = answer_type is not None and answer_type is not expected
    element_failed = False
    if type(value) is expected:
        if element_type is None:
            return None, is_variable
        # One possible answer whose elements all type-check is enough; a non-list answer
        # (such as the optional marker) does not constrain the elements.
        items = cast(list[Any], value)  # element types are checked for arrays and tuples only
        for answer in answers:
            if type(answer) is not list or _elements_match(items, answer, element_type):
                return None, is_variable
        element_failed = True
    if answer_type is not None and type(value) is answer_type:
        if element_failed:
            assert element_type is not None  # only element checks fail
            return Rejection(
                "type_error:nested",
                f"elements of '{param}' are not of type {element_type.__name__}: {value!r}",
            ), True
        return None, True
    return Rejection(
        "type_error:simple",
        f"'{param}' should be of type {type_name}, got {type(value).__name__}: {value!r}",
    ), is_variable


def check_string(param: str, value: str, answers: list[Any]) -> Rejection | None:
    allowed = [normalize_string(a) for a in answers if type(a) is str]
    if normalize_string(value) in allowed:
        return None
    return Rejection(
        "value_error:string", f"'{param}' = {value!r} is not one of {answers} (normalised)"
    )


def _normalized_list(answer: Any) -> list[Any]:
    # BFCL iterates whatever the answer is; the optional marker "" yields [], so an
    # empty list matches an optional list parameter.
    if isinstance(answer, (list, tuple, str)):
        return [_normalized(item) for item in answer]
    return [answer]


def check_list(param: str, value: list[Any], answers: list[Any]) -> Rejection | None:
    if [_normalized(item) for item in value] in [_normalized_list(a) for a in answers]:
        return None
    return Rejection("value_error:list/tuple", f"'{param}' = {value!r} is not one of {answers}")


def check_dict(param: str, value: Any, answers: list[Any]) -> Rejection | None:
    """A dict value against each possible dict; keys one level deep, values by `==`.

    As in BFCL, when a possible dict rejects the value, the last failing check (the
    missing-key check runs after the value check) names the error.
    """
    error = Rejection("dict_checker:unclear", f"'{param}' = {value!r} matches no answer")
    for answer in answers:
        if answer == OPTIONAL:
            continue
        error = Rejection("dict_checker:unclear", f"'{param}' = {value!r} matches no answer")
        if not isinstance(value, dict) or not isinstance(answer, dict):
            error = Rejection("value_error:dict_value", f"'{param}' = {value!r} is not {answer}")
            continue
        matched = True
        for key, item in value.items():
            if key not in answer:
                error = Rejection("value_error:dict_key", f"unexpected key '{key}' in '{param}'")
                matched = False
                break
            allowed = [_normalized(a) for a in answer[key]]
            if _normalized(item) not in allowed:
                error = Rejection(
                    "value_error:dict_value",
                    f"'{param}.{key}' = {item!r} is not one of {answer[key]}",
                )
                matched = False
                break
        for key, allowed in answer.items():
            if key not in value and OPTIONAL not in allowed:
                error = Rejection("value_error:dict_key", f"missing key '{key}' in '{param}'")
                matched = False
                break
        if matched:
            return None
    return error


def check_list_of_dicts(param: str, value: list[Any], answers: list[Any]) -> Rejection | None:
    """Dicts compared position by position with one possible list of dicts."""
    error = Rejection("list_dict_checker:unclear", f"'{param}' = {value!r} matches no answer")
    for answer in answers:
        size = len(answer) if hasattr(answer, "__len__") else None
        if size != len(value):
            error = Rejection(
                "value_error:list_dict_count",
                f"'{param}' has {len(value)} dicts, a possible answer has {size}",
            )
            continue
        failed = None
        for item, expected in zip(value, answer, strict=True):
            failed = check_dict(param, item, [expected])
            if failed is not None:
                break
        if failed is None:
            return None
        error = failed
    return error


def check_value(
    param: str, value: Any, spec: dict[str, Any], answers: list[Any]
) -> Rejection | None:
    """A model's value for `param` (declared by `spec`) against its possible values."""
    type_name = spec.get("type")
    element_type = None
    if type_name in _ELEMENT_CHECKED and isinstance(spec.get("items"), dict):
        element_type = python_type(spec["items"].get("type"), f"{param}[]")
    if type_name == "tuple" and type(value) is tuple:
        value = list(value)
    if type_name == "float" and type(value) is int:
        value = float(value)  # Python would accept an int where a float is declared
    error, is_variable = check_type(param, value, answers, type_name, element_type)
    if error is not None:
        return error
    if not is_variable:
        expected = python_type(type_name, param)  # known: check_type passed
        if expected is dict:
            return check_dict(param, value, answers)
        if expected is list and element_type is dict:
            return check_list_of_dicts(param, value, answers)
        if expected is str:
            return check_string(param, value, answers)
        if expected is list:
            return check_list(param, value, answers)
    if value in answers:
        return None
    return Rejection("value_error:others", f"'{param}' = {value!r} is not one of {answers}")
