"""The README's code blocks, and how to run each one as written (tests/test_readme.py,
benchmarks/first_run.py).

Blocks run from the checkout's root, in a private HOME and data directory (so `~/...`
paths and the index land there, never in the repository). Three kinds of line are
handled rather than run:

- `pip install ...`: the environment running this was made by exactly that command
  (CI's fresh venv runs the README's set-up line; `.ci/run` reads it from the README);
- `python -m pytest ...`: the test suite that runs these blocks;
- the chat UI (`edge-agent demo`, `edge-agent chat` without `--headless`): it needs a
  terminal, so it runs in a pseudo-terminal until its model is loaded ("... is ready"),
  then gets Ctrl+Q, and must exit 0.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shlex
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.DOTALL | re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, code, and the heading it sits under."""

    lang: str
    code: str
    heading: str
    number: int  # 1-based, in README order

    @property
    def id(self) -> str:
        return f"{self.number}-{self.lang}-{re.sub(r'[^a-z]+', '-', self.heading.lower())}"


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text(encoding="utf-8") if text is None else text
    blocks = []
    for n, match in enumerate(_BLOCK.finditer(text), start=1):
        before = text[: match.start()]
        headings = re.findall(r"^#+ (.+)$", before, flags=re.MULTILINE)
        blocks.append(Block(match[1], match[2], headings[-1] if headings else "", n))
    return blocks


@dataclass
class Outcome:
    """What running a block (or one of its lines) gave."""

    code: int
    output: str  # stdout, then stderr; a terminal's screen output, escapes removed
    seconds: float
    how: str  # "ran COMMAND", "terminal" or "handled: ..."
    line: str = ""
    stdout: str = ""


def line_kind(line: str) -> str:
    """ "pip", "pytest", "ui" or "run"."""
    words = shlex.split(line, comments=True)
    if words[:2] == ["pip", "install"]:
        return "pytest" if "pytest" in words else "pip"
    if words[:3] == ["python", "-m", "pytest"]:
        return "pytest"
    if words[:1] == ["edge-agent"] and words[1:2] in (["demo"], ["chat"]):
        return "run" if "--headless" in words else "ui"
    return "run"


def block_env(home: Path) -> dict[str, str]:
    """The environment of a block: this interpreter's environment activated (its
    `python` and `edge-agent` first on PATH), a private HOME and data directory."""
    env = {**os.environ, "HOME": str(home), "EDGE_AGENT_DATA_DIR": str(home / "data")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("EDGE_AGENT_BFCL_DATA", None)
    return env


def run_block(block: Block, home: Path, timeout: float = 600) -> list[Outcome]:
    """Run `block` (every line of a bash block, or the Python file); one outcome each."""
    env = block_env(home)
    if block.lang == "python":
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False, dir=home) as f:
            f.write(block.code)
        return [_run([sys.executable, f.name], env, timeout)]
    outcomes = []
    for line in block.code.replace("\\\n", " ").splitlines():  # continuation lines joined
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        kind = line_kind(line)
        if kind == "pip":
            outcome = Outcome(0, "", 0.0, "handled: this environment's set-up")
        elif kind == "pytest":
            outcome = Outcome(0, "", 0.0, "handled: the test suite running this")
        elif kind == "ui":
            outcome = run_in_terminal(line, env, timeout)
        else:
            outcome = _run(["bash", "-c", f"set -eo pipefail; {line}"], env, timeout)
        outcome.line = " ".join(line.split())
        outcomes.append(outcome)
    return outcomes


def _run(command: list[str], env: dict[str, str], timeout: float) -> Outcome:
    t0 = time.perf_counter()
    proc = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t0
    output = proc.stdout + proc.stderr
    return Outcome(proc.returncode, output, seconds, "ran", command[-1], proc.stdout)


def run_in_terminal(line: str, env: dict[str, str], timeout: float) -> Outcome:
    """Run a UI command in a pseudo-terminal until "is ready" shows, then Ctrl+Q."""
    t0 = time.perf_counter()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        ["bash", "-c", line],
        cwd=ROOT,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    raw = b""
    quit_sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                raw += chunk
            text = _ANSI.sub("", raw.decode("utf-8", "replace"))
            if not quit_sent and ("is ready" in text or "Cannot load" in text):
                os.write(master, b"\x11")  # Ctrl+Q
                quit_sent = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    output = _ANSI.sub("", raw.decode("utf-8", "replace"))
    return Outcome(code, output, time.perf_counter() - t0, "terminal")


def readme_test_command() -> str:
    """The test command of the README's set-up line, as .ci/run finds it."""
    line = next(
        s
        for s in README.read_text(encoding="utf-8").splitlines()
        if re.match(r"^pip install .*pytest", s)
    )
    return line.split("&&")[-1].strip()


def repo_state() -> str:
    """Every file of the checkout that git sees as changed or new (ignored ones aside)."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
