"""`edge-agent extract`: valid JSON on stdout, stats on stderr, exit 2 on schema errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from agent.cli.main import main
from schemas import shipped_schema

TEXT = "Maria Rossi (maria.rossi@example.it, +39 06 1234 5678) works at Acme in Rome."


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_extract_prints_valid_json_and_stats(tiny, tmp_path):
    source = tmp_path / "note.txt"
    source.write_text(TEXT, encoding="utf-8")
    proc = run_cli("extract", "--schema", "contact", "--model", "tiny", str(source))
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(
        shipped_schema("contact"), format_checker=jsonschema.FormatChecker()
    ).validate(value)
    stats = proc.stderr.strip().splitlines()[-1]
    assert "grammar compile" in stats and "mask" in stats and "forced" in stats
    assert "(llguidance" in stats  # the engine that served the request
    assert "Traceback" not in proc.stderr


def test_extract_reads_stdin_and_a_schema_file(tiny, tmp_path):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    path = tmp_path / "city.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    proc = run_cli("extract", "--schema", str(path), "--model", "tiny", "-", stdin=TEXT)
    assert proc.returncode == 0, proc.stderr
    value = json.loads(proc.stdout)
    assert set(value) == {"city"} and len(value["city"]) <= 20


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("schema_text", "needle"),
    [
        ("{not json", "is not JSON"),
        ('{"type": "strin"}', "invalid JSON Schema"),
        ('{"type": "integer", "minimum": 5, "maximum": 3}', "no JSON value satisfies"),
        ('{"allOf": [{"type": "string"}, {"const": 3}]}', "no JSON value satisfies"),
        ('{"type": "string", "pattern": "(?<=a)b"}', "pattern"),
    ],
    ids=["not-json", "invalid", "unsatisfiable-range", "unsatisfiable-types", "unsupported"],
)
def test_schema_errors_exit_2_with_one_line(tmp_path, capsys, schema_text, needle):
    schema = _write(tmp_path, "schema.json", schema_text)
    started = time.monotonic()
    code = main(["extract", "--schema", schema, "--model", "tiny", "--text", TEXT])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    # The schema is checked before the model is loaded, well within the compile timeout.
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--schema", "no-such-schema", "--text", "x"], "neither a file nor a shipped schema"),
        (["--schema", "contact", "/no/such/input.txt"], "does not exist"),
        (["--schema", "contact", "--text", "  "], "empty"),
        (["--schema", "contact", "--text", "x", "--compile-timeout", "0"], "--compile-timeout"),
        (["--schema", "event", "--text", "x", "--max-tokens", "2"], "max_tokens"),
    ],
)
def test_bad_input_exits_2(tiny, capsys, args, needle):
    assert main(["extract", "--model", "tiny", *args]) == 2
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("edge-agent: error:")]
    assert len(errors) == 1 and needle in errors[0], err  # progress lines may precede it
    assert "Traceback" not in err


def test_example_writes_one_valid_record_per_file(tiny, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(2):
        (folder / f"c{i}.txt").write_text(f"Contact {i}: Bob, bob{i}@example.org", "utf-8")
    out = tmp_path / "contacts.jsonl"
    example = Path(__file__).parents[1] / "examples" / "extract_contacts.py"
    proc = subprocess.run(
        [sys.executable, str(example), str(folder), "--out", str(out), "--max-tokens", "96"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["file"] for r in records] == ["c0.txt", "c1.txt"]
    validator = jsonschema.Draft202012Validator(
        shipped_schema("contact"), format_checker=jsonschema.FormatChecker()
    )
    for record in records:
        validator.validate(record["contact"])
    assert "(cached)" in proc.stderr  # the grammar compiled once, then came from the cache


def test_extract_drafts_from_the_text_without_changing_the_json(tiny, tmp_path):
    """`--lookup` (on by default) feeds tokens copied from the text ahead; the stats
    say how many were taken, and the JSON is what `--lookup 0` gives."""
    source = tmp_path / "note.txt"
    source.write_text(f"{TEXT}\n{TEXT}", encoding="utf-8")
    common = ("extract", "--schema", "contact", "--model", "tiny", "--temp", "0", str(source))
    drafted = run_cli(*common)
    plain = run_cli(*common, "--lookup", "0")
    assert drafted.returncode == plain.returncode == 0, drafted.stderr + plain.stderr
    assert json.loads(drafted.stdout) == json.loads(plain.stdout)
    assert "drafted tokens taken" in drafted.stderr.strip().splitlines()[-1]
    assert "drafted tokens taken" not in plain.stderr
    bad = run_cli(*common, "--lookup", "-1")
    assert bad.returncode == 2 and "--lookup must be 0 or more" in bad.stderr
    assert "Traceback" not in bad.stderr
