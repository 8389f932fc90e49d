"""Sessions: SQLite persistence, resume, delete, and surviving a SIGKILL mid-turn."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from typing import Literal

import pytest
from pydantic import BaseModel

from agent import Agent
from agent.errors import UserError
from agent.messages import AssistantMessage, UserMessage
from agent.sampling import SamplingParams
from agent.sessions import SessionNotFoundError, SessionStore


class Verdict(BaseModel):
    answer: Literal["yes", "no"]


def answering_agent(model, session) -> Agent:
    """Ends every run with a real answer (the constrained JSON), in one short step."""
    return Agent(
        model,
        response_format=Verdict,
        max_tokens=100,
        session=session,
        sampling=SamplingParams(temperature=1.0, seed=0),
    )


def test_store_create_list_open_delete(data_dir):
    store = SessionStore()
    assert store.path.parent == data_dir
    a = store.create(model="tiny")
    b = store.create("work-1", model="tiny")
    assert {s.id for s in store.list()} == {a.id, "work-1"}
    assert store.open("work").id == "work-1"  # a unique prefix
    with pytest.raises(SessionNotFoundError, match="no session"):
        store.open("nope")
    with pytest.raises(UserError, match="already exists"):
        store.create("work-1")
    with pytest.raises(UserError, match="invalid session id"):
        store.create("has space")
    turn = b.begin_turn()
    b.add_message(turn, UserMessage("hello there"))
    b.add_message(turn, AssistantMessage("hi"), {"step": 1})
    b.end_turn(turn, None)
    assert store.info("work-1").title == "hello there"
    assert store.info("work-1").turns == 1
    assert b.history() == [UserMessage("hello there"), AssistantMessage("hi")]
    assert store.delete("work-1") == "work-1"
    assert [s.id for s in store.list()] == [a.id]
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_unfinished_turns_are_kept_but_never_replayed(data_dir):
    session = SessionStore().create()
    t1 = session.begin_turn()
    session.add_message(t1, UserMessage("one"))
    session.add_message(t1, AssistantMessage("answer one"))
    session.end_turn(t1, None)
    t2 = session.begin_turn()  # never ended: the process died
    session.add_message(t2, UserMessage("two"))
    t3 = session.begin_turn()
    session.add_message(t3, UserMessage("three"))
    session.add_message(t3, AssistantMessage("answer three"))
    session.end_turn(t3, "max_steps")
    assert [t.status for t in session.turns()] == ["done", "running", "stopped"]
    assert [m.content for m in session.history()] == [
        "one",
        "answer one",
        "three",
        "answer three",
    ]


def test_an_agent_resumes_a_session_by_id(data_dir, tiny):
    first = answering_agent(tiny, "chat")
    r1 = first.run("Is the sky blue?")
    assert r1.stopped_by is None and r1.final.session_id == "chat"
    again = answering_agent(tiny, "chat")  # a new process would do the same
    assert again.messages == first.messages
    r2 = again.run("Is grass red?")
    assert r2.stats.prompt_tokens > r1.stats.prompt_tokens + r1.stats.generated_tokens
    turns = SessionStore().open("chat").turns()
    assert [t.status for t in turns] == ["done", "done"]
    assert [m.role for m in turns[1].messages] == ["user", "assistant"]
    assert turns[1].messages[1].meta["step"] == 1


SLOW_TOOLS = """
    import pathlib
    import time
    from typing import Literal

    from tools import tool

    MARKER = pathlib.Path({marker!r})

    @tool(timeout=600)
    def slow_lookup(key: Literal["a", "b"]) -> str:
        \"\"\"Look something up, slowly.\"\"\"
        MARKER.write_text("started")
        time.sleep(300)
        return "done"
