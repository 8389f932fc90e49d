"""RAG in the agent loop: the rag_search tool, numbered sources and the citations list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rag_corpus import write_labelled_corpus

from agent import Agent
from agent.cli.main import main
from agent.events import ToolCallEvent, ToolResultEvent
from agent.prompting import RAG_INSTRUCTION
from agent.rag import CitationBook, format_hits
from agent.retriever import SearchHit, ingest, open_index
from agent.sampling import SamplingParams


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agent-rag")
    write_labelled_corpus(root / "docs")
    ingest([root / "docs"], root / "index")
    return root / "index"


class TopicRetriever:
    """Searches a fixed topic whatever the (random) model asked: a real Retriever whose
    results do not depend on the random model's query text."""

    def __init__(self, index, topic: str) -> None:
        self.index, self.topic, self.queries = index, topic, []

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        self.queries.append(query)
        return self.index.search(self.topic, k)


def test_citation_book_numbers_sources_once_in_order():
    book = CitationBook()
    a = SearchHit("a.md", 0, 10, 2.0, "alpha", 1)
    b = SearchHit("b.md", 5, 20, 1.0, "beta", 2)
    assert [book.add(h).index for h in (a, b, a)] == [1, 2, 1]
    assert [c.path for c in book.citations()] == ["a.md", "b.md"]
    text = format_hits(list(book.citations()))
    assert text.startswith("[1] a.md:0-10\nalpha") and "\n\n[2] b.md:5-20\nbeta" in text
    assert format_hits([]) == "No passages matched the query."


def test_rag_search_results_are_numbered_and_listed_as_citations(tiny, index_dir):
    with open_index(index_dir) as index:
        retriever = TopicRetriever(index, "descale espresso machine citric acid")
        agent = Agent(
            tiny,
            retriever=retriever,
            tool_choice="rag_search",
            reset_tool_choice=False,
            max_steps=2,
            max_identical_calls=50,
            sampling=SamplingParams(temperature=1.0, seed=0),
        )
        assert RAG_INSTRUCTION in agent.system
        assert "rag_search" in agent.registry.names()
        result = agent.run("How do I descale my espresso machine?")
    calls = result.of_type(ToolCallEvent)
    assert calls and all(c.name == "rag_search" for c in calls)
    assert retriever.queries == [c.arguments["query"] for c in calls]
    contents = [r.content for r in result.of_type(ToolResultEvent)]
    assert all(r.error is None for r in result.of_type(ToolResultEvent))
    assert contents[0].startswith("[1] ") and "espresso.md:" in contents[0]
    # The same passages found again in step 2 keep their numbers.
    numbers = {c: re.findall(r"^\[(\d+)\] (\S+)$", c, re.M) for c in contents}
    assert len({tuple(n) for n in numbers.values()}) == 1
    citations = result.citations
    assert [c.index for c in citations] == list(range(1, len(citations) + 1))
    assert "citric acid" in citations[0].text and citations[0].path.endswith("espresso.md")
    final = json.loads(json.dumps(result.final.to_dict()))
    assert final["citations"][0]["index"] == 1


def test_cli_run_with_an_index(tiny, index_dir, data_dir, capsys):
    code = main(
        [
            "run",
            "Where do tomatoes grow best?",
            "--model",
            "tiny",
            "--index",
            str(index_dir),
            "--tool-choice",
            "rag_search",
            "--max-steps",
            "1",
            "--json",
            "--seed",
            "3",
        ]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 3 and lines[-1]["stopped_by"] == "max_steps"
    results = [e for e in lines if e["type"] == "tool_result"]
    assert results and all(r["name"] == "rag_search" and "error" not in r for r in results)
    cited = {int(n) for r in results for n in re.findall(r"^\[(\d+)\] ", r["content"], re.M)}
    assert cited == {c["index"] for c in lines[-1]["citations"]}


def test_cli_run_with_a_missing_index_is_a_user_error(tmp_path, data_dir, capsys):
    code = main(["run", "hi", "--model", "tiny", "--index", str(tmp_path / "none")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-agent: error:")
