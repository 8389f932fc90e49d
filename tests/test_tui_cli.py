"""`edge-agent chat` and `edge-agent demo` through the real CLI entry point."""

from __future__ import annotations

import json

from agent.cli.demo import build_demo_index, demo_documents, demo_index_dir, project_root
from agent.cli.main import main


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
    # The scripted task's first step searches the docs.
    call = next(e for e in events if e["type"] == "tool_call")
    assert call["name"] == "rag_search" and isinstance(call["arguments"]["query"], str)
    assert types.index("tool_result") > types.index("tool_call")
    assert code == (1 if events[-1].get("stopped_by") in ("error", "cancelled") else 0)
    assert "demo index:" in err and "tool call(s)" in err
    # The index is built once; a second demo finds every file unchanged.
    assert (demo_index_dir() / "index.sqlite3").exists() or any(demo_index_dir().iterdir())
    main(["demo", "--headless", "--model", "tiny", "--max-tokens", "8"])
    assert "0 added, 0 updated" in capsys.readouterr().err


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
