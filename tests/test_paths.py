"""agent.paths.write_atomic: a file is replaced whole or not at all."""

from __future__ import annotations

import pytest

from agent.paths import write_atomic


def test_write_atomic_writes_text_and_bytes_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "run.json"
    write_atomic(path, "{}\n")
    assert path.read_text("utf-8") == "{}\n"
    write_atomic(path, b"\x00\x01")  # replaces the older file
    assert path.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "index.json"
    write_atomic(path, "old")
    with pytest.raises(TypeError):
        write_atomic(path, None)  # type: ignore[arg-type]  # fails while writing
    assert path.read_text("utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]
