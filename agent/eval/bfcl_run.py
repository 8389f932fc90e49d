"""`edge-agent eval bfcl run`: put BFCL cases to a model, one results file per category
and mode, resumable.

Case selection is deterministic: all cases of a category, or with `limit=N` the N cases
at the indices `random.Random(sample_seed).sample(range(len(cases)), N)`, kept in file
order, so a run with the same limit and seed always sees the same cases and a larger
limit is not biased to the top of the file (whose cases cluster by topic).

Results are written one line per case and flushed as each case ends, to
`OUT/<category>.<mode>.jsonl` (`bfcl_results.ResultRecord`). An interrupted run keeps
every finished case; a rerun skips the ids already in the file (a last line cut off
by the interruption is dropped first). `OUT/run.json` holds the settings of the run
(model, engine, budget, sampling, prompts), and a rerun with other settings into the
same directory is refused rather than mixing two experiments in one file.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import UserError
from agent.eval.bfcl_data import BfclCase, check_category, load_cases
from agent.eval.bfcl_modes import (
    MODES,
    FreePrompt,
    Mode,
    ModeRequest,
    build_request,
    free_engine,
    free_prompt_for,
    read_calls,
)
from agent.eval.bfcl_results import ResultRecord, parse_record
from agent.paths import write_atomic

if TYPE_CHECKING:
    from agent.engines.base import ChatModel, StepResult
    from agent.sampling import SamplingParams

MANIFEST = "run.json"
MANIFEST_VERSION = 1
DEFAULT_MAX_TOKENS = 256


def results_path(out_dir: Path, category: str, mode: str) -> Path:
    return out_dir / f"{category}.{mode}.jsonl"


def select_cases(cases: Sequence[BfclCase], limit: int | None, seed: int = 0) -> list[BfclCase]:
    """The cases a run covers (see the module docstring)."""
    if limit is None or limit >= len(cases):
        return list(cases)
    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    picked = set(random.Random(seed).sample(range(len(cases)), limit))
    return [case for i, case in enumerate(cases) if i in picked]


def parse_categories(text: str | Iterable[str]) -> tuple[str, ...]:
    """`simple_python,multiple` (or a list of such), or `all`; UserError for an unknown one."""
    from agent.eval.bfcl_data import CATEGORIES

    parts = [text] if isinstance(text, str) else list(text)
    names: list[str] = []
    for part in parts:
        for name in part.split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                names.extend(CATEGORIES)
            else:
                names.append(check_category(name))
    if not names:
        raise UserError("no BFCL category given")
    return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------- results files
class ResultsFile:
    """One category+mode's results: the ids done so far, and appending new records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, ResultRecord] = {}
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise UserError(f"cannot read results file {self.path}: {exc.strerror}") from None
        lines = data.split(b"\n")  # the last item is what follows the last newline
        offset = 0
        for n, line in enumerate(lines, start=1):
            tail = n == len(lines)
            if line.strip():
                try:
                    record = parse_record(line.decode("utf-8"), f"{self.path}:{n}")
                except (UserError, UnicodeDecodeError):
                    if not tail:
                        raise UserError(
                            f"{self.path}:{n} is not a results record; fix or delete the file"
                        ) from None
                    with self.path.open("r+b") as f:  # cut off by an interruption
                        f.truncate(offset)
                    return
                self.records[record.id] = record
                if tail:  # whole, but its newline was never written
                    with self.path.open("ab") as f:
                        f.write(b"\n")
            offset += len(line) + 1

    def __contains__(self, case_id: object) -> bool:
        return case_id in self.records

    def append(self, record: ResultRecord) -> None:
        """Write one record and flush it, so an interruption keeps it."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(record.to_json() + "\n")
            f.flush()
        self.records[record.id] = record


# --------------------------------------------------------------------- settings
@dataclass(frozen=True)
class RunSettings:
    """What makes two runs comparable; stored in OUT/run.json."""

    model: str
    engine: str
    max_tokens: int
    sampling: dict[str, Any]
    free_prompt: str
    version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_manifest(out_dir: Path, settings: RunSettings) -> None:
    """Refuse to add results made with other settings to a directory (see the module)."""
    path = out_dir / MANIFEST
    wanted = settings.to_dict()
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        existing = None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}; delete it to start afresh") from None
    if existing is not None and existing != wanted:
        changed = sorted(k for k in {*wanted, *existing} if wanted.get(k) != existing.get(k))
        details = ", ".join(f"{k}: {existing.get(k)!r} -> {wanted.get(k)!r}" for k in changed)
        raise UserError(
            f"{out_dir} holds results of a run with other settings ({details}); "
            "use another --out directory, or delete that one"
        )
    if existing is None:  # whole: a run started beside this one may be reading it
        write_atomic(path, json.dumps(wanted, indent=2) + "\n")


def prepare_out_dir(path: str | os.PathLike[str]) -> Path:
    """The output directory, created; UserError if it cannot be."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {path} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # A probe of its own: two runs started together into one --out (constrained
        # and baseline side by side) once unlinked each other's fixed-name probe.
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write to --out {path}: {exc.strerror or exc}") from None
    return out


# --------------------------------------------------------------------- progress
@dataclass(frozen=True)
class RunProgress:
    """Where a run is: reported after each case (and once before the first)."""

    done: int
    total: int
    elapsed_s: float
    category: str = ""
    mode: str = ""
    case_id: str = ""
    skipped: int = 0  # cases already in the results files (resumed)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the mean pace so far (None before the first case)."""
        if self.done <= 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


