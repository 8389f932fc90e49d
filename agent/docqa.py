"""Questions about documents that a 135M model answers right, because the framework
does the parts such a model cannot.

Measured with SmolLM2-135M on this project's README: asked to write its own search
query, the model picked "test.py" (not in the docs); given the passages as a `tool`
turn, it answered with noise; asked for a free-text command, it garbled it
("python-pip-pip-..."). So here:

1. Retrieval comes first and is the framework's: the query is the question's own
   content words (`question_query`), and the passages go into the user turn, numbered,
   above the question (the shape small instruct models were trained on).
2. The answer is JSON under a grammar (the Agent's `response_format`): `command` must be
   one of the commands the passages quote (code spans and code-block lines, `a && b`
   split into both), and `source` the number of a passage that quotes that command.
   Any other answer cannot be generated; the model's part is the choice.

`DocumentQA.stream(question)` runs that as one agent run and yields the usual events: a
`rag_search` call and result for the retrieval (step 0, made by the framework), then the
Agent's own events; the final event carries the citations, and `output` the parsed
`{"command", "source"}`. Sampling is the model's (SmolLM2: greedy), so the same
question over the same documents gives the same answer on every run.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from agent.events import (
    Citation,
    Event,
    FinalEvent,
    RunStats,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.guards import CANCELLED
from agent.rag import RAG_TOOL_NAME, CitationBook, RetrieverLike

if TYPE_CHECKING:
    from agent.agent import Agent
    from agent.engines.base import ChatModel
    from agent.sampling import SamplingParams
    from agent.sessions import Session
    from agent.token_runtime import TokenRuntime

DEFAULT_K = 2
MAX_PASSAGE_CHARS = 900
MAX_COMMAND_CHARS = 120
# Said to the model instead of the Agent's default (which spells out the JSON Schema):
# the grammar already enforces the shape, and a list of the allowed commands in the
# system turn pulls a small model towards the first one.
SYSTEM = "Answer the question with a command from the numbered passages, and its number."

_WORD = re.compile(r"[\w.-]*\w")
# Words that say what kind of answer is wanted, not what it is about.
_QUESTION_WORDS = frozenset(
    """a an and are as at be by can could did do does for from how i in is it look me my of
    on or please should the this to up what when where which who why with would you your
    docs documentation tell show find""".split()
)
_FENCE = re.compile(r"```([^\n`]*)\n(.*?)(?:```|\Z)", re.DOTALL)
_SHELL_FENCES = ("", "bash", "sh", "shell", "console", "zsh")
_SPAN = re.compile(r"`([^`]+)`")
_PROGRAM = re.compile(r"^[a-z][a-z0-9._-]*$")
_PAIRS = (("(", ")"), ("[", "]"), ("{", "}"))


def question_query(question: str) -> str:
    """The search words of a question: its content words, in order, without repeats.

    "How do I run the tests?" gives "run tests". A small model asked to write the query
    itself often picks a word that is not in the documents at all; the question's own
    words are in the passages that answer it.
    """
    words = [w for w in _WORD.findall(question.lower()) if w not in _QUESTION_WORDS]
    return " ".join(dict.fromkeys(words)) or question.strip()


def _looks_like_command(text: str) -> bool:
    """A program name in lower case, at least one argument, balanced brackets and
    quotes, no trailing punctuation: what a quoted shell command looks like (and what a
    span cut in half by a chunk boundary does not)."""
    words = text.split()
    return (
        len(words) >= 2
        and bool(_PROGRAM.match(words[0]))
        and words[1] != "="
        and len(text) <= MAX_COMMAND_CHARS
        and all(text.count(a) == text.count(b) for a, b in _PAIRS)
        and text.count('"') % 2 == 0
        and text.count("'") % 2 == 0
        and not text.endswith((",", ":", ";", "("))
    )


def _commands_in_context(text: str) -> list[tuple[str, str]]:
    """(command, the words around it) for every command a passage quotes, in order.

    A code-block line's context is the line and its `# comment`; an inline span's is the
    clause around it: the text back to the previous span or sentence end, and on to the
    sentence end unless another span comes first ("... and run the tests with
    `python -m pytest -q`.").
    """
    found: list[tuple[str, str]] = []
    for info, block in _FENCE.findall(text):
        if info.strip().lower() not in _SHELL_FENCES:
            continue
        for line in block.splitlines():
            code = re.split(r"\s#", line, maxsplit=1)[0]
            for part in re.split(r"\s*(?:&&|;)\s*", code.strip()):
                if _looks_like_command(part):
                    found.append((part, line))  # the comment, if any, included
    # Offsets kept: fenced blocks blanked out rather than removed.
    prose = _FENCE.sub(lambda m: " " * len(m.group(0)), text)
    spans = list(_SPAN.finditer(prose))
    for i, span in enumerate(spans):
        raw = span.group(1)
        # A span with space inside its backticks is text between two spans (a passage
        # that starts inside a code span pairs its backticks the wrong way round).
        if raw != raw.strip():
            continue
        lead_from = spans[i - 1].end() if i else 0
        lead = re.split(r"[.!?]\s|\n\n", prose[lead_from : span.start()])[-1]
        # The words after a span are its own only up to the sentence end, and only when
        # no other span follows in that sentence (they would be that span's lead).
        trail_to = spans[i + 1].start() if i + 1 < len(spans) else len(prose)
        after = re.split(r"[.!?]\s|\n\n", prose[span.end() : trail_to])
        trail = after[0] if len(after) > 1 or i + 1 == len(spans) else ""
        for part in re.split(r"\s*(?:&&|;)\s*", " ".join(raw.split())):
            part = re.split(r"\s#", part)[0].strip()
            if _looks_like_command(part):
                found.append((part, f"{lead} {part} {trail}"))
    return found


def quoted_commands(text: str) -> list[str]:
    """Shell commands a passage quotes: lines of shell code blocks and inline code spans
    that look like a command (`_looks_like_command`), `a && b` and `a; b` giving both
    parts, trailing `# comments` dropped. Code blocks first, then spans; no repeats."""
    return list(dict.fromkeys(command for command, _ in _commands_in_context(text)))


def _stems(text: str) -> set[str]:
    """Lower-case words with a plural or third-person "s" dropped (tests -> test)."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words}


def relevant_commands(question: str, texts: Sequence[str]) -> list[list[str]]:
    """Per passage, the quoted commands that the question's words fit best.

    A command's score is how many of the question's content words stand in it or around
    it (`_commands_in_context`); only commands with the best score over all passages
    are kept (all of them when no command shares a word with the question). A 135M model
    given every command of a passage tends to answer with the first one; narrowed to
    the ones the documents tie to the question, it answers with the right one.
    """
    wanted = _stems(question_query(question))
    scored = [
        [(command, len(wanted & _stems(context))) for command, context in _commands_in_context(t)]
        for t in texts
    ]
    best = max((score for passage in scored for _, score in passage), default=0)
    return [
        list(dict.fromkeys(c for c, score in passage if score == best or best == 0))
        for passage in scored
    ]


def answer_schema(commands_by_source: Sequence[Sequence[str]]) -> dict[str, Any]:
    """JSON Schema of an answer: a command quoted by passage n, and n.

    One branch per passage that quotes a command, so the grammar only lets `source` be
    a passage that contains the `command` chosen. Without any quoted command the answer
    is a short free-text command and any passage number.
    """
    branches = [
        {
            "type": "object",
            "properties": {"command": {"enum": list(commands)}, "source": {"const": n}},
            "required": ["command", "source"],
            "additionalProperties": False,
        }
        for n, commands in enumerate(commands_by_source, start=1)
        if commands
    ]
    if len(branches) == 1:
        return branches[0]
    if branches:
        return {"anyOf": branches}
    return {
        "type": "object",
        "properties": {
            "command": {"type": "string", "minLength": 1, "maxLength": MAX_COMMAND_CHARS},
            "source": {"type": "integer", "minimum": 1, "maximum": max(1, len(commands_by_source))},
        },
        "required": ["command", "source"],
        "additionalProperties": False,
    }


def short_path(path: str) -> str:
    """`path` relative to the current folder when it is inside it, else its file name:
    what the model reads before a passage (no machine-specific prefix)."""
    try:
        return (
            os.path.relpath(path)
            if not os.path.relpath(path).startswith("..")
            else (os.path.basename(path))
        )
    except ValueError:  # another drive (Windows)
        return os.path.basename(path)


def user_turn(question: str, citations: Sequence[Citation], display_path: Any = short_path) -> str:
    """Numbered passages, then the question."""
    blocks = []
    for c in citations:
        text = c.text.strip()
        if len(text) > MAX_PASSAGE_CHARS:
            text = text[:MAX_PASSAGE_CHARS] + "..."
        blocks.append(f"[{c.index}] {display_path(c.path)}:{c.start}-{c.end}\n{text}")
    return "\n\n".join([*blocks, f"Question: {question}"])


@dataclass(frozen=True)
class Answer:
    """The parsed answer of a run and the passage it cites."""

    command: str
    source: int
    citation: Citation | None

    @classmethod
    def from_final(cls, final: FinalEvent) -> Answer | None:
        output = final.output
        if not isinstance(output, dict) or "command" not in output:
            return None
        source = int(output.get("source", 0))
        cited = next((c for c in final.citations if c.index == source), None)
        return cls(str(output["command"]), source, cited)


class DocumentQA:
    """Questions answered from a retriever's passages with a command and its source.

    One `Agent` per question (its answer grammar depends on the passages found), all
    sharing `model` and `session`, so the conversation and the prompt cache carry over
    from one question to the next.
    """

    def __init__(
        self,
        model: TokenRuntime | ChatModel,
        retriever: RetrieverLike,
        *,
        k: int = DEFAULT_K,
        session: Session | None = None,
        max_tokens: int = 96,
        sampling: SamplingParams | None = None,
        display_path: Callable[[str], str] = short_path,
        agent_options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.retriever = retriever
        self.k = k
        self.session = session
        self.max_tokens = max_tokens
        self.sampling = sampling
        self.display_path = display_path
        self.agent_options = dict(agent_options or {})
        self.agent: Agent | None = None
        self._cancelled = threading.Event()

    def retrieve(self, question: str) -> tuple[str, list[Citation]]:
        """The query built from `question` and the passages it finds, numbered from 1."""
        query = question_query(question)
        book = CitationBook()
        return query, [book.add(hit) for hit in self.retriever.search(query, self.k)]

    def cancel(self) -> None:
        """Stop the current question: before its run starts, or at the run's next token."""
        self._cancelled.set()
        if self.agent is not None:
            self.agent.cancel()

    async def stream(self, question: str) -> AsyncIterator[Event]:
        """The events of one question: the retrieval, then the Agent's run."""
        from agent.agent import Agent
        from agent.rag import format_hits

        if not question.strip():
            from agent.errors import UserError

            raise UserError("the question is empty")
        self._cancelled.clear()
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        query, citations = self.retrieve(question)
        yield ToolCallEvent(call_id, RAG_TOOL_NAME, {"query": query}, 0)
        yield ToolResultEvent(call_id, RAG_TOOL_NAME, format_hits(citations), None, 0.0, 0)
        schema = answer_schema(relevant_commands(question, [c.text for c in citations]))

        def build() -> Agent:  # compiles the answer grammar: off the event loop
            return Agent(
                self.model,
                [],
                system=SYSTEM,
                raw_system=True,
                response_format=schema,
                max_steps=1,
                max_tokens=self.max_tokens,
                sampling=self.sampling,
                session=self.session,
                **self.agent_options,
            )

        self.agent = await asyncio.to_thread(build)
        if self._cancelled.is_set():  # stopped before the model started
            yield FinalEvent(
                content="",
                stats=RunStats(),
                stopped_by=CANCELLED,
                citations=tuple(citations),
                reason="the run was cancelled",
            )
            return
        async for event in self.agent.stream(user_turn(question, citations, self.display_path)):
            if isinstance(event, FinalEvent):
                event = replace(event, citations=tuple(citations))
            yield event
