"""Sessions and the index under damage: corrupt files, unreadable rows, huge history,
a full disk, a read-only index, an unwritable directory, a FIFO. Each is one line that
says what is true and what to do; the index is never called damaged when it is not."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.messages import AssistantMessage, UserMessage
from agent.retriever import store as store_module
from agent.retriever.errors import IndexCorruptError, IndexFullError, IndexReadOnlyError
from agent.retriever.index import open_index
from agent.retriever.ingest import ingest
from agent.sessions import SessionDataError, SessionStore, check_session_id


def test_session_ids_are_matched_in_full():
    assert check_session_id("abc-1.2_x") == "abc-1.2_x"
    for bad in ("abc\n", "abc\n\n", "a b", "", "x" * 65, "ü"):
        with pytest.raises(UserError, match="invalid session id"):
            check_session_id(bad)


def test_a_corrupt_session_database_is_one_line_with_the_way_out(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError) as info:
        SessionStore(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"mv {path} {path}.bad" in message


def test_an_unwritable_data_directory_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(
        UserError, match=r"^cannot create the session directory .*EDGE_AGENT_DATA_DIR"
    ):
        SessionStore(blocker / "sub" / "sessions.sqlite3")


def _session_with_bad_row(tmp_path: Path) -> tuple[SessionStore, str]:
    store = SessionStore(tmp_path / "s.sqlite3")
    session = store.create("broken", model="tiny")
    turn = session.begin_turn()
    session.add_message(turn, UserMessage("hello"))
    session.add_message(turn, AssistantMessage("hi"))
    session.end_turn(turn, None)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE messages SET meta = '{not json' WHERE seq = 2")
    return store, session.id


def test_an_unreadable_row_names_the_session_and_the_way_out(tmp_path):
    store, sid = _session_with_bad_row(tmp_path)
    with pytest.raises(SessionDataError) as info:
        store.open(sid).history()
    message = str(info.value)
    assert message == (
        "session 'broken' has an unreadable message (turn 1, message 2: its metadata is not "
        "JSON); drop such messages with `edge-agent sessions repair broken` or delete the "
        "session with `edge-agent sessions delete broken`"
    )


def test_repair_drops_only_the_unreadable_rows(tmp_path):
    store, sid = _session_with_bad_row(tmp_path)
    with sqlite3.connect(store.path) as db:  # and a row whose text is not UTF-8
        db.execute(
            "INSERT INTO messages VALUES ('broken', 1, 3, 'assistant', CAST(X'FFFE' AS TEXT), "
            "'{}', 0)"
        )
    assert store.repair(sid) == ("broken", 2)
    assert store.open(sid).history() == [UserMessage("hello")]


def test_history_over_the_limit_drops_the_oldest_turns_and_says_so(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite3")
    session = store.create("long")
    for text in ("a" * 600, "b" * 300, "c" * 300):
        turn = session.begin_turn()
        session.add_message(turn, UserMessage(text))
        session.end_turn(turn, None)
    history = session.history(max_bytes=700)
    assert [m.content[0] for m in history] == ["b", "c"]
    assert (session.dropped_turns, session.dropped_bytes) == (1, 600)
    assert session.history_note() == (
        "session long: the 1 oldest turn(s) (600 bytes) were left out of the conversation, "
        "over the history limit of 700 bytes"
    )
    assert len(session.history()) == 3 and session.history_note() is None


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("the quick brown fox jumps over the lazy dog\n")
    return folder


def test_a_full_disk_is_not_called_damage_and_changes_nothing(docs, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    ingest([docs], index_dir)
    (docs / "b.txt").write_text("a second document about foxes " * 200)
    real_open = store_module.IndexStore.open.__func__

    def full_disk_open(cls, directory, create=False):
        opened = real_open(cls, directory, create)
        pages = opened.conn.execute("PRAGMA page_count").fetchone()[0]
        opened.conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL on growth
        return opened

    monkeypatch.setattr(store_module.IndexStore, "open", classmethod(full_disk_open))
    with pytest.raises(IndexFullError) as info:
        ingest([docs], index_dir)
    assert str(info.value).startswith("no space left on device (index unchanged)")
    monkeypatch.undo()
    index = open_index(index_dir)
    try:
        assert [Path(h.path).name for h in index.search("fox", k=5)] == ["a.txt"]
    finally:
        index.close()


def test_a_read_only_index_is_searched_and_ingest_says_read_only(docs, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    ingest([docs], index_dir)
    # Root ignores file modes, so "read-only" is what the store is told, as a read-only
    # mount would tell it; the connection it then opens really is read-only.
    monkeypatch.setattr(store_module, "_writable", lambda path: False)
    index = open_index(index_dir)
    try:
        assert index.store.read_only
        assert len(index.search("lazy dog", k=3)) == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            index.store.conn.execute("DELETE FROM meta")
    finally:
        index.close()
    with pytest.raises(IndexReadOnlyError, match="is read-only, so nothing can be ingested"):
        ingest([docs], index_dir)


def test_an_index_directory_that_cannot_be_made_is_one_line(docs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=r"^cannot create the index directory .*writable --index"):
        ingest([docs], blocker / "sub" / "index")


def test_an_index_file_that_is_a_fifo_is_named_as_such(tmp_path):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    os.mkfifo(index_dir / store_module.DB_FILENAME)
    with pytest.raises(IndexCorruptError, match=r"is a FIFO \(named pipe\), not an index file"):
        open_index(index_dir)
