"""Every code block of the README runs as written and prints what the README says
(tests/readme_blocks.py says how each kind of line is run). Blocks that load SmolLM2,
embed documents or open the UI are `slow`."""

from __future__ import annotations

import json
import re

import pytest
from readme_blocks import Block, line_kind, readme_blocks, repo_state, run_block

BLOCKS = readme_blocks()
SLOW = ("smollm2", "--embed", "embed=True", "edge-agent demo", "edge-agent chat")

# What each block must print: (a snippet that picks the block, [texts in its output]).
EXPECTED: list[tuple[str, list[str]]] = [
    ('pip install -e ".[dev]"\nedge-agent demo', ["smollm2 is ready"]),
    ("edge-agent models list", ["smollm2", "tiny", "tok/s", "KV cache"]),
    ('model = load_model("tiny")  # or a repo id', ["tok/s"]),
    ("--schema contact --model tiny", []),
    ("class Person(BaseModel)", ["Person ["]),
    ('--regex "[0-9]{4}-', []),
    ("--grounded examples/documents", ["3 documents in", "0 failed", "review page"]),
    ("sources = [", ["supplier.md True [", "<text> True [", "None"]),
    ("from_edge_agent(", ["outlines: User"]),
    ("def weather(", ['weather {"city":"Oslo","temp":70}', "delete_note Error: denied"]),
    ('--mcp "python examples/mcp_server.py"', ['<- add: {"result":', "tools: add, forecast"]),
    ('args=("mcp-serve", "--tool", "calculator")', ["['calculator'] 391"]),
    ("edge-agent ingest README.md examples/", ["[1] README.md", "Sources:"]),
    ("index_dir = tempfile.mkdtemp()", ["README.md"]),
    ("edge-agent sessions list", ["<- calculator: 391", "sunny, 24", "turn 2"]),
    ("agent = Agent(\n", ["'type': 'final'"]),
    ("--trace ~/trace.jsonl", ["invoke_agent edge-agent UNSET", "execute_tool calculator"]),
    ("configure(file=trace_file)", ["invoke_agent calculator-agent True", "chat tiny False"]),
    ("edge-agent demo --headless", ["answer: python -m pytest -q  [1] README.md", "is ready"]),
    ("scripted = ScriptedModel(", ["LFM2-8B-A1B@http://localhost:8080/v1", "It is late."]),
    ("with serve_in_background(", ["weather ['city']", "Contact {'queue_wait_ms'"]),
    (
        "edge-agent quantize tiny ~/quants",
        ["8.5", "tiny-qx86-hi", "PERPLEXITY", "RAM@8192", "perplexity (lower is better)"],
    ),
]


def expected_for(block: Block) -> list[str]:
    matches = [texts for snippet, texts in EXPECTED if snippet in block.code]
    assert len(matches) == 1, f"README block {block.id} needs one entry in EXPECTED"
    return matches[0]


def test_every_block_is_known():
    assert [b.lang for b in BLOCKS].count("python") >= 5
    for block in BLOCKS:
        expected_for(block)


def test_line_kinds():
    assert line_kind('pip install -e ".[dev]"') == "pip"
    assert line_kind('pip install -e ".[dev]" && python -m pytest -q') == "pytest"
    assert line_kind("edge-agent demo  # the UI") == "ui"
    assert line_kind("edge-agent demo --headless") == "run"
    assert line_kind("edge-agent chat --model smollm2") == "ui"
    assert line_kind("edge-agent run hi") == "run"


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, id=b.id, marks=[pytest.mark.slow] if any(w in b.code for w in SLOW) else [])
        for b in BLOCKS
    ],
)
def test_readme_block_runs_as_written(block: Block, tmp_path):
    before = repo_state()
    outcomes = run_block(block, tmp_path)
    assert outcomes
    for outcome in outcomes:
        # A run that a guard ends exits 3 (README, "Exit codes"); anything else is 0.
        allowed = (0, 3) if outcome.line.startswith("edge-agent run") else (0,)
        assert outcome.code in allowed, f"{outcome.line or block.id}: {outcome.output[-2000:]}"
        assert "Traceback" not in outcome.output, outcome.output[-2000:]
    text = "\n".join(o.output for o in outcomes)
    for expected in expected_for(block):
        assert expected in text, f"{block.id} did not print {expected!r}:\n{text[-3000:]}"
    if "--schema contact --model tiny" in block.code:  # JSON on stdout, valid
        for outcome in outcomes:
            assert isinstance(json.loads(outcome.stdout), dict)
    assert repo_state() == before, "a README block wrote into the repository"
    # The UI lines really ran in a terminal and quit on Ctrl+Q.
    for outcome in outcomes:
        if outcome.how == "terminal":
            assert re.search(r"\S+ is ready", outcome.output)
