"""The hostile-input table: one row per case, run through the real entry point.

Each row is an input and the exit code and the words its one-line error must carry;
no row may print a traceback, and the error is a single line. Rows that need files
(a deep schema, a FIFO, a corrupt database) build them in a per-test directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from agent.cli.common import finite_float
from agent.cli.main import build_parser
from agent.messages import UserMessage

MIB = 1024 * 1024


def nested_schema(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def corrupt_sessions(tmp: Path) -> None:
    (tmp / "data").mkdir()
    (tmp / "data" / "sessions.sqlite3").write_bytes(b"garbage, not sqlite " * 500)


def unreadable_row(tmp: Path) -> None:
    from agent.sessions import SessionStore

    store = SessionStore(tmp / "data" / "sessions.sqlite3")
    session = store.create("s1")
    turn = session.begin_turn()
    session.add_message(turn, UserMessage("hi"))
    session.end_turn(turn, None)
    store.close()
    with sqlite3.connect(tmp / "data" / "sessions.sqlite3") as db:
        db.execute("UPDATE messages SET meta = '[[[['")


@dataclass
class Case:
    id: str
    args: list[str]
    exit_code: int
    says: str
    stdin: bytes = b""
    setup: Callable[[Path], None] = field(default=lambda tmp: None)


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (tmp / name).write_bytes(data)

    return setup


CASES = [
    Case("stdin-over-limit", ["generate"], 2, "more than 1 MiB, over the limit of 1 MiB",
         stdin=b"a" * (3 * MIB)),
    Case("extract-stdin-over-limit", ["extract", "--schema", "contact"], 2,
         "the input text on stdin: more than 1 MiB", stdin=b"x" * (2 * MIB)),
    Case("generate-stdin-not-utf8", ["generate"], 2, "is not UTF-8 text (byte 0xff",
         stdin=b"\xff\xfehello"),
    Case("extract-stdin-not-utf8", ["extract", "--schema", "contact"], 2, "not UTF-8",
         stdin=b"caf\xe9"),
    Case("run-stdin-not-utf8", ["run"], 2, "the prompt on stdin is not UTF-8", stdin=b"\x80"),
    Case("input-file-not-utf8", ["extract", "--schema", "contact", "{tmp}/latin1.txt"], 2,
         "input file '{tmp}/latin1.txt' is not UTF-8", setup=write("latin1.txt", b"caf\xe9")),
    Case("input-file-fifo", ["extract", "--schema", "contact", "{tmp}/fifo"], 2,
         "is a FIFO (named pipe), not a regular file",
         setup=lambda tmp: os.mkfifo(tmp / "fifo")),
    Case("input-file-too-large", ["extract", "--schema", "contact", "{tmp}/big.txt"], 2,
         "input file '{tmp}/big.txt': 2 MiB, over the limit of 1 MiB",
         setup=write("big.txt", "w " * MIB)),
    Case("schema-5000-deep", ["extract", "--schema", "{tmp}/deep.json", "--text", "hi"], 2,
         "nested deeper than the limit of 128 levels",
         setup=write("deep.json", "[" * 5000 + "]" * 5000)),
    Case("schema-100-nested-objects",
         ["extract", "--schema", "{tmp}/nested.json", "--text", "hi"], 2,
         "nested deeper than the limit of 128 levels",
         setup=write("nested.json", json.dumps(nested_schema(100)))),
    Case("schema-file-too-large", ["extract", "--schema", "{tmp}/huge.json", "--text", "hi"],
         2, "over the limit of 1 MiB",
         setup=write("huge.json", json.dumps({"enum": ["x" * 100] * 20_000}))),
    Case("temp-nan", ["generate", "--temp", "nan", "hi"], 2, "--temp: expected a finite number"),
    Case("temp-inf", ["generate", "--temp", "inf", "hi"], 2, "expected a finite number"),
    Case("extract-temp-nan", ["extract", "--schema", "contact", "--temp", "nan", "--text", "x"],
         2, "expected a finite number, got 'nan'"),
    Case("top-p-neg-inf", ["run", "--top-p=-inf", "hi"], 2, "expected a finite number"),
    Case("min-p-nan", ["generate", "--min-p", "NaN", "hi"], 2, "expected a finite number"),
    Case("repetition-penalty-inf", ["generate", "--repetition-penalty", "1e999", "hi"], 2,
         "expected a finite number"),
    Case("compile-timeout-nan",
         ["extract", "--schema", "contact", "--compile-timeout", "nan", "--text", "x"], 2,
         "--compile-timeout: expected a finite number"),
    Case("seed-negative", ["generate", "--seed", "-1", "hi"], 2,
         "--seed: expected a whole number from 0 to 4294967295, got -1"),
    Case("seed-too-large", ["generate", "--seed", str(2**40), "hi"], 2, "from 0 to 4294967295"),
    Case("max-tokens-over-context", ["generate", "-m", "tiny", "--max-tokens", "100000000", "hi"],
         2, "--max-tokens 100000000 is more than the model's context of 32768 tokens"),
    Case("session-id-trailing-newline", ["run", "--session", "abc\n", "hi"], 2,
         "invalid session id"),
    Case("corrupt-sessions-db", ["sessions", "list"], 2, "cannot be used (file is not a database)",
         setup=corrupt_sessions),
    Case("unreadable-session-row", ["sessions", "show", "s1"], 2,
         "`edge-agent sessions repair s1`", setup=unreadable_row),
    Case("unwritable-data-dir", ["sessions", "list"], 2, "cannot create the directory",
         setup=write("data", "a file where the data directory should be")),
    Case("index-dir-cannot-be-made",
         ["ingest", "{tmp}/latin1.txt", "--index", "{tmp}/latin1.txt/idx"], 2,
         "cannot create the index directory", setup=write("latin1.txt", b"caf\xe9")),
    Case("index-file-is-fifo", ["search", "x", "--index", "{tmp}/idx"], 2,
         "is a FIFO (named pipe), not an index file",
         setup=lambda tmp: ((tmp / "idx").mkdir(), os.mkfifo(tmp / "idx" / "index.sqlite3"))),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path):
    case.setup(tmp_path)
    env = dict(os.environ, EDGE_AGENT_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *(a.format(tmp=tmp_path) for a in case.args)],
        input=case.stdin,
        capture_output=True,
        env=env,
        timeout=300,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr
    assert proc.returncode == case.exit_code, stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    assert case.says.format(tmp=tmp_path) in errors[0]


def test_every_float_option_rejects_nan_and_infinity():
    """One argparse type for every float option, so a new one cannot forget it."""
    parser = build_parser()
    floats = []
    for sub in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        for action in sub._actions:
            assert action.type is not float, f"{sub.prog} {action.option_strings} uses float"
            if action.type is finite_float:
                floats.append(action.option_strings[0])
    assert {"--temp", "--top-p", "--min-p", "--repetition-penalty", "--compile-timeout"} <= set(
        floats
    )


@pytest.fixture(scope="module")
def server_url():
    from agent.engines.scripted import ScriptedModel
    from agent.server import ServerConfig
    from agent.server.serve import serve_in_background

    with serve_in_background(ScriptedModel(["ok"] * 10), ServerConfig()) as server:
        yield server.url


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"[" * 5000 + b"]" * 5000, 400, "nested deeper than the limit of 64 levels"),
        (
            json.dumps({"model": "scripted", "messages": [{"role": "user", "content": "hi"}],
                        "metadata": {"x": json.loads("[" * 100 + "]" * 100)}}).encode(),
            400,
            "nested deeper than the limit",
        ),
        (b"{not json", 400, "the request body is not JSON"),
        (b"x" * (17 * MIB), 413, "the request body: 17 MiB, over the limit of 16 MiB"),
    ],
    ids=["deep-array", "deep-field", "not-json", "too-large"],
)  # fmt: skip
def test_hostile_request_bodies(server_url, body, status, says):
    response = httpx.post(
        f"{server_url}/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == status
    assert says in response.json()["error"]["message"]
