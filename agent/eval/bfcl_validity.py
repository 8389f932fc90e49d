"""Whether an output's calls are well-formed: they parse and validate against the schema.

This is the structural half of a result, apart from BFCL's accuracy (which also needs
the right values): a call is valid when it names one of the case's functions and its
arguments validate, with format checks, against the same JSON Schema the grammar is
compiled from (`ToolRegistry.call_schema`: the definition's parameters mapped to JSON
Schema, no undeclared arguments). An output is valid when it made at least one call
and every call is valid; in the irrelevance categories, where the right answer is no
call, an output is valid when none of its calls (if any) is invalid.

`calls` is `[]` for output that did not parse, so such output counts as invalid
wherever a call was expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.eval.bfcl_data import BfclCase


class CaseValidator:
    """Validates calls against one case's functions (schemas compiled once)."""

    def __init__(self, case: BfclCase) -> None:
        from tools import ToolRegistry

        self.case = case
        self.registry = ToolRegistry()
        self.registry.add_definitions(list(case.functions), replace=True)
        self._validators: dict[str, Any] = {}

    def call_errors(self, call: Mapping[str, Any]) -> list[str]:
        """Why one `{"name", "arguments"}` call is invalid (empty when it is valid)."""
        name = call.get("name")
        if not isinstance(name, str) or name not in self.registry:
            return [f"unknown function {name!r}"]
        validator = self._validators.get(name)
        if validator is None:
            import jsonschema

            schema = self.registry.call_schema(name)
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
            validator = self._validators[name] = cls(schema, format_checker=cls.FORMAT_CHECKER)
        value = {"name": name, "arguments": call.get("arguments")}
        return [error.message for error in validator.iter_errors(value)]

    def output_valid(self, calls: Sequence[Mapping[str, Any]]) -> bool:
        """See the module docstring."""
        if not calls and not self.case.expects_no_call:
            return False
        return all(not self.call_errors(call) for call in calls)


def output_valid(case: BfclCase, calls: Sequence[Mapping[str, Any]]) -> bool:
    """`CaseValidator(case).output_valid(calls)`."""
    return CaseValidator(case).output_valid(calls)
