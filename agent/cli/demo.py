"""`edge-agent demo`: the whole stack on a fresh, offline machine in one command.

It pulls `smollm2` if needed (the only model that is both real and available offline),
indexes the project's own documentation for `rag_search`, and opens the chat with the
built-in tools. `--headless` runs one scripted task instead and prints its events as
JSON lines (one `edge-agent run --json` object per line), so CI and scripts can see
every step; it exits 0 unless the run failed (a guard stop such as the token budget
still shows the whole pipeline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from agent.cli.common import EXIT_OK, add_model_arg, positive_int
from agent.errors import UserError

DEMO_MODEL = "smollm2"
# Naming the search words gives a 135M model a query that matches the docs.
DEMO_TASK = 'Look up "pytest" in the docs: which command runs the tests?'
# Small passages, few of them: every prompt token is prefilled, and with mlx[cpu]'s
# reference BLAS on Linux smollm2 prefills about 10 tokens/s.
RAG_K = 2
CHUNK_TOKENS = 120
EXIT_RUN_FAILED = 1
PACKAGES = ("agent", "tools", "tui", "schemas")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="try everything: smollm2, a RAG index of these docs, built-in tools, the chat UI",
    )
    add_model_arg(p, default=DEMO_MODEL)
    p.add_argument(
        "--headless",
        action="store_true",
        help="run one scripted task and print its events as JSON lines instead of the UI",
    )
    p.add_argument(
        "--task", default=DEMO_TASK, help="the prompt of the --headless run (default: a RAG task)"
    )
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=192,
        help="tokens the model may generate per answer (default 192)",
    )
    p.set_defaults(func=run)


def project_root() -> Path:
    """The source checkout this package runs from (an editable install), if any."""
    return Path(__file__).resolve().parents[2]


def demo_documents(root: Path | None = None) -> list[Path]:
    """The project's documentation: the README (and any docs/ or examples/ markdown) in
    a checkout; in an installed wheel (no README beside the package) the package
    sources, whose docstrings are the documentation that ships. BENCHMARKS.md is left
    out: its tables of figures make poor passages for a small model."""
    root = root or project_root()
    docs = [root / "README.md"] if (root / "README.md").is_file() else []
    if docs:
        for folder in ("docs", "examples"):
            docs += sorted(p for p in (root / folder).glob("*.md") if p.is_file())
        return docs
    found = [root / name for name in PACKAGES if (root / name).is_dir()]
    if not found:
        raise UserError(f"no documentation found to index under {root}")
    return found


def demo_index_dir() -> Path:
    from agent.paths import cache_dir

    return cache_dir() / "demo-index"


def build_demo_index(progress: Any) -> Path:
    """Ingest the docs; unchanged files are skipped, so a second demo starts at once.

    The index is the demo's own (in the cache directory): when the set of documents or
    the chunking changes, it is rebuilt, since ingest keeps files it is no longer given.
    """
    from agent.retriever import ingest

    index_dir = demo_index_dir()
    docs = demo_documents()
    manifest = index_dir.parent / "demo-index.json"
    wanted = {"docs": [str(d) for d in docs], "chunk_tokens": CHUNK_TOKENS}
    try:
        previous = json.loads(manifest.read_text())
    except (OSError, ValueError):
        previous = None
    if previous != wanted and index_dir.exists():
        shutil.rmtree(index_dir)

    def warn(message: str) -> None:
        print(f"edge-agent: warning: {message}", file=sys.stderr)

    summary = ingest(
        docs, index_dir, chunk_tokens=CHUNK_TOKENS, overlap=20, progress=progress, warn=warn
    )
    manifest.write_text(json.dumps(wanted))
    print(f"demo index: {summary.line()}", file=sys.stderr)
    return index_dir


def run(args: argparse.Namespace) -> int:
    from agent.progress import console_progress
    from agent.retriever import open_index
    from tools import builtin_tools

    if not args.headless:
        from agent.cli.chat import require_terminal

        require_terminal()
    with console_progress() as progress:
        index_dir = build_demo_index(progress)
    retriever = open_index(index_dir)
    # read_file and list_dir see the project (or the current folder for a wheel).
    root = project_root() if (project_root() / "README.md").exists() else Path.cwd()
    tools = builtin_tools(root=root)
    if args.headless:  # a RAG task: rag_search alone keeps the prompt short
        return run_headless(args.model, args.task, [], retriever, args.max_tokens)

    from tui.agent_backend import AgentBackend, ChatOptions
    from tui.app import EdgeAgentApp

    # The model loads (and smollm2 is pulled, if needed) inside the app, with progress.
    options = ChatOptions(
        model=args.model,
        tools=tools,
        retriever=retriever,
        max_tokens=args.max_tokens,
        rag_k=RAG_K,
    )
    EdgeAgentApp(AgentBackend(options)).run()
    return EXIT_OK


def run_headless(spec: str, task: str, tools: list, retriever: Any, max_tokens: int) -> int:
    """The scripted task: the first step must search the docs, the rest is the model's."""
    from agent.agent import Agent
    from agent.cli.common import load_with_progress
    from agent.events import FinalEvent
    from agent.guards import CANCELLED, ERROR

    model = load_with_progress(spec)
    agent = Agent(
        model,
        tools,
        retriever=retriever,
        tool_choice="rag_search",
        max_tokens=max_tokens,
        max_steps=3,
        rag_k=RAG_K,
    )
    print(f"demo task: {task}", file=sys.stderr)

    async def consume() -> FinalEvent:
        final = None
        async for event in agent.stream(task):
            sys.stdout.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
            if isinstance(event, FinalEvent):
                final = event
        assert final is not None
        return final

    final = asyncio.run(consume())
    stats = final.stats
    print(
        f"[{model.name}] {stats.steps} step(s), {stats.tool_calls} tool call(s), "
        f"{stats.generated_tokens} tokens, {stats.total_s:.1f} s, "
        f"{len(final.citations)} source(s) cited"
        + (f"; stopped: {final.stopped_by} ({final.reason})" if final.stopped_by else ""),
        file=sys.stderr,
    )
    # A guard stop (e.g. the token budget) still showed the whole pipeline: exit 0;
    # only a run that failed is a failed demo.
    return EXIT_RUN_FAILED if final.stopped_by in (ERROR, CANCELLED) else EXIT_OK
