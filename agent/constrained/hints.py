"""Literal text inside a grammar's patterns: stepping stones for the completion planner.

The planner finishes an output greedily, one preferred byte at a time. Behind a wildcard
(`^(.*?)\\.alfred3?workflow$`, `^A|0\\.0\\.0\\.0/0$`) every byte is allowed, so greedy
choice never reaches the literal the pattern waits for and no plan is found; the request
then falls to the automaton engine, which takes seconds to tens of seconds to build.
The literal runs of the patterns (`.alfred`, `workflow`, `0.0.0.0/0`) are what such a
pattern needs: the planner tries them when it is stuck (see `completion.Planner`).
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, overload

MAX_HINTS = 12
_MIN_LENGTH = 2
_META = set("()|[]^$.*+?{}")
_LITERAL_ESCAPES = set(".\\/-()[]{}|^$*+?#&~ \"'")


def pattern_hints(grammar_text: str) -> tuple[bytes, ...]:
    """The witness runs of the regexes in an llguidance grammar (JSON Schema patterns,
    pattern property names, Lark regex terminals), longest first."""
    try:
        grammar = json.loads(grammar_text)
    except ValueError:
        return ()
    runs: list[str] = []
    for entry in grammar.get("grammars", []) if isinstance(grammar, dict) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("json_schema") is not None:
            runs += _schema_runs(entry["json_schema"])
        lark = entry.get("lark_grammar")
        if isinstance(lark, str):
            for regex in _lark_regexes(lark):
                runs += [r for r in witness_runs(regex) if '"' not in r]
    return _best(runs)


class LazyHints(Sequence[bytes]):
    """`pattern_hints(grammar_text)`, read when the planner first asks for them.

    Most plans never get stuck, and reading a large grammar (a 50-tool call grammar is
    ~100 KB of JSON) costs milliseconds of a compile that should take a few tens.
    """

    def __init__(self, grammar_text: str) -> None:
        self._text = grammar_text
        self._hints: tuple[bytes, ...] | None = None
        self._lock = threading.Lock()

    def _get(self) -> tuple[bytes, ...]:
        with self._lock:
            if self._hints is None:
                self._hints = pattern_hints(self._text)
            return self._hints

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[bytes, ...]: ...
    def __getitem__(self, index: int | slice) -> bytes | tuple[bytes, ...]:
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._get())

    def __bool__(self) -> bool:
        return bool(self._get())


def schema_hints(schema: Any) -> tuple[bytes, ...]:
    """The witness runs of a JSON Schema's patterns, in their JSON-encoded form.

    For a grammar made from the schema by another route (the regex compiler's regex),
    whose own text holds the JSON structure as well as the patterns.
    """
    return _best(_schema_runs(schema))


def _schema_runs(schema: Any) -> list[str]:
    """Whole-pattern witnesses first, then the runs of every pattern.

    A whole witness (`0000-01-01` for a date pattern) gets the planner past a value in
    one step; a run only past one wildcard. So witnesses are never crowded out of the
    `MAX_HINTS` by longer runs.
    """
    # A pattern matches the decoded string; the output holds its JSON form.
    patterns = _schema_patterns(schema)
    wholes = [w for p in patterns if (w := pattern_witness(p))]
    runs = [run for p in patterns for run in witness_runs(p)]
    return [json.dumps(run, ensure_ascii=False)[1:-1] for run in (*wholes, *runs)]


def _best(runs: list[str]) -> tuple[bytes, ...]:
    """At most `MAX_HINTS` distinct hints: in the order given (most telling first),
    each group of equal rank longest first."""
    unique = list(dict.fromkeys(r for r in runs if len(r) >= _MIN_LENGTH))[:MAX_HINTS]
    return tuple(r.encode("utf-8") for r in unique)


def witness_runs(regex: str) -> list[str]:
    """Shortest witnesses of the regex's runs of simple atoms, in order.

    A run is a sequence of literal characters and classes, each with its quantifier:
    `\\.[a-zA-Z]{2,3}` gives `.aa`, `alfred3?workflow` gives `alfredworkflow`, `[0-9]+`
    gives `0`. Groups, alternations, wildcards and negated classes end a run: what
    they match is left to the planner's greedy choice.
    """
    runs: list[str] = []
    current: list[str] = []
    i, n = 0, len(regex)

    def cut() -> None:
        if current:
            runs.append("".join(current))
            current.clear()

    while i < n:
        ch = regex[i]
        if ch == "\\" and i + 1 < n:
            nxt, i = regex[i + 1], i + 2
            witness = nxt if nxt in _LITERAL_ESCAPES else _SHORTHANDS.get(nxt)
        elif ch == "[":
            witness, i = _class_witness(regex, i)
        elif ch in _META:
            witness, i = None, i + 1
        else:
            witness, i = ch, i + 1
        if witness is None:
            cut()
            if i < n and regex[i] == "{":  # the quantifier of what ended the run
                i = _after_braces(regex, i)
            continue
        count, i = _quantifier(regex, i)
        if count is None:
            cut()
            continue
        current.append(witness * count)
    cut()
    return runs


class _NoWitness(Exception):
    pass


def pattern_witness(regex: str) -> str | None:
    """A short string the whole pattern matches, or None where it uses what this
    reader does not follow (look-arounds, back-references).

    The shortest alternative and the fewest repetitions, with the first plain character
    of each class. It need not be exact: the planner only tries it, and the matcher
    decides.
    """
    try:
        text, i = _alternatives(regex, 0)
    except (_NoWitness, IndexError, RecursionError):
        return None
    return text if i == len(regex) else None


def _alternatives(regex: str, i: int) -> tuple[str, int]:
    best: str | None = None
    while True:
        text, i = _sequence(regex, i)
        if best is None or len(text) < len(best):
            best = text
        if i < len(regex) and regex[i] == "|":
            i += 1
            continue
        return best, i


def _sequence(regex: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(regex) and regex[i] not in "|)":
        atom, i = _atom(regex, i)
        count, i = _quantifier(regex, i)
        if count is None:
            raise _NoWitness
        out.append(atom * count)
    return "".join(out), i


def _atom(regex: str, i: int) -> tuple[str, int]:
    ch = regex[i]
    if ch == "(":
        if regex.startswith("(?:", i):
            i += 3
        elif regex.startswith("(?<", i) and regex[i + 3] not in "=!":
            i = regex.index(">", i) + 1  # a named group
        elif regex.startswith("(?P<", i):
            i = regex.index(">", i) + 1
        elif regex.startswith("(?", i):
            raise _NoWitness  # look-around, inline flags
        else:
            i += 1
        text, i = _alternatives(regex, i)
        if i >= len(regex) or regex[i] != ")":
            raise _NoWitness
        return text, i + 1
    if ch in "^$":
        return "", i + 1
    if ch == ".":
        return "a", i + 1
    if ch == "[":
        witness, i = _class_witness(regex, i)
        if witness is None:
            raise _NoWitness
        return witness, i
    if ch == "\\":
        nxt = regex[i + 1]
        if nxt in _LITERAL_ESCAPES:
            return nxt, i + 2
        if nxt in _SHORTHANDS:
            return _SHORTHANDS[nxt], i + 2
        if nxt in "DWS":
            return {"D": "a", "W": "-", "S": "a"}[nxt], i + 2
        if nxt in "bB":
            return "", i + 2
        if nxt == "u" and len(regex) >= i + 6:
            return chr(int(regex[i + 2 : i + 6], 16)), i + 6
        raise _NoWitness
    if ch in "*+?{":
        raise _NoWitness
    return ch, i + 1


_SHORTHANDS = {"d": "0", "w": "a", "s": " "}
_MAX_REPEAT = 64


def _quantifier(regex: str, i: int) -> tuple[int | None, int]:
    """How many copies of the atom before `i` a shortest match takes (None: unknown)."""
    if i >= len(regex):
        return 1, i
    ch = regex[i]
    if ch in "?*+":
        i += 1
        if i < len(regex) and regex[i] in "?+":  # lazy or possessive
            i += 1
        return (1 if ch == "+" else 0), i
    if ch == "{":
        close = regex.find("}", i)
        if close < 0:
            return None, len(regex)
        low = regex[i + 1 : close].split(",")[0].strip()
        end = _after_braces(regex, i)
        if not low.isdigit() or int(low) > _MAX_REPEAT:
            return None, end
        return int(low), end
    return 1, i


def _after_braces(regex: str, i: int) -> int:
    close = regex.find("}", i)
    i = len(regex) if close < 0 else close + 1
    if i < len(regex) and regex[i] in "?+":
        i += 1
    return i


_CANDIDATES = "a0_-.A /:@xyz19"


def _class_witness(regex: str, start: int) -> tuple[str | None, int]:
    """A plain character the `[...]` class at `start` allows (None if none is found)."""
    end = _class_end(regex, start)
    try:
        with warnings.catch_warnings():  # a schema's `[[...]` is its author's, not ours
            warnings.simplefilter("ignore", FutureWarning)
            compiled = re.compile(regex[start:end])
    except re.error:
        return None, end
    return next((c for c in _CANDIDATES if compiled.fullmatch(c)), None), end


def _class_end(regex: str, start: int) -> int:
    i = start + 1
    if i < len(regex) and regex[i] == "^":
        i += 1
    if i < len(regex) and regex[i] == "]":
        i += 1
    while i < len(regex) and regex[i] != "]":
        i += 2 if regex[i] == "\\" else 1
    return i + 1


# Keywords whose value is a subschema, a list of them, or a map of names to them. Only
# these are walked: a "pattern" elsewhere (annotations, vendor extensions such as a
# form's validation messages) is not a pattern of the output.
_SUBSCHEMA = (
    "items", "additionalItems", "additionalProperties", "unevaluatedItems",
    "unevaluatedProperties", "contains", "propertyNames", "not", "if", "then", "else",
)  # fmt: skip
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions",
                   "dependentSchemas", "dependencies")  # fmt: skip


def _schema_patterns(schema: Any) -> list[str]:
    """The patterns (and pattern property names) of a schema, outermost first."""
    found: list[str] = []
    queue = [schema]
    seen: set[int] = set()
    while queue and len(found) < 4 * MAX_HINTS:
        node = queue.pop(0)
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.get("pattern"), str):
            found.append(node["pattern"])
        props = node.get("patternProperties")
        if isinstance(props, dict):
            found += [k for k in props if isinstance(k, str)]
        queue += [node[k] for k in _SUBSCHEMA if k in node]
        for key in _SUBSCHEMA_LISTS:
            if isinstance(node.get(key), list):
                queue += node[key]
        for key in _SUBSCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                queue += list(node[key].values())
    return found


def _lark_regexes(lark: str) -> list[str]:
    """The bodies of `/.../` terminals (with `\\/` unescaped)."""
    out: list[str] = []
    i = 0
    while (start := lark.find("/", i)) >= 0:
        j = start + 1
        while j < len(lark) and lark[j] != "/":
            j += 2 if lark[j] == "\\" else 1
        if j >= len(lark):
            break
        out.append(lark[start + 1 : j].replace("\\/", "/"))
        i = j + 1
    return out
