"""`edge-agent demo`: the whole stack on a fresh, offline machine in one command.

It pulls `smollm2` if needed (the only model that is both real and available offline),
indexes the project's own documentation, and answers questions about it the way a
135M model can get them right (agent/docqa.py): the framework retrieves passages with
the question's own words, and the answer is JSON under a grammar, a command quoted in
the passages and the number of the passage that quotes it. `--headless` answers one
question and prints its events as JSON lines (one `edge-agent run --json` object per
line) and the answer on stderr; it exits 0 unless the run failed. Without it the chat UI
opens with the same question suggested in the prompt.

On Linux the model runs on the CPU fast path when MKL is installed (agent/fastpath.py):
the headless demo then takes seconds instead of half a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from agent.cli.common import EXIT_OK, add_model_arg, positive_int
from agent.errors import UserError

DEMO_MODEL = "smollm2"
# Its words find the README's first passage (bm25: "pytest" is rare), and the answer is
# a command that passage quotes: the README's test command.
DEMO_TASK = "How do I run the tests with pytest?"
# Two small passages: every prompt token is prefilled, and the second passage makes the
# choice of source a real one.
RAG_K = 2
CHUNK_TOKENS = 120
EXIT_RUN_FAILED = 1
PACKAGES = ("agent", "tools", "tui", "schemas")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="try everything: smollm2 answering questions about these docs, in the chat UI",
    )
    add_model_arg(p, default=DEMO_MODEL, remote=False)
    p.add_argument(
        "--headless",
        action="store_true",
        help="answer one question and print its events as JSON lines instead of the UI",
    )
    p.add_argument(
        "--task",
        default=DEMO_TASK,
        help=f"the question (default: {DEMO_TASK!r}; in the UI, the suggested first prompt)",
    )
    p.add_argument(
        "--max-tokens",
        type=positive_int,
        default=96,
        help="tokens the model may generate per answer (default 96)",
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


def display_path(path: str) -> str:
    """A document path relative to the project (or the current folder), for the prompt."""
    for base in (project_root(), Path.cwd()):
        try:
            return str(Path(path).resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return os.path.basename(path)


def run(args: argparse.Namespace) -> int:
    from agent.progress import console_progress
    from agent.retriever import open_index

    if not args.task.strip():
        raise UserError("--task is empty")
    if not args.headless:
        from agent.cli.chat import require_terminal
        from agent.models.registry import check_model_spec

        check_model_spec(args.model)
        require_terminal()
    with console_progress() as progress:
        index_dir = build_demo_index(progress)
    retriever = open_index(index_dir)
    if args.headless:
        return run_headless(args.model, args.task, retriever, args.max_tokens, args.engine)

    from tui.agent_backend import AgentBackend, ChatOptions
    from tui.app import EdgeAgentApp

    # The model loads (and smollm2 is pulled, if needed) inside the app, with progress.
    # No tools: the demo's runs retrieve, then answer; its prompt stays short.
    options = ChatOptions(
        model=args.model,
        retriever=retriever,
        max_tokens=args.max_tokens,
        rag_k=RAG_K,
        document_qa=True,
        engine=args.engine,
    )
    EdgeAgentApp(AgentBackend(options), suggestion=args.task).run()
    return EXIT_OK


def run_headless(
    spec: str, task: str, retriever: Any, max_tokens: int, engine: str = "auto"
) -> int:
    """The scripted question: retrieval, then the constrained answer; events on stdout."""
    from agent.cli.common import load_with_progress
    from agent.docqa import Answer, DocumentQA
    from agent.events import FinalEvent
    from agent.guards import CANCELLED, ERROR

    model = load_with_progress(spec, engine)
    print(f"demo model: {spec} on {model.engine}", file=sys.stderr)
    qa = DocumentQA(model, retriever, k=RAG_K, max_tokens=max_tokens, display_path=display_path)
    print(f"demo task: {task}", file=sys.stderr)

    async def consume() -> FinalEvent:
        final = None
        async for event in qa.stream(task):
            sys.stdout.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
            if isinstance(event, FinalEvent):
                final = event
        assert final is not None
        return final

    final = asyncio.run(consume())
    stats = final.stats
    print(
        f"[{model.name}] {stats.steps} step(s), {stats.prompt_tokens} prompt tokens, "
        f"{stats.generated_tokens} generated, {stats.total_s:.1f} s"
        + (f"; stopped: {final.stopped_by} ({final.reason})" if final.stopped_by else ""),
        file=sys.stderr,
    )
    answer = Answer.from_final(final)
    if answer is not None:
        where = "no such source"
        if answer.citation is not None:
            c = answer.citation
            where = f"{display_path(c.path)}:{c.start}-{c.end}"
        print(f"answer: {answer.command}  [{answer.source}] {where}", file=sys.stderr)
    return EXIT_RUN_FAILED if final.stopped_by in (ERROR, CANCELLED) else EXIT_OK
