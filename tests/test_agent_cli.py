"""`edge-agent run` and `edge-agent sessions` end to end (in process, and one real
subprocess for the console script)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.cli.main import main

TOOLS = """
    from pathlib import Path
    from typing import Literal

    from tools import tool

    SIDE_EFFECT = Path({side_effect!r})

    @tool
    def lookup(key: Literal["a", "b"]) -> str:
        \"\"\"Look a key up.\"\"\"
        return "value of " + key

    @tool
    def explode(part: Literal["x"]) -> str:
        \"\"\"Always fails.\"\"\"
        raise ValueError("the flux capacitor broke")

    @tool(requires_approval=True)
    def wipe(target: Literal["tmp"]) -> str:
        \"\"\"Delete files (asks first).\"\"\"
        SIDE_EFFECT.write_text("wiped")
        return "wiped"
"""

VERDICT = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.fixture
def tools_module(tmp_path: Path) -> Path:
    path = tmp_path / "my_tools.py"
    path.write_text(textwrap.dedent(TOOLS.format(side_effect=str(tmp_path / "wiped.txt"))))
    return path


def run_json(capsys, *argv: str) -> tuple[int, list[dict]]:
    code = main(["run", *argv, "--model", "tiny", "--json", "--seed", "0"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_json_lines_protocol_and_guard_exit_code(data_dir, tools_module, capsys):
    code, events = run_json(
        capsys,
        "Look up a",
        "--tools-module",
        str(tools_module),
        "--tool",
        "lookup",
        "--tool-choice",
        "required",
        "--max-steps",
        "1",
    )
    assert code == 3
    assert all("type" in e for e in events)
    assert events[-1]["type"] == "final" and [e["type"] for e in events].count("final") == 1
    final = events[-1]
    assert final["stopped_by"] == "max_steps" and "max_steps" in final["reason"]
    assert {"content", "stats", "citations", "session_id"} <= set(final)
    calls = [e for e in events if e["type"] == "tool_call"]
    results = [e for e in events if e["type"] == "tool_result"]
    assert calls and all(c["name"] == "lookup" for c in calls)
    assert all(isinstance(c["arguments"], dict) and c["arguments"]["key"] in "ab" for c in calls)
    assert [r["id"] for r in results] == [c["id"] for c in calls]
    assert all(r["name"] == "lookup" and r["content"].startswith("value of") for r in results)
    assert all("error" not in r for r in results)
    assert [e["step"] for e in events if e["type"] == "stats"] == [1]


def test_failing_tool_result_carries_the_error(data_dir, tools_module, capsys):
    code, events = run_json(
        capsys,
        "Break it",
        "--tools-module",
        str(tools_module),
        "--tool-choice",
        "explode",
        "--max-steps",
        "1",
    )
    assert code == 3
    results = [e for e in events if e["type"] == "tool_result"]
    assert results and all("flux capacitor" in r["error"] for r in results)


def test_approval_is_denied_without_a_terminal_unless_yes(data_dir, tools_module, capsys):
    side_effect = tools_module.parent / "wiped.txt"
    args = ["Clean", "--tools-module", str(tools_module), "--tool-choice", "wipe"]
    code, events = run_json(capsys, *args, "--max-steps", "1")
    assert code == 3
    results = [e for e in events if e["type"] == "tool_result"]
    assert results and all(r["error"] == "denied by the user" for r in results)
    assert not side_effect.exists()

    code, events = run_json(capsys, *args, "--max-steps", "1", "--yes")
    assert code == 3
    results = [e for e in events if e["type"] == "tool_result"]
    assert results and all("error" not in r for r in results)
    assert side_effect.read_text() == "wiped"


def test_final_answer_exits_zero(data_dir, tools_module, tmp_path, capsys):
    schema = tmp_path / "verdict.json"
    schema.write_text(json.dumps(VERDICT))
    code, events = run_json(
        capsys,
        "Is it raining?",
        "--tools-module",
        str(tools_module),
        "--tool-choice",
        "none",
        "--response-format",
        str(schema),
    )
    assert code == 0
    final = events[-1]
    assert "stopped_by" not in final
    assert final["output"] in ({"answer": "yes"}, {"answer": "no"})
    assert json.loads(final["content"]) == final["output"]
    text = "".join(e["text"] for e in events if e["type"] == "text")
    assert text.strip() == final["content"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tool", "teleport"], "unknown tool(s) teleport"),
        (["--tool-choice", "required"], "needs a tool"),
        (["--tool", "now", "--tool-choice", "lookup"], "--tool-choice must be"),
        (["--tools-module", "/nonexistent/tools.py"], "does not exist"),
        (["--response-format", "/nonexistent/schema.json"], "neither a file"),
        (["--session", "bad id!"], "invalid session id"),
        (["--max-steps", "0"], "expected a number >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(data_dir, capsys, argv, message):
    try:
        code = main(["run", "hi", "--model", "tiny", *argv])
    except SystemExit as exc:  # argparse-level errors exit from the parser
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err


def test_sessions_commands(data_dir, tools_module, capsys):
    code, events = run_json(
        capsys,
        "Look up b",
        "--tools-module",
        str(tools_module),
        "--tool-choice",
        "lookup",
        "--max-steps",
        "1",
        "--session",
        "notes",
    )
    assert code == 3 and events[-1]["session_id"] == "notes"
    assert main(["sessions", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(s["id"], s["turns"], s["title"]) for s in listed] == [("notes", 1, "Look up b")]

    assert main(["sessions", "show", "no", "--json"]) == 0  # a unique prefix
    shown = json.loads(capsys.readouterr().out)
    (turn,) = shown["turns"]
    assert turn["status"] == "stopped" and turn["stopped_by"] == "max_steps"
    assert [m["role"] for m in turn["messages"]][:2] == ["user", "assistant"]
    assert "tool" in [m["role"] for m in turn["messages"]]

    assert main(["sessions", "show", "notes"]) == 0
    assert "[user] Look up b" in capsys.readouterr().out

    assert main(["sessions", "delete", "notes"]) == 0
    capsys.readouterr()
    assert main(["sessions", "show", "notes"]) == 2
    assert "no session 'notes'" in capsys.readouterr().err


def test_console_script_text_mode(data_dir, tools_module):
    """The installed `edge-agent` entry point: answer on stdout, the rest on stderr."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli.main",
            "run",
            "Look up a",
            "--model",
            "tiny",
            "--tools-module",
            str(tools_module),
            "--tool-choice",
            "lookup",
            "--max-steps",
            "1",
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 3, proc.stderr
    assert "-> lookup({" in proc.stderr and "<- lookup: value of" in proc.stderr
    assert "stopped (max_steps)" in proc.stderr and "[session " in proc.stderr
    assert "Traceback" not in proc.stderr and "terminate called" not in proc.stderr


def test_ctrl_c_cancels_cleanly_and_still_ends_with_final(data_dir):
    argv = ["run", "Tell me a long story", "--model", "tiny", "--max-tokens", "30000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli.main", *argv, "--json", "--session", "story"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        first = json.loads(proc.stdout.readline())  # generation is under way
        assert first["type"] == "text"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    final = json.loads(out.splitlines()[-1])
    assert final["type"] == "final" and final["stopped_by"] == "cancelled"
    assert "Traceback" not in err
    assert main(["sessions", "show", "story", "--json"]) == 0
