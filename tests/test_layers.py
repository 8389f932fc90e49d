"""The layers go one way down: a module imports only from its own layer or below.

errors < schema compiler < runtime < constrained output < tools < agent loop < the
retriever, CLI, server, eval and TUI. Every import counts, including those inside
functions (a lazy import upward is still a dependency upward). The table below is the
architecture: a new module must be placed in it, or this test fails.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "tools", "schemas", "tui")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # agent.messages: the typed chat messages every layer above passes around.
    (
        "errors",
        ("agent.errors", "agent.limits", "agent.messages", "schemas.errors", "tools.errors"),
    ),
    ("schema compiler", ("schemas",)),
    (
        "runtime",
        (
            "agent.runtime",
            "agent.last_logits",
            "agent.prompt_lookup",
            "agent.text_lookup",
            "agent.cache_rewind",
            "agent.batch_runtime",
            "agent.batch_mlx",
            "agent.token_runtime",
            "agent.sampling",
            "agent.np_sampling",
            "agent.vocab",
            "agent.stopping",
            "agent.model_info",
            "agent.stats",
            "agent.loader",
            "agent.llamacpp",
            "agent.models",
            "agent.chat_render",
            "agent.fastpath",
            "agent.memory_plan",
            "agent.model_thread",
            "agent.paths",
            "agent.progress",
            "agent.wheels",
            "agent.prompting",
            "agent.prompt_cache",
        ),
    ),
    (
        "constrained output",
        (
            "agent.constrained",
            "agent.structured",
            "agent.structured_batch",
            "agent.call_constraint",
            "agent.tool_parser",
        ),
    ),
    ("tools", ("tools",)),
    (
        "agent loop",
        (
            "agent.agent",
            "agent.engines",
            "agent.events",
            "agent.sessions",
            "agent.session_replay",
            "agent.guards",
            "agent.output_split",
            "agent.rag",
            "agent.extraction",
            "agent.tracing",
        ),
    ),
    (
        "applications",
        (
            "agent",  # the package's lazy front door re-exports from every layer
            "agent.retriever",
            "agent.docextract",
            "agent.docqa",
            "agent.mcp_serve",
            "agent.cli",
            "agent.eval",
            "agent.quant",
            "agent.server",
            "agent.integrations",
            "tui",
        ),
    ),
)


def layer_of(module: str) -> int | None:
    """The layer of the longest prefix that names `module` (None: not in the table)."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (index, len(prefix))
    return None if best is None else best[0]


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
    return [(name, line) for name, line in out if name.split(".")[0] in PACKAGES]


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in project_modules() if layer_of(m) is None)
    assert not unplaced, f"place these modules in tests/test_layers.py LAYERS: {unplaced}"


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for module, path in sorted(project_modules().items()):
        mine = layer_of(module)
        if mine is None:
            continue
        for target, line in imports_of(path):
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                upward.append(
                    f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[mine][0]}) imports "
                    f"{target} ({LAYERS[theirs][0]})"
                )
    assert not upward, "\n".join(upward)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from agent.agent import Agent\n")
    assert imports_of(bad) == [("agent.agent", 2)]
    assert layer_of("agent.agent") > layer_of("agent.runtime")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("package", "heavy"),
    [
        ("schemas", {"mlx", "mlx_lm", "transformers", "llguidance", "textual", "agent"}),
        ("tools", {"mlx", "mlx_lm", "transformers", "llguidance", "textual"}),
        ("agent.engines", {"mlx", "mlx_lm", "transformers", "textual", "tui"}),
        # The chat UI in front of a remote model loads no local runtime.
        ("tui.app", {"mlx", "mlx_lm", "transformers", "llama_cpp"}),
    ],
)
def test_lower_layers_import_without_model_or_ui_code(package, heavy):
    probe = (
        f"import sys, {package}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(heavy)!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"importing {package} loaded {proc.stdout.strip()}"


def test_a_remote_generate_loads_no_local_runtime():
    """`generate --model openai:...` talks HTTP only: no MLX, no llama.cpp (a closed
    port makes it end at once with a one-line error)."""
    probe = (
        "import sys\n"
        "from agent.cli.main import main\n"
        "code = main(['generate', '--model', 'openai:http://127.0.0.1:9/v1#m', 'hi'])\n"
        "heavy = {'mlx', 'mlx_lm', 'transformers', 'llama_cpp'}\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "127.0.0.1:9" in proc.stderr
