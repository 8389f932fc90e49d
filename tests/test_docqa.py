"""Questions about documents answered with a command the passages quote and its source
(agent/docqa.py): the parts the framework does, and the guarantee on any model."""

from __future__ import annotations

import asyncio

import pytest

from agent.docqa import (
    SYSTEM,
    Answer,
    DocumentQA,
    answer_schema,
    question_query,
    quoted_commands,
    relevant_commands,
    user_turn,
)
from agent.events import FinalEvent, StatsEvent, TextDelta, ToolCallEvent, ToolResultEvent
from agent.retriever import SearchHit

PASSAGES = [
    "# tool\n\n```bash\npip install -e .\nmytool serve --port 8080  # the server\n```\n\n"
    "Run the checks with `make check` and `ruff check .`; `x` alone is no command.",
    "Deploy: `mytool deploy --prod && mytool status`. Config lives in `config.toml`.",
]


class Passages:
    """A retriever over fixed passages that records its queries."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.queries: list[str] = []

    def search(self, query: str, k: int) -> list[SearchHit]:
        self.queries.append(query)
        hits = [
            SearchHit(path=f"doc{i}.md", start=0, end=len(t), score=1.0, text=t, chunk_id=i + 1)
            for i, t in enumerate(self.texts)
        ]
        return hits[:k]


def test_question_query_keeps_the_content_words():
    assert question_query("How do I run the tests with pytest?") == "run tests pytest"
    assert question_query('Look up "pytest" in the docs: which command?') == "pytest command"
    assert question_query("What is it?") == "What is it?"  # nothing left: the question


def test_quoted_commands_from_code_blocks_and_spans():
    assert quoted_commands(PASSAGES[0]) == [
        "pip install -e .",
        "mytool serve --port 8080",
        "make check",
        "ruff check .",
    ]
    assert quoted_commands(PASSAGES[1]) == ["mytool deploy --prod", "mytool status"]
    # Python code and a passage cut inside a code span give no commands.
    assert quoted_commands("```python\nx = load(1)\nprint(x)\n```") == []
    assert quoted_commands("` an agent run that failed (its `final` says why)") == []


def test_relevant_commands_are_the_ones_the_question_words_stand_around():
    readme = (
        "```bash\npip install -e .\nmytool demo\npip install -e . && pytest -q\n```\n\n"
        "Set up with `pip install -e .`, try it with `mytool demo` and run the tests\n"
        "with `pytest -q`. Deploy with `mytool deploy`."
    )
    other = "Use `mytool serve --port 1` to serve, `mytool check --fast` for a quick look."
    assert relevant_commands("How do I run the tests?", [readme, other]) == [["pytest -q"], []]
    assert relevant_commands("How do I set it up?", [readme]) == [["pip install -e ."]]
    # No command shares a word with the question: every command stays a choice.
    assert relevant_commands("What is it?", [other]) == [
        ["mytool serve --port 1", "mytool check --fast"]
    ]


def test_answer_schema_ties_the_command_to_its_source():
    schema = answer_schema([["make check"], [], ["mytool status"]])
    branches = schema["anyOf"]
    assert [b["properties"]["source"] for b in branches] == [{"const": 1}, {"const": 3}]
    assert branches[1]["properties"]["command"] == {"enum": ["mytool status"]}
    single = answer_schema([["make check"]])
    assert single["properties"]["command"] == {"enum": ["make check"]}
    free = answer_schema([[], []])
    assert free["properties"]["command"]["type"] == "string"
    assert free["properties"]["source"]["maximum"] == 2


def test_user_turn_numbers_the_passages_above_the_question():
    from agent.events import Citation

    cites = [Citation(1, "/abs/README.md", 0, 10, 1.0, "Run `make check`.")]
    text = user_turn("How?", cites, display_path=lambda p: p.rsplit("/", 1)[-1])
    assert text == "[1] README.md:0-10\nRun `make check`.\n\nQuestion: How?"


def _run(qa: DocumentQA, question: str) -> list:
    async def collect() -> list:
        return [event async for event in qa.stream(question)]

    return asyncio.run(collect())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_any_model_answers_a_quoted_command_and_its_source(fresh_tiny, seed):
    """The random-weight tiny model: the words are noise, the guarantee holds."""
    from agent import SamplingParams

    retriever = Passages(PASSAGES)
    qa = DocumentQA(fresh_tiny, retriever, k=2, sampling=SamplingParams(temperature=1.0, seed=seed))
    events = _run(qa, "How do I deploy to production?")
    assert retriever.queries == ["deploy production"]
    call, result = events[0], events[1]
    assert isinstance(call, ToolCallEvent) and call.arguments == {"query": "deploy production"}
    assert isinstance(result, ToolResultEvent) and "[2] doc1.md" in result.content
    assert any(isinstance(e, TextDelta) for e in events)
    assert any(isinstance(e, StatsEvent) for e in events)
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.stopped_by is None
    answer = Answer.from_final(final)
    assert answer is not None and answer.citation is not None
    assert answer.command in quoted_commands(answer.citation.text)
    assert qa.agent.system == SYSTEM


def test_cancel_before_the_run_ends_it_cancelled(fresh_tiny):
    qa = DocumentQA(fresh_tiny, Passages(PASSAGES))

    async def collect() -> list:
        events = []
        async for event in qa.stream("deploy?"):
            events.append(event)
            if isinstance(event, ToolResultEvent):
                qa.cancel()
        return events

    final = asyncio.run(collect())[-1]
    assert isinstance(final, FinalEvent) and final.stopped_by == "cancelled"
    assert len(final.citations) == 2


def test_questions_share_the_session_and_the_prompt_cache(fresh_tiny, data_dir):
    from agent.sessions import SessionStore

    session = SessionStore().create(model="tiny")
    qa = DocumentQA(fresh_tiny, Passages(PASSAGES), session=session)
    _run(qa, "How do I deploy?")
    second = _run(qa, "How do I check?")
    stats = next(e for e in second if isinstance(e, StatsEvent)).stats
    assert stats.cached_prompt_tokens > 0  # the first question's turn was not prefilled again
    assert len(qa.agent.messages) == 4  # user, answer, user, answer
