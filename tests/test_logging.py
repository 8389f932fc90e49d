"""Logging: quiet by default, on stderr with --verbose or EDGE_AGENT_LOG, and the agent
loop's catch-all keeps the traceback in the log while the user sees one line."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from openai_stub import StubServer, running

import agent
from agent import Agent
from agent.cli import logs
from agent.cli.main import main
from agent.engines.base import StepRequest
from agent.engines.scripted import Reply, ScriptedModel
from agent.events import ErrorEvent
from agent.sessions import SessionStore


@pytest.fixture(autouse=True)
def quiet_afterwards() -> Iterator[None]:
    """The CLI's setup is process-wide: each test leaves logging as it found it."""
    yield
    logs.configure(None)


def test_the_library_is_silent_until_logging_is_configured():
    code = (
        "import logging, agent, tools, schemas, tui\n"
        "for name in ('agent.agent', 'tools.execution', 'schemas.compiler', 'tui.app'):\n"
        "    logging.getLogger(name).error('library record from %s', name)\n"
        "logging.getLogger('someone.else').error('an unconfigured record')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # Python's last-resort handler prints a stranger's record; ours are swallowed.
    assert "an unconfigured record" in proc.stderr
    assert "library record" not in proc.stderr
    import schemas
    import tools
    import tui

    assert {agent.__name__, schemas.__name__, tools.__name__, tui.__name__} == set(logs.PACKAGES)
    for package in logs.PACKAGES:
        handlers = logging.getLogger(package).handlers
        assert any(isinstance(h, logging.NullHandler) for h in handlers), package


def test_requested_level_reads_the_flag_and_the_variable():
    assert logs.requested_level(False, {}) is None
    assert logs.requested_level(True, {}) == logging.DEBUG
    assert logs.requested_level(False, {"EDGE_AGENT_LOG": "Info"}) == logging.INFO
    assert logs.requested_level(False, {"EDGE_AGENT_LOG": " "}) is None
    # --verbose asks for more than a quieter variable.
    assert logs.requested_level(True, {"EDGE_AGENT_LOG": "error"}) == logging.DEBUG


def _explode(request: StepRequest) -> Reply:
    raise RuntimeError("the scripted engine blew up")


def test_the_loop_catch_all_logs_the_traceback_and_ends_the_turn(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="agent")
    store = SessionStore(tmp_path / "sessions.sqlite3")
    session = store.create()
    result = Agent(ScriptedModel(_explode), session=session).run("hello")
    # The user gets one line...
    assert result.stopped_by == "error"
    (error,) = result.of_type(ErrorEvent)
    assert error.message == "RuntimeError: the scripted engine blew up"
    assert "\n" not in error.message
    # ...the log keeps where it came from...
    (record,) = [r for r in caplog.records if r.name == "agent.agent" and r.exc_info]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "_explode" in caplog.text  # the frame that raised, from the traceback
    # ...and the session says the turn ended on an error, not still running.
    (turn,) = session.turns()
    assert (turn.status, turn.stopped_by) == ("stopped", "error")
    assert [m.role for m in turn.messages] == ["user"]


def _run_against(stub: StubServer, *flags: str) -> int:
    return main(["run", *flags, "--model", f"openai:{stub.url}#stub", "hello"])


def test_cli_run_is_one_line_by_default_and_a_traceback_with_the_variable(
    capsys, monkeypatch, data_dir
):
    with running(StubServer([])) as stub:  # no reply scripted: the server answers 500
        monkeypatch.delenv("EDGE_AGENT_LOG", raising=False)
        assert _run_against(stub) == 1
        quiet = capsys.readouterr().err
        monkeypatch.setenv("EDGE_AGENT_LOG", "info")
        assert _run_against(stub) == 1
        logged = capsys.readouterr().err
    assert "no reply scripted" in quiet
    assert "Traceback" not in quiet and "agent.agent" not in quiet
    assert "INFO agent.agent: the run failed:" in logged and "no reply scripted" in logged
    assert "Traceback (most recent call last)" in logged and "RemoteError" in logged
    assert "DEBUG" not in logged  # info asked, info given


@pytest.mark.parametrize("flags", [["-v"], ["--verbose"]])
def test_cli_verbose_logs_debug_records_on_stderr_only(capsys, monkeypatch, data_dir, flags):
    monkeypatch.delenv("EDGE_AGENT_LOG", raising=False)
    with running(StubServer([])) as stub:
        assert _run_against(stub, "--json", *flags) == 1
        # The flag also goes before the command.
        assert main([*flags, "run", "--json", "--model", f"openai:{stub.url}#x", "hi"]) == 1
    out, err = capsys.readouterr()
    assert err.count("DEBUG agent.agent: step 1: tool choice none") == 2
    assert err.count("Traceback (most recent call last)") == 2
    assert "agent." not in out  # stdout holds only the JSON events
    assert out.count('"type": "final"') == 2


def test_a_bad_log_level_is_a_one_line_user_error(capsys, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_LOG", "loud")
    assert main(["models", "list"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "edge-agent: error: EDGE_AGENT_LOG='loud' is not a log level; use one of debug, "
        "info, warning, error, critical"
    ]


def test_configure_replaces_its_own_setup_and_leaves_an_embedders_levels():
    agent_logger = logging.getLogger("agent")
    logs.configure(logging.DEBUG)
    logs.configure(logging.INFO)  # a second CLI call in one process: one handler, not two
    added = [h for h in agent_logger.handlers if not isinstance(h, logging.NullHandler)]
    assert len(added) == 1 and agent_logger.level == logging.INFO
    logs.configure(None)
    assert [type(h) for h in agent_logger.handlers] == [logging.NullHandler]
    assert agent_logger.level == logging.NOTSET
    try:
        agent_logger.setLevel(logging.WARNING)  # set by a program that embeds the CLI
        logs.configure(None)
        assert agent_logger.level == logging.WARNING
    finally:
        agent_logger.setLevel(logging.NOTSET)
