"""`edge-agent --help` and every command's `--help` import no model code, and every
option says what it does."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from agent.cli.main import build_parser

# Every command and sub-command of the CLI, as typed before `--help`.
COMMANDS = [
    [],
    ["demo"],
    ["chat"],
    ["generate"],
    ["extract"],
    ["run"],
    ["serve"],
    ["sessions"],
    ["sessions", "list"],
    ["sessions", "show"],
    ["sessions", "delete"],
    ["plan"],
    ["models"],
    ["models", "list"],
    ["models", "pull"],
    ["quantize"],
    ["compare"],
    ["engines"],
    ["ingest"],
    ["search"],
    ["eval"],
    ["eval", "bfcl"],
    ["eval", "bfcl", "run"],
    ["eval", "bfcl", "score"],
]
HEAVY = ("mlx", "mlx_lm", "transformers", "jsonschema", "numpy", "textual", "outlines_core")

_PROBE = """
import json, sys
from agent.cli.main import main
try:
    main(sys.argv[1:] + ["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by_help(command: list[str]) -> tuple[str, list[str]]:
    """(help text, modules loaded) of `edge-agent COMMAND --help` in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *command], capture_output=True, text=True, check=True
    )
    return proc.stdout, json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "edge-agent")
def test_help_imports_no_model_code(command):
    text, modules = imported_by_help(command)
    assert text.startswith("usage: edge-agent")
    loaded = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    assert loaded == [], f"`--help` imported {loaded}"


def test_every_command_is_covered():
    text, _ = imported_by_help([])
    listed = set(re.findall(r"^    ([a-z]+)  ", text, flags=re.MULTILINE))
    assert {c[0] for c in COMMANDS if c} == listed


def _options_without_help(text: str) -> list[str]:
    """Option lines of an argparse help text that have no help text after them."""
    lines = text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        match = re.match(r"^  (\S.*?)(\s{2,}\S.*)?$", line)
        if not match or not line.startswith("  ") or line.startswith("   "):
            continue
        if match.group(2):  # help on the same line
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if not following.startswith(" " * 4):  # help would be indented on the next line
            missing.append(match.group(1))
    return missing


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "edge-agent")
def test_every_option_has_help(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    assert _options_without_help(capsys.readouterr().out) == []


def test_help_parser_sees_missing_help():
    import argparse

    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--loud", action="store_true", help="shout")
    assert _options_without_help(parser.format_help()) == ["--quiet"]


def test_cli_constants_match_the_library():
    from agent.cli import extract, search
    from agent.constrained.compile import DEFAULT_COMPILE_TIMEOUT
    from agent.docextract.batch import DEFAULT_BATCH_SIZES
    from agent.retriever import SEARCH_MODES

    assert extract.COMPILE_TIMEOUT_S == DEFAULT_COMPILE_TIMEOUT
    assert extract.DEFAULT_BATCHES == DEFAULT_BATCH_SIZES
    assert search.SEARCH_MODES == SEARCH_MODES
