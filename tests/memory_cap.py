"""Run code in a child process under a memory cap (`resource.setrlimit`), for tests that
check a memory bound as a cap, not a timing, so they hold on a loaded machine.

The cap is `RLIMIT_DATA` (heap, anonymous mappings and thread stacks: what grows with
the work), set to the child's own data size after `setup` plus the allowance, so the
imports and models `setup` loads are not counted against the code under test. Going
over the cap is a MemoryError in Python, an abort in native code: either way the
child does not print its result and the test fails with the child's stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def run_capped(
    setup: str, body: str, allowance: int, timeout: float = 300, stdin: bytes = b""
) -> dict[str, Any]:
    """Run `setup`, cap the data size at its current size + `allowance` bytes, run
    `body` (which sets a JSON-able `result`, and may read `stdin` from a pipe), and
    return `result`."""
    script = "\n".join(
        [
            "import json, resource",
            textwrap.dedent(setup),
            "def _data_size():",
            "    for line in open('/proc/self/status'):",
            "        if line.startswith('VmData:'):",
            "            return int(line.split()[1]) * 1024",
            "    raise RuntimeError('no VmData in /proc/self/status')",
            f"_cap = _data_size() + {int(allowance)}",
            "resource.setrlimit(resource.RLIMIT_DATA, (_cap, resource.RLIM_INFINITY))",
            "result = None",
            textwrap.dedent(body),
            "print('RESULT ' + json.dumps(result))",
        ]
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
        cwd=_ROOT,
    )
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"the child failed under its memory cap (exit {proc.returncode}):\n{err[-3000:]}"
    )
    return json.loads(lines[-1].removeprefix("RESULT "))
