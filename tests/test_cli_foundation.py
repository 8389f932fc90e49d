"""`edge-agent generate`, `plan` and `models`: output, stats and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agent.cli.main import main


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_generate_streams_text_and_a_stats_line(tiny):
    proc = run_cli("generate", "Say hello", "--model", "tiny", "--max-tokens", "8", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    stats_line = proc.stderr.strip().splitlines()[-1]
    assert "tok/s" in stats_line and "TTFT" in stats_line and "generated" in stats_line
    assert "Traceback" not in proc.stderr


def test_generate_reads_the_prompt_from_stdin(tiny):
    proc = run_cli("generate", "-", "--model", "tiny", "--max-tokens", "3", stdin="hi there")
    assert proc.returncode == 0, proc.stderr
    assert "prompt" in proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["generate", "x", "--model", "no-such-model"], "unknown model"),
        (["generate", "x", "--model", "tiny", "--max-tokens", "0"], "--max-tokens"),
        (["generate", "x", "--model", "tiny", "--temp", "hot"], "--temp"),
        (["plan", "--model", "tiny", "--context", "-5"], "--context"),
        (["plan", "--model", "/no/such/dir"], "unknown model"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, needle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_user_error_from_the_console_script_has_no_traceback():
    proc = run_cli("generate", "x", "--model", "edge-agent-tests/no-such-model-3bit")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("edge-agent: error:") and "tiny" in last
    assert "Traceback" not in proc.stderr


def test_plan_prints_every_row_and_json(tiny, capsys):
    assert main(["plan", "--model", "tiny", "--context", "2048"]) == 0
    out = capsys.readouterr().out
    for row in ("weights", "runtime overhead", "KV cache", "conv state", "estimated peak"):
        assert row in out
    assert main(["plan", "--context", "4096", "--json"]) == 0  # default model, offline
    data = json.loads(capsys.readouterr().out)
    assert data["estimated_peak_bytes"] == sum(
        data[k]
        for k in ("weights_bytes", "runtime_overhead_bytes", "KV_cache_bytes", "conv_state_bytes")
    )
    assert data["weights_bytes"] > 3 * 2**30  # an 8.3B model at 3 bits


def test_models_list_shows_builtins_with_sizes(tiny, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    tiny_row = next(line for line in out.splitlines() if line.startswith("tiny "))
    assert "KB" in tiny_row or "MB" in tiny_row
    assert "smollm2" in out