"""


def test_a_session_survives_a_process_killed_mid_turn(data_dir, tmp_path, tiny):
    store = SessionStore()
    answering_agent(tiny, "survivor").run("Is water wet?")  # turn 1, finished

    marker = tmp_path / "tool-started"
    module = tmp_path / "slow_tools.py"
    module.write_text(textwrap.dedent(SLOW_TOOLS.format(marker=str(marker))))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.cli.main",
            "run",
            "Look up a",
            "--model",
            "tiny",
            "--session",
            "survivor",
            "--tools-module",
            str(module),
            "--tool-choice",
            "required",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the tool never started")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # mid-turn: the model called, the tool is running
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    session = store.open("survivor")
    turns = session.turns()
    assert [t.status for t in turns] == ["done", "running"]
    killed = turns[1].messages
    assert [m.role for m in killed] == ["user", "assistant"]  # written as they happened
    assert "<|tool_call_start|>" in killed[1].content
    history_before = session.history()
    assert history_before[0] == UserMessage("Is water wet?")
    assert "Look up a" not in [m.content for m in history_before]

    resumed = answering_agent(tiny, "survivor")
    assert resumed.messages == history_before  # at most the killed turn was lost
    result = resumed.run("Is fire hot?")
    assert result.stopped_by is None
    assert [t.status for t in session.turns()] == ["done", "running", "done"]


# ------------------------------------------------------------- concurrent writers
def test_concurrent_agents_on_one_session_keep_their_turns_apart(data_dir):
    """Two runs on one session at once (two terminals, each its own connection): each
    gets its own turn, and no message lands in the other's turn or out of order."""
    import threading

    from agent.engines.base import StepRequest
    from agent.engines.scripted import Reply, ScriptedModel
    from tools import tool

    both_in_tools = threading.Barrier(2, timeout=60)

    @tool
    def note(label: str) -> str:
        """Write a note."""
        both_in_tools.wait()  # both turns are open, mid-run, at the same time
        return f"noted {label}"

    def script(label: str):
        def reply(request: StepRequest) -> Reply:
            if request.messages[-1].role == "user":
                return Reply(calls=[("note", {"label": label})])
            return Reply(text=f"done {label}")

        return reply

    path = data_dir / "shared.sqlite3"
    SessionStore(path).create("shared")
    results: dict[str, object] = {}

    def run(label: str) -> None:
        session = SessionStore(path).open("shared")  # a connection of its own
        agent = Agent(ScriptedModel(script(label)), [note], session=session)
        results[label] = agent.run(f"prompt {label}")

    threads = [threading.Thread(target=run, args=(label,)) for label in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == ["A", "B"]
    assert {r.content for r in results.values()} == {"done A", "done B"}  # type: ignore[attr-defined]

    turns = SessionStore(path).open("shared").turns()
    assert [t.turn for t in turns] == [1, 2]
    for t in turns:
        assert (t.status, t.stopped_by) == ("done", None)
        assert [m.seq for m in t.messages] == [1, 2, 3, 4]
        assert [m.role for m in t.messages] == ["user", "assistant", "tool", "assistant"]
        label = t.messages[0].content.removeprefix("prompt ")
        assert t.messages[2].content == f"noted {label}"
        assert t.messages[3].content == f"done {label}"


def test_concurrent_open_or_create_of_one_new_id_makes_one_session(data_dir):
    import threading

    path = data_dir / "race.sqlite3"
    stores = [SessionStore(path) for _ in range(6)]
    start = threading.Barrier(len(stores), timeout=60)
    opened: list[str] = []
    failures: list[BaseException] = []

    def open_it(store: SessionStore) -> None:
        start.wait()
        try:
            opened.append(store.open_or_create("same-id", model="m").id)
        except BaseException as exc:  # collected: asserted below
            failures.append(exc)

    threads = [threading.Thread(target=open_it, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert opened == ["same-id"] * len(stores)
    assert [s.id for s in SessionStore(path).list()] == ["same-id"]


# ------------------------------------------------------------------ schema versions
# The layout of a database made before schema versions (user_version 0), as written.
UNVERSIONED = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,
    title TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '');
CREATE TABLE turns (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn INTEGER NOT NULL, status TEXT NOT NULL, stopped_by TEXT, started REAL NOT NULL,
    ended REAL, PRIMARY KEY (session_id, turn));
CREATE TABLE messages (session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    turn INTEGER NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL,
    PRIMARY KEY (session_id, turn, seq));
INSERT INTO sessions VALUES ('old1', 1.0, 2.0, 'Is Oslo in Norway?', 'tiny');
INSERT INTO turns VALUES ('old1', 1, 'done', NULL, 1.0, 2.0);
INSERT INTO messages VALUES ('old1', 1, 1, 'user', 'Is Oslo in Norway?', '{}', 1.0);
INSERT INTO messages VALUES ('old1', 1, 2, 'assistant', '{"answer": "yes"}', '{"step": 1}', 2.0);
"""


def _user_version(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def _indexes(path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {name for (name,) in rows}


def test_a_new_database_is_at_the_current_schema_version(tmp_path):
    from agent.sessions import SCHEMA_VERSION

    path = tmp_path / "new.sqlite3"
    SessionStore(path).close()
    assert SCHEMA_VERSION >= 2 and _user_version(path) == SCHEMA_VERSION
    assert "sessions_by_update" in _indexes(path)


def test_a_database_from_before_versions_is_migrated_and_keeps_its_sessions(data_dir, capsys):
    from agent.cli.main import main
    from agent.sessions import SCHEMA_VERSION

    data_dir.mkdir(parents=True)
    path = data_dir / "sessions.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(UNVERSIONED)
    assert _user_version(path) == 0 and "sessions_by_update" not in _indexes(path)

    assert main(["sessions", "list", "--json"]) == 0  # through the CLI, as a user meets it
    listed = capsys.readouterr().out
    assert '"old1"' in listed and "Is Oslo in Norway?" in listed
    assert _user_version(path) == SCHEMA_VERSION
    assert "sessions_by_update" in _indexes(path)
    history = SessionStore(path).open("old1").history()
    assert history == [
        UserMessage("Is Oslo in Norway?"),
        AssistantMessage('{"answer": "yes"}'),
    ]


def test_a_database_newer_than_the_code_is_a_one_line_error(data_dir, capsys):
    from agent.cli.main import main
    from agent.sessions import SCHEMA_VERSION

    path = data_dir / "sessions.sqlite3"
    SessionStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(UserError, match=f"at version {SCHEMA_VERSION + 5}, newer than"):
        SessionStore(path)
    assert main(["sessions", "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "upgrade edge-agent" in err[0] and str(path) in err[0]
    assert _user_version(path) == SCHEMA_VERSION + 5  # left as it was


# ------------------------------------------------------------------ replay
def test_a_session_replays_as_the_events_of_its_runs(data_dir):
    from agent.engines.scripted import Reply, ScriptedModel
    from agent.events import FinalEvent, TextDelta, ToolCallEvent, ToolResultEvent
    from tools import tool

    @tool
    def weather(city: str) -> str:
        """Current weather in a city."""
        return f"{city}: 21 C"

    session = SessionStore().create()
    replies = [Reply(calls=[("weather", {"city": "Oslo"})]), Reply(text="It is 21 C in Oslo.")]
    live = Agent(ScriptedModel(replies), [weather], session=session).run("Weather in Oslo?")

    (turn,) = SessionStore().open(session.id).replay()
    assert turn.prompt == "Weather in Oslo?"
    (call,) = [e for e in turn.events if isinstance(e, ToolCallEvent)]
    (result,) = [e for e in turn.events if isinstance(e, ToolResultEvent)]
    (live_call,) = live.of_type(ToolCallEvent)
    assert (call.call_id, call.name, call.arguments) == (
        live_call.call_id,
        "weather",
        {"city": "Oslo"},
    )
    assert (result.name, result.content, result.error) == ("weather", "Oslo: 21 C", None)
    text = "".join(e.text for e in turn.events if isinstance(e, TextDelta))
    assert text == "It is 21 C in Oslo."
    final = turn.events[-1]
    assert isinstance(final, FinalEvent) and final.content == live.content
    assert len(turn.step_stats()) == 2  # one per step, as the live run reported
