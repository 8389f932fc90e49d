"""Conversations that survive the process: SQLite (WAL) under the user data directory.

A session is a list of turns; a turn is the user's prompt and everything the agent wrote
and the tools returned while answering it. Messages are written as they happen, each in
its own transaction, and a turn is marked finished only when its run ends. A process
killed mid-turn therefore leaves a turn still marked `running`: it is kept for
inspection (`sessions show`) but never replayed into the conversation, so resuming
loses at most that turn and never feeds the model half of one.

WAL mode lets one process write while others read (`sessions list` during a run), and
`synchronous=NORMAL` is durable against a killed process (not against power loss,
which is the usual trade-off for a local app).
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import UserError
from agent.limits import MAX_HISTORY_BYTES, MAX_JSON_BYTES, InputLimitError, size_text
from agent.limits import loads as bounded_loads
from agent.messages import MESSAGE_KEYS, Message, MessageError, Role, message_from_dict
from agent.paths import data_dir

if TYPE_CHECKING:
    from agent.session_replay import ReplayTurn


def _tool_call_ids(db: sqlite3.Connection) -> None:
    """Version 3: a tool result's call id is stored under the key the message
    serializer writes (`tool_call_id`, OpenAI's), no longer `call_id`. Rows whose
    metadata cannot be read are left as they are (`sessions repair` drops them)."""
    rows = db.execute("SELECT rowid, meta FROM messages WHERE role = 'tool'").fetchall()
    for rowid, meta in rows:
        try:
            value = bounded_loads(meta, "meta")
        except (TypeError, ValueError, UserError):
            continue
        if isinstance(value, dict) and "call_id" in value:
            value.setdefault("tool_call_id", value.pop("call_id"))
            db.execute("UPDATE messages SET meta = ? WHERE rowid = ?", (json.dumps(value), rowid))


# The database's layout, one migration per version: `PRAGMA user_version` says which
# have run. A database made before versions (user_version 0) has version 1's tables
# already; `IF NOT EXISTS` makes its migration a no-op, so a new file and an old one take
# the same path. A step is SQL, or a function for data SQL cannot rewrite safely. Add a
# version by appending a migration, never by editing one.
MIGRATIONS: tuple[tuple[str | Callable[[sqlite3.Connection], None], ...], ...] = (
    (  # 1: sessions, turns, messages
        """CREATE TABLE IF NOT EXISTS sessions (
            id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE IF NOT EXISTS turns (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            turn INTEGER NOT NULL,
            status TEXT NOT NULL,            -- running | done | stopped
            stopped_by TEXT,
            started REAL NOT NULL,
            ended REAL,
            PRIMARY KEY (session_id, turn)
        )""",
        """CREATE TABLE IF NOT EXISTS messages (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            turn INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            created REAL NOT NULL,
            PRIMARY KEY (session_id, turn, seq)
        )""",
    ),
    (  # 2: `sessions list` (newest first) reads an index, not the whole table
        "CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions(updated)",
    ),
    # 3: a message row is its `to_dict()` (agent.messages): role and content in their
    # columns, its other keys in `meta` beside the run's (step, stats)
    (_tool_call_ids,),
)
SCHEMA_VERSION = len(MIGRATIONS)

RUNNING, DONE, STOPPED = "running", "done", "stopped"
_SESSION_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
log = logging.getLogger(__name__)


class SessionNotFoundError(UserError):
    """No session has that id (or the prefix matches several)."""


class SessionDataError(UserError):
    """A stored session cannot be read back: names the session and the way out."""


@dataclass(frozen=True)
class SessionInfo:
    id: str
    created: float
    updated: float
    title: str
    model: str
    turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "updated": self.updated,
            "title": self.title,
            "model": self.model,
            "turns": self.turns,
        }


@dataclass(frozen=True)
class StoredMessage:
    """One message row: the typed message, and what the run noted beside it (`meta`:
    an assistant step's number and statistics)."""

    turn: int
    seq: int
    message: Message
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> Role:
        return self.message.role

    @property
    def content(self) -> str:
        return self.message.content


def _row(message: Message, meta: dict[str, Any] | None) -> tuple[str, str, dict[str, Any]]:
    """(role, content, meta) of a message row: its `to_dict()`, role and content in their
    columns and the rest beside the run's metadata."""
    data = message.to_dict()
    role, content = data.pop("role"), data.pop("content") or ""
    run = {k: v for k, v in (meta or {}).items() if k not in MESSAGE_KEYS}
    return role, content, {**run, **data}


def _stored(turn: int, seq: int, role: Any, content: Any, meta: Any) -> StoredMessage | str:
    """A message row read back through the one parser (`message_from_dict`), or why it
    cannot be."""
    if not isinstance(content, str):
        return "its text is not text"
    if not isinstance(meta, str):
        return "its metadata is not text"
    try:
        value = bounded_loads(meta, "its metadata", max_bytes=MAX_JSON_BYTES)
    except InputLimitError as exc:
        return str(exc)
    except ValueError:
        return "its metadata is not JSON"
    if not isinstance(value, dict):
        return "its metadata is not a JSON object"
    try:
        message = message_from_dict({**value, "role": role, "content": content}, "the message")
    except MessageError as exc:
        return str(exc)
    run = {k: v for k, v in value.items() if k not in MESSAGE_KEYS}
    return StoredMessage(turn, seq, message, run)


@dataclass(frozen=True)
class TurnInfo:
    turn: int
    status: str
    stopped_by: str | None
    messages: tuple[StoredMessage, ...]


def check_session_id(session_id: str) -> str:
    """`session_id`, or a UserError. Matched in full: `re.match` with `$` let "abc\\n" in."""
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise UserError(
            f"invalid session id '{session_id}': use 1-64 letters, digits, '-', '_' or '.'"
        )
    return session_id


def default_db_path() -> Path:
    return data_dir() / "sessions.sqlite3"


class SessionStore:
    """All sessions in one database file, safe across processes and threads.

    One connection per store, opened once: reconnecting (and re-asserting WAL mode)
    for every message cost tens of milliseconds per agent step.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the session directory {self.path.parent}: "
                f"{exc.strerror or exc}; set EDGE_AGENT_DATA_DIR to a writable directory"
            ) from None
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from None
        try:
            self._migrate()
        except UserError:
            self._db.close()
            raise

    def _version(self, db: sqlite3.Connection) -> int:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise UserError(
                f"the session database {self.path} is at version {version}, newer than "
                f"this edge-agent knows ({SCHEMA_VERSION}); upgrade edge-agent, or set "
                "EDGE_AGENT_DATA_DIR to use another directory"
            )
        return int(version)

    def _migrate(self) -> None:
        """Bring the database to SCHEMA_VERSION, or refuse one newer than that. A current
        database is only read (a read-only one still lists); a migration is one
        transaction, so a second process opening the file meanwhile waits, then finds
        it done."""
        with self._connect() as db:
            if self._version(db) == SCHEMA_VERSION:
                return
        with self._transaction() as db:
            version = self._version(db)
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for step in MIGRATIONS[number - 1]:
                    if callable(step):
                        step(db)
                    else:
                        db.execute(step)
            # PRAGMA takes no parameters; the number is this module's own int.
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        log.info("session database %s: version %d -> %d", self.path, version, SCHEMA_VERSION)

    def _unreadable(self, exc: sqlite3.Error) -> UserError:
        """The one-line error for a database SQLite cannot use, with the way out."""
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return UserError(
                f"the session database {self.path} is locked by another process ({exc}); "
                "try again when it ends"
            )
        if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc).replace(" ", ""):
            return UserError(
                f"the session database {self.path} is read-only ({exc}); make it writable "
                "or set EDGE_AGENT_DATA_DIR to a writable directory"
            )
        return UserError(
            f"the session database {self.path} cannot be used ({exc}); move it aside "
            f"(`mv {self.path} {self.path}.bad`) and a new one is made on the next run"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:  # corrupt, unreadable: one line, not a traceback
                raise self._unreadable(exc) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._unreadable(exc) from None

    # ------------------------------------------------------------- sessions
    def create(self, session_id: str | None = None, *, model: str = "", title: str = "") -> Session:
        sid = check_session_id(session_id or uuid.uuid4().hex[:12])
        now = time.time()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)).fetchone():
                raise UserError(f"a session with id '{sid}' already exists")
            db.execute(
                "INSERT INTO sessions (id, created, updated, title, model) VALUES (?,?,?,?,?)",
                (sid, now, now, title, model),
            )
        return Session(self, sid)

    def open(self, session_id: str) -> Session:
        """The session with this id, or the only one whose id starts with it."""
        return Session(self, self.resolve(session_id))

    def open_or_create(self, session_id: str, *, model: str = "") -> Session:
        """One transaction: two processes starting the same new id both get it (a check
        and then a create let the second fail with "already exists")."""
        sid = check_session_id(session_id)
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sessions (id, created, updated, title, model) "
                "VALUES (?,?,?,?,?)",
                (sid, now, now, "", model),
            )
        return Session(self, sid)

    def resolve(self, session_id: str) -> str:
        with self._connect() as db:
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
                return session_id
            escaped = session_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = db.execute(
                "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\'", (escaped + "%",)
            ).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            raise SessionNotFoundError(
                f"no session '{session_id}' (see `edge-agent sessions list`)"
            )
        raise SessionNotFoundError(
            f"'{session_id}' matches {len(rows)} sessions; give more of the id"
        )

    def list(self) -> list[SessionInfo]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT s.id, s.created, s.updated, s.title, s.model, "
                "(SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) "
                "FROM sessions s ORDER BY s.updated DESC"
            ).fetchall()
        return [SessionInfo(*row) for row in rows]

    def info(self, session_id: str) -> SessionInfo:
        sid = self.resolve(session_id)
        return next(s for s in self.list() if s.id == sid)

    def delete(self, session_id: str) -> str:
        sid = self.resolve(session_id)
        with self._transaction() as db:
            db.execute("DELETE FROM messages WHERE session_id = ?", (sid,))
            db.execute("DELETE FROM turns WHERE session_id = ?", (sid,))
            db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        return sid

    # ---------------------------------------------------------------- turns
    def begin_turn(self, session_id: str) -> int:
        now = time.time()
        with self._transaction() as db:
            (last,) = db.execute(
                "SELECT COALESCE(MAX(turn), 0) FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()
            turn = int(last) + 1
            db.execute(
                "INSERT INTO turns (session_id, turn, status, started) VALUES (?,?,?,?)",
                (session_id, turn, RUNNING, now),
            )
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
        return turn

    def add_message(
        self,
        session_id: str,
        turn: int,
        message: Message,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Append `message` to a turn; `meta` is the run's note beside it (a step's
        number and statistics)."""
        role, content, meta = _row(message, meta)
        now = time.time()
        with self._transaction() as db:
            (seq,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ? AND turn = ?",
                (session_id, turn),
            ).fetchone()
            db.execute(
                "INSERT INTO messages (session_id, turn, seq, role, content, meta, created) "
                "VALUES (?,?,?,?,?,?,?)",
                (session_id, turn, seq, role, content, json.dumps(meta or {}), now),
            )
            if turn == 1 and seq == 1 and role == "user":
                db.execute(
                    "UPDATE sessions SET title = ? WHERE id = ? AND title = ''",
                    (_title(content), session_id),
                )
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))

    def end_turn(self, session_id: str, turn: int, stopped_by: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE turns SET status = ?, stopped_by = ?, ended = ? "
                "WHERE session_id = ? AND turn = ?",
                (
                    DONE if stopped_by is None else STOPPED,
                    stopped_by,
                    time.time(),
                    session_id,
                    turn,
                ),
            )

    # `list` is a method of this class from here on: annotations name the builtin.
    def turns(self, session_id: str) -> builtins.list[TurnInfo]:
        with self._connect() as db:
            turn_rows = db.execute(
                "SELECT turn, status, stopped_by FROM turns WHERE session_id = ? ORDER BY turn",
                (session_id,),
            ).fetchall()
            msg_rows = db.execute(
                "SELECT turn, seq, role, content, meta FROM messages WHERE session_id = ? "
                "ORDER BY turn, seq",
                (session_id,),
            ).fetchall()
        by_turn: dict[int, list[StoredMessage]] = {}
        for turn, seq, role, content, meta in msg_rows:
            stored = _stored(turn, seq, role, content, meta)
            if isinstance(stored, str):
                raise SessionDataError(
                    f"session '{session_id}' has an unreadable message (turn {turn}, "
                    f"message {seq}: {stored}); drop such messages with `edge-agent sessions "
                    f"repair {session_id}` or delete the session with `edge-agent sessions "
                    f"delete {session_id}`"
                )
            by_turn.setdefault(turn, []).append(stored)
        return [
            TurnInfo(turn, status, stopped_by, tuple(by_turn.get(turn, ())))
            for turn, status, stopped_by in turn_rows
        ]

    def _rows(self, session_id: str) -> builtins.list[tuple[Any, ...]]:
        """Every message row, content as bytes (a row that is not UTF-8 still loads)."""
        with self._connect() as db:
            return db.execute(
                "SELECT turn, seq, CAST(content AS BLOB), meta, role FROM messages "
                "WHERE session_id = ? ORDER BY turn, seq",
                (session_id,),
            ).fetchall()

    def repair(self, session_id: str) -> tuple[str, int]:
        """Delete the messages of a session that cannot be read back; (id, how many)."""
        sid = self.resolve(session_id)
        bad = []
        for turn, seq, content, meta, role in self._rows(sid):
            try:
                text: Any = bytes(content).decode("utf-8") if content is not None else None
            except UnicodeDecodeError:
                text = None
            if text is None or isinstance(_stored(turn, seq, role, text, meta), str):
                bad.append((sid, turn, seq))
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM messages WHERE session_id = ? AND turn = ? AND seq = ?", bad
            )
        return sid, len(bad)