ProgressCallback = Callable[[RunProgress], None]


def _no_progress(progress: RunProgress) -> None:
    pass


# --------------------------------------------------------------------- the run
@dataclass
class Job:
    """One category in one mode: the cases still to do and where they go."""

    category: str
    mode: Mode
    cases: list[BfclCase]
    results: ResultsFile
    todo: list[BfclCase] = field(default_factory=list)


@dataclass
class RunPlan:
    """Everything a run will do, known before the model loads."""

    out_dir: Path
    modes: tuple[Mode, ...]
    selected: dict[str, list[BfclCase]]  # category -> the selected cases
    jobs: list[Job]

    @property
    def todo(self) -> int:
        return sum(len(job.todo) for job in self.jobs)

    @property
    def skipped(self) -> int:
        return sum(len(job.cases) - len(job.todo) for job in self.jobs)


def plan_run(
    categories: Sequence[str],
    modes: Sequence[Mode],
    out_dir: str | os.PathLike[str],
    *,
    limit: int | None = None,
    sample_seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
) -> RunPlan:
    """Load and select the cases, open the results files (no model involved), so every
    mistake in the input is reported before a model is loaded."""
    for mode in modes:
        if mode not in MODES:
            raise UserError(f"unknown mode '{mode}'; expected one of: {', '.join(MODES)}")
    categories = parse_categories(categories)
    selected = {c: select_cases(load_cases(c, data_dir), limit, sample_seed) for c in categories}
    out = prepare_out_dir(out_dir)
    jobs = []
    for category in categories:
        for mode in modes:
            results = ResultsFile(results_path(out, category, mode))
            cases = selected[category]
            jobs.append(
                Job(category, mode, cases, results, [c for c in cases if c.id not in results])
            )
    return RunPlan(out, tuple(modes), selected, jobs)


class BfclRunner:
    """Runs a plan's jobs on one model, writing each result as it comes."""

    def __init__(
        self,
        model: ChatModel,
        *,
        sampling: SamplingParams,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        free_prompt: str = "auto",
        call_whitespace: str | None = None,
        loop_guard: bool = False,
        progress: ProgressCallback = _no_progress,
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        if max_tokens < 1:
            raise UserError(f"max_tokens must be at least 1, got {max_tokens}")
        self.model = model
        self.sampling = sampling
        self.max_tokens = max_tokens
        self.free_prompt: FreePrompt = free_prompt_for(model, free_prompt)
        self.call_whitespace = call_whitespace
        self.loop_guard = loop_guard
        self.progress = progress
        self.warn = warn
        self._stop = threading.Event()
        self._engines: dict[Mode, ChatModel] = {}

    def engine(self, mode: Mode) -> ChatModel:
        if mode not in self._engines:
            self._engines[mode] = (
                free_engine(self.model, self.free_prompt) if mode == "free" else self.model
            )
        return self._engines[mode]

    def run(self, plan: RunPlan) -> None:
        """Run every case still to do. Ctrl+C (KeyboardInterrupt) stops at once; what was
        done is in the results files, and the interrupt is raised again."""
        asyncio.run(self._run(plan))

    async def _run(self, plan: RunPlan) -> None:
        total = plan.todo
        done = 0
        started = time.perf_counter()
        self.progress(RunProgress(0, total, 0.0, skipped=plan.skipped))
        for job in plan.jobs:
            for case in job.todo:
                record = await self.run_case(job.mode, case)
                job.results.append(record)
                done += 1
                elapsed = time.perf_counter() - started
                self.progress(
                    RunProgress(done, total, elapsed, job.category, job.mode, case.id, plan.skipped)
                )

    async def run_case(self, mode: Mode, case: BfclCase) -> ResultRecord:
        """One case in one mode, as the record the results file gets."""
        mode_request = build_request(
            mode, case, self.sampling, self.free_prompt, self.call_whitespace, self.loop_guard
        )
        return await self.run_request(mode_request, case)

    async def run_request(self, mode_request: ModeRequest, case: BfclCase) -> ResultRecord:
        """`case` put to the model as `mode_request` says (a variant of a mode's own
        request, for an experiment), as the record the results file gets."""
        mode = mode_request.mode
        engine = self.engine(mode)
        t0 = time.perf_counter()
        prepared = await asyncio.to_thread(engine.prepare, mode_request.request)
        budget = min(self.max_tokens, engine.context_length - prepared.prompt_tokens)
        if budget < max(prepared.min_tokens, 1):
            self.warn(
                f"{case.id} ({mode}): not run, its shortest output needs "
                f"{prepared.min_tokens} tokens and {max(budget, 0)} are left "
                f"(prompt {prepared.prompt_tokens}, --max-tokens {self.max_tokens})"
            )
            return ResultRecord(case.id, [], "", 0.0, 0)
        result: StepResult | None = None
        async for item in engine.stream(prepared, budget, should_stop=self._stop.is_set):
            if not hasattr(item, "kind"):  # the StepResult (text pieces have a kind)
                result = item
        assert result is not None
        latency = time.perf_counter() - t0
        return ResultRecord(
            case.id,
            read_calls(mode_request, result),
            result.raw,
            round(latency, 4),
            result.stats.generated_tokens,
        )
