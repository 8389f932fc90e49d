"""Finding and loading the BFCL (Berkeley Function Calling Leaderboard) v4 data.

The data is not shipped with edge-agent (it is 11 MB and has its own release cycle).
It is looked for, in order, in `--data DIR`, in `$EDGE_AGENT_BFCL_DATA`, then in
`../shared/data/bfcl` next to the checkout. Only the single-turn categories that BFCL
scores by AST comparison (or, for the irrelevance ones, by the absence of a call) are
loaded here; the multi-turn and agentic ones need an executable backend.

Every file is JSON Lines despite its `.json` name: question files hold
`{"id", "question": [[{"role", "content"}, ...]], "function": [...]}` and
`possible_answer/` files hold `{"id", "ground_truth": [{name: {param: [values]}}]}`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import UserError

DATA_ENV_VAR = "EDGE_AGENT_BFCL_DATA"
FILE_PREFIX = "BFCL_v4_"
# The single-turn categories, in BFCL's own order. The live_* ones are user-contributed
# prompts; the others were written by the BFCL authors.
CATEGORIES = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_irrelevance",
)
HOW_TO_GET = (
    "get the gorilla repository's berkeley-function-call-leaderboard/bfcl_eval/data folder "
    "(https://github.com/ShishirPatil/gorilla), or run `pip download bfcl-eval --no-deps` and "
    "unzip bfcl_eval/data from the wheel; then pass --data DIR or set " + DATA_ENV_VAR
)


class BfclDataError(UserError):
    """The BFCL data is missing, incomplete or not in the expected format."""


@dataclass(frozen=True)
class Message:
    """One chat message of a case's prompt."""

    role: str
    content: str


@dataclass(frozen=True)
class PossibleCall:
    """One expected call: each parameter maps to the list of values BFCL accepts.

    A `""` among the values marks the parameter as optional (it may be omitted).
    """

    name: str
    parameters: dict[str, list[Any]]


@dataclass(frozen=True)
class BfclCase:
    """A single-turn BFCL test case.

    `functions` are the definitions exactly as in the data (BFCL type names such as
    `dict` and `float`): the checker needs the original names, and
    `tools.ToolRegistry.add_definitions` maps them to JSON Schema for a model.
    `possible_answers` is empty for the irrelevance categories, where the right answer
    is to make no call.
    """

    id: str
    category: str
    messages: tuple[Message, ...]
    functions: tuple[dict[str, Any], ...]
    possible_answers: tuple[PossibleCall, ...] = field(default=())

    @property
    def expects_no_call(self) -> bool:
        return is_irrelevance(self.category)

    def function(self, name: str) -> dict[str, Any] | None:
        """The definition named `name`, or None."""
        return next((f for f in self.functions if f.get("name") == name), None)


def is_irrelevance(category: str) -> bool:
    """Irrelevance categories are scored by the absence of a call, not by AST."""
    return "irrelevance" in category


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise UserError(
            f"unknown BFCL category '{category}'; expected one of: {', '.join(CATEGORIES)}"
        )
    return category


def default_data_dir() -> Path:
    """`../shared/data/bfcl` relative to the repository root of this checkout."""
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "bfcl"


def find_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The BFCL data directory: `explicit`, else $EDGE_AGENT_BFCL_DATA, else the default.

    Raises BfclDataError, with instructions to get the data, when it is not there.
    """
    if explicit is not None:
        path, origin = Path(explicit).expanduser(), "--data"
    elif os.environ.get(DATA_ENV_VAR):
        path, origin = Path(os.environ[DATA_ENV_VAR]).expanduser(), DATA_ENV_VAR
    else:
        path, origin = default_data_dir(), "default location"
    if not path.is_dir():
        raise BfclDataError(f"BFCL data not found at {path} ({origin}): {HOW_TO_GET}")
    return path


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BfclDataError(f"BFCL data file {path} is missing: {HOW_TO_GET}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BfclDataError(f"cannot read BFCL data file {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BfclDataError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise BfclDataError(f"{path}:{number}: expected a JSON object with a string 'id'")
        yield number, record


def _messages(question: Any, where: str) -> tuple[Message, ...]:
    # `question` is a list of turns, each a list of messages; the single-turn categories
    # have one turn, but flattening keeps any earlier context a future file may add.
    if not isinstance(question, list):
        raise BfclDataError(f"{where}: 'question' must be a list of turns")
    messages = []
    for turn in question:
        for message in turn if isinstance(turn, list) else [turn]:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise BfclDataError(f"{where}: a message needs a string 'content'")
            messages.append(Message(str(message.get("role", "user")), message["content"]))
    return tuple(messages)


def _possible_calls(ground_truth: Any, where: str) -> tuple[PossibleCall, ...]:
    if not isinstance(ground_truth, list):
        raise BfclDataError(f"{where}: 'ground_truth' must be a list of calls")
    calls = []
    for item in ground_truth:
        if not isinstance(item, dict) or len(item) != 1:
            raise BfclDataError(f"{where}: each ground-truth call must be {{name: {{...}}}}")
        ((name, parameters),) = item.items()
        if not isinstance(parameters, dict) or not all(
            isinstance(values, list) for values in parameters.values()
        ):
            raise BfclDataError(f"{where}: ground truth of '{name}' must map params to lists")
        calls.append(PossibleCall(name, parameters))
    return tuple(calls)


def load_cases(category: str, data_dir: str | os.PathLike[str] | None = None) -> list[BfclCase]:
    """Every case of a category, in file order, with its possible answers joined by id."""
    check_category(category)
    root = find_data_dir(data_dir)
    file_name = f"{FILE_PREFIX}{category}.json"
    answers: dict[str, tuple[PossibleCall, ...]] = {}
    if not is_irrelevance(category):
        answer_path = root / "possible_answer" / file_name
        for number, record in _read_jsonl(answer_path):
            answers[record["id"]] = _possible_calls(
                record.get("ground_truth"), f"{answer_path}:{number}"
            )
    cases = []
    question_path = root / file_name
    for number, record in _read_jsonl(question_path):
        where = f"{question_path}:{number}"
        functions = record.get("function")
        if not isinstance(functions, list) or not all(isinstance(f, dict) for f in functions):
            raise BfclDataError(f"{where}: 'function' must be a list of definitions")
        possible: tuple[PossibleCall, ...] = ()
        if not is_irrelevance(category):
            if record["id"] not in answers:
                raise BfclDataError(f"{where}: no possible answer for '{record['id']}'")
            possible = answers[record["id"]]
        cases.append(
            BfclCase(
                id=record["id"],
                category=category,
                messages=_messages(record.get("question"), where),
                functions=tuple(functions),
                possible_answers=possible,
            )
        )
    return cases