def _title(prompt: str) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= 60 else line[:57] + "..."


class Session:
    """One conversation in a store: what an `Agent` resumes and appends to."""

    def __init__(self, store: SessionStore, session_id: str) -> None:
        self.store = store
        self.id = session_id
        self.dropped_turns = 0
        self.dropped_bytes = 0
        self.history_limit = MAX_HISTORY_BYTES

    def __repr__(self) -> str:
        return f"Session({self.id!r})"

    def history(self, max_bytes: int = MAX_HISTORY_BYTES) -> list[Message]:
        """Chat messages of the finished turns (interrupted turns are left out).

        At most `max_bytes` of message text, newest turns kept: the oldest turns that do
        not fit are left out before anything is tokenized (a 100 MB message once aborted
        the process at 4.9 GB). `dropped_turns` and `dropped_bytes` say what was left out,
        so the caller can tell the user.
        """
        turns = [t for t in self.store.turns(self.id) if t.status != RUNNING]
        sizes = [
            sum(len(m.content.encode("utf-8", "surrogatepass")) for m in t.messages) for t in turns
        ]
        keep_from = len(turns)
        total = 0
        while keep_from > 0 and total + sizes[keep_from - 1] <= max_bytes:
            keep_from -= 1
            total += sizes[keep_from]
        self.dropped_turns = keep_from
        self.dropped_bytes = sum(sizes[:keep_from])
        self.history_limit = max_bytes
        return [m.message for t in turns[keep_from:] for m in t.messages]

    def history_note(self) -> str | None:
        """What `history` left out, in one line for the user (None: nothing)."""
        if not self.dropped_turns:
            return None
        return (
            f"session {self.id}: the {self.dropped_turns} oldest turn(s) "
            f"({size_text(self.dropped_bytes)}) were left out of the conversation, over the "
            f"history limit of {size_text(self.history_limit)}"
        )

    def turns(self) -> list[TurnInfo]:
        return self.store.turns(self.id)

    def replay(self) -> list[ReplayTurn]:
        """The finished turns as the events their runs produced (for a UI to render
        like a live run; agent.session_replay)."""
        from agent.session_replay import replay_turns

        return replay_turns(self.turns())

    def begin_turn(self) -> int:
        return self.store.begin_turn(self.id)

    def add_message(self, turn: int, message: Message, meta: dict[str, Any] | None = None) -> None:
        self.store.add_message(self.id, turn, message, meta)

    def end_turn(self, turn: int, stopped_by: str | None) -> None:
        self.store.end_turn(self.id, turn, stopped_by)
