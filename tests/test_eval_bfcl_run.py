"""`edge-agent eval bfcl run` (agent/eval/bfcl_run.py and its modes, prompts and report).

A scripted model that answers with each case's ground truth checks the whole pipeline
(requests, reading calls, results files, scoring, validity) without a real model; the
tiny model then runs it end to end through the CLI, where the grammar must make every
constrained output valid even though tiny's weights are random. Data: ../shared/data/bfcl
(tests that need it skip with instructions when it is absent).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_eval_bfcl_score import BFCL, ground_truth_calls

from agent.cli.main import main
from agent.constrained.defaults import DEFAULT_MAX_PARALLEL_CALLS
from agent.engines.base import StepRequest
from agent.engines.scripted import Reply, ScriptedModel
from agent.errors import UserError
from agent.eval import BfclCase, ResultRecord, load_cases
from agent.eval.bfcl_data import HOW_TO_GET
from agent.eval.bfcl_modes import build_request, case_registry
from agent.eval.bfcl_prompts import BFCL_SYSTEM_PROMPT, PYTHON_HINT, bfcl_prompt
from agent.eval.bfcl_report import Report, build_report, summarize
from agent.eval.bfcl_run import (
    BfclRunner,
    ResultsFile,
    RunProgress,
    RunSettings,
    check_manifest,
    plan_run,
    prepare_out_dir,
    results_path,
    select_cases,
)
from agent.sampling import SamplingParams

GREEDY = SamplingParams.greedy()


@pytest.fixture(scope="module")
def bfcl_dir() -> Path:
    if not BFCL.is_dir():
        pytest.skip(f"BFCL data not found at {BFCL}: {HOW_TO_GET}")
    return BFCL


def _case_of(request: StepRequest, cases: dict[str, BfclCase]) -> BfclCase:
    """The case a request was built from (its last user message)."""
    return cases[request.messages[-1].content]


def _pythonic(calls: list[dict[str, Any]]) -> str:
    inner = ", ".join(
        f"{c['name']}({', '.join(f'{k}={v!r}' for k, v in c['arguments'].items())})" for c in calls
    )
    return f"[{inner}]"


def oracle(cases: list[BfclCase]) -> ScriptedModel:
    """A model that answers every mode with the case's ground truth, in its format."""
    by_prompt = {c.messages[-1].content: c for c in cases}

    def reply(request: StepRequest) -> Reply:
        case = _case_of(request, by_prompt)
        truth = ground_truth_calls(case)
        if case.expects_no_call:
            return Reply(text="None of these functions fits the request.")
        if request.answer is not None:  # baseline: the JSON answer
            return Reply(answer=truth if "parallel" in case.category else truth[0])
        if request.tool_choice == "none":  # free mode with BFCL's prompt
            return Reply(text=_pythonic(truth))
        return Reply(calls=[(c["name"], c["arguments"]) for c in truth])

    return ScriptedModel(reply)


# -- selection, prompts, requests ----------------------------------------------------


def test_case_selection_is_a_fixed_sample_in_file_order(bfcl_dir):
    cases = load_cases("simple_python", bfcl_dir)
    first = [c.id for c in select_cases(cases, 12, seed=4)]
    assert first == [c.id for c in select_cases(cases, 12, seed=4)]
    assert first != [c.id for c in select_cases(cases, 12, seed=5)]
    positions = [int(i.rsplit("_", 1)[1]) for i in first]
    assert positions == sorted(positions) and len(set(positions)) == 12
    assert positions[-1] > 100  # spread over the file, not its first cases
    assert select_cases(cases, 1000) == cases and select_cases(cases, None) == cases


def test_bfcl_prompt_is_bfcls_own(bfcl_dir):
    case = load_cases("simple_python", bfcl_dir)[0]
    prompt = bfcl_prompt(case)
    assert prompt.system.startswith(
        "You are an expert in composing functions.You are given a question"
    )
    assert "[func_name1(params_name1=params_value1, params_name2=params_value2...)" in (
        prompt.system
    )
    functions = json.loads(prompt.system.split("that you can invoke.\n", 1)[1])
    assert functions[0]["name"] == "calculate_triangle_area"
    assert functions[0]["description"].endswith(PYTHON_HINT)
    assert case.functions[0]["description"].endswith("height.")  # the case is not modified
    assert prompt.messages == [{"role": "user", "content": case.messages[0].content}]
    assert BFCL_SYSTEM_PROMPT.count("{functions}") == 1


def test_a_case_system_message_joins_each_system_prompt(bfcl_dir):
    case = next(c for c in load_cases("live_multiple", bfcl_dir) if c.messages[0].role == "system")
    own = case.messages[0].content
    for mode in ("constrained", "baseline"):
        request = build_request(mode, case, GREEDY).request
        assert request.system.count(own) == 1
        assert all(m.role != "system" for m in request.messages)
    assert bfcl_prompt(case).system.endswith("\n\n" + own)


def test_constrained_request_is_the_agents_first_step(bfcl_dir):
    """Constrained mode sends exactly what `Agent` sends on its first step, with
    `max_parallel_calls=1` where the category expects one call (the default in the
    parallel categories)."""
    from agent import Agent

    for category, max_calls in (("multiple", 1), ("parallel", DEFAULT_MAX_PARALLEL_CALLS)):
        case = load_cases(category, bfcl_dir)[0]
        truth = ground_truth_calls(case)
        model = ScriptedModel([Reply(calls=[(truth[0]["name"], truth[0]["arguments"])])])
        agent = Agent(model, case_registry(case), tool_choice="required", max_steps=1,
                      sampling=GREEDY, max_parallel_calls=max_calls)  # fmt: skip
        agent.run(case.messages[-1].content)
        sent = model.requests[0]
        ours = build_request("constrained", case, GREEDY).request
        for name in ("system", "messages", "tools", "tool_choice", "call_schema", "sampling"):
            assert getattr(ours, name) == getattr(sent, name), name
        assert ours.max_parallel_calls == sent.max_parallel_calls == max_calls
    irrelevant = load_cases("irrelevance", bfcl_dir)[0]
    assert build_request("constrained", irrelevant, GREEDY).request.tool_choice == "auto"
    assert build_request("free", case, GREEDY).request.tool_choice == "auto"


def test_baseline_grammar_is_one_call_or_an_array_in_declared_order(bfcl_dir):
    simple = load_cases("simple_python", bfcl_dir)[0]
    request = build_request("baseline", simple, GREEDY).request
    schema = request.answer.json_schema
    assert schema["properties"]["name"] == {"const": "calculate_triangle_area"}
    assert list(schema["properties"]["arguments"]["properties"]) == ["base", "height", "unit"]
    assert request.tools == [] and request.tool_choice == "none"
    assert json.dumps(simple.functions[0]) in request.system  # the functions' own JSON
    parallel = load_cases("parallel", bfcl_dir)[0]
    assert build_request("baseline", parallel, GREEDY).request.answer.json_schema["type"] == (
        "array"
    )
    irrelevant = load_cases("irrelevance", bfcl_dir)[0]
    assert build_request("baseline", irrelevant, GREEDY).request.answer is None


# -- running ---------------------------------------------------------------------------

CATS = ["simple_python", "parallel_multiple", "live_simple", "irrelevance"]


def test_ground_truth_answers_score_full_marks_in_every_mode(bfcl_dir, tmp_path):
    plan = plan_run(CATS, ["constrained", "free", "baseline"], tmp_path, limit=3,
                    data_dir=bfcl_dir)  # fmt: skip
    cases = [c for selected in plan.selected.values() for c in selected]
    model = oracle(cases)
    for free_prompt in ("native", "bfcl"):
        out = tmp_path / free_prompt
        plan = plan_run(CATS, ["constrained", "free", "baseline"], out, limit=3,
                        data_dir=bfcl_dir)  # fmt: skip
        BfclRunner(model, sampling=GREEDY, free_prompt=free_prompt).run(plan)
        report = build_report(plan.jobs, plan.selected, {})
        assert len(report.rows) == 12
        for row in report.rows:
            assert (row.cases, row.correct, row.valid) == (3, 3, 3), row
        lines = results_path(out, "simple_python", "free").read_text().splitlines()
        record = json.loads(lines[0])
        assert set(record) == {"id", "calls", "raw", "latency_s", "output_tokens"}
        assert record["calls"] == ground_truth_calls(plan.selected["simple_python"][0])
    bfcl_requests = [r for r in model.requests if r.system.startswith(BFCL_SYSTEM_PROMPT[:40])]
    assert len(bfcl_requests) == 12 and all(r.tools == [] for r in bfcl_requests)


def test_rerun_resumes_and_an_interrupt_keeps_finished_cases(bfcl_dir, tmp_path):
    cases = select_cases(load_cases("simple_python", bfcl_dir), 4)
    inner = oracle(cases)
    calls = 0

    def interrupt_third(request: StepRequest) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return inner.replies(request)  # type: ignore[operator]

    plan = plan_run(["simple_python"], ["constrained"], tmp_path, limit=4, data_dir=bfcl_dir)
    with pytest.raises(KeyboardInterrupt):
        BfclRunner(ScriptedModel(interrupt_third), sampling=GREEDY).run(plan)
    path = results_path(tmp_path, "simple_python", "constrained")
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [
        c.id for c in cases[:2]
    ]
    resumed = ScriptedModel(inner.replies)
    plan = plan_run(["simple_python"], ["constrained"], tmp_path, limit=4, data_dir=bfcl_dir)
    assert [c.id for c in plan.jobs[0].todo] == [c.id for c in cases[2:]]
    BfclRunner(resumed, sampling=GREEDY).run(plan)
    assert len(resumed.requests) == 2
    again = ScriptedModel([])  # any request would fail: nothing is left to do
    plan = plan_run(["simple_python"], ["constrained"], tmp_path, limit=4, data_dir=bfcl_dir)
    assert plan.todo == 0 and plan.skipped == 4
    BfclRunner(again, sampling=GREEDY).run(plan)
    assert again.requests == []
    assert len(path.read_text().splitlines()) == 4


def test_results_file_drops_a_cut_off_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    good = [ResultRecord("a", [], "x", 1.0, 3), ResultRecord("b", [], "y", 2.0, 4)]
    path.write_text("".join(r.to_json() + "\n" for r in good) + '{"id": "c", "cal')
    results = ResultsFile(path)
    assert set(results.records) == {"a", "b"}
    results.append(ResultRecord("c", [], "z", 1.0, 1))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]
    path.write_text(good[0].to_json())  # whole, without its newline
    ResultsFile(path).append(good[1])
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b"]
    path.write_text("not json\n" + good[0].to_json() + "\n")
    with pytest.raises(UserError, match=r"r\.jsonl:1 is not a results record"):
        ResultsFile(path)


def test_other_settings_are_refused_in_the_same_directory(tmp_path):
    settings = RunSettings("smollm2", "llama.cpp", 256, {"temperature": 0.0}, "auto")
    check_manifest(tmp_path, settings)
    check_manifest(tmp_path, settings)  # the same settings resume
    other = RunSettings("smollm2", "llama.cpp", 512, {"temperature": 0.0}, "auto")
    with pytest.raises(UserError, match=r"max_tokens: 256 -> 512.*another --out"):
        check_manifest(tmp_path, other)


def _side_by_side(work: Callable[[], object]) -> list[UserError]:
    """Run `work` in two threads released at once (two runs started together); the
    UserErrors either raised."""
    start = threading.Barrier(2)
    errors: list[UserError] = []

    def run() -> None:
        start.wait()
        try:
            work()
        except UserError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_runs_started_together_share_an_out_directory(tmp_path):
    # Constrained and baseline started side by side into one --out: each checks that it
    # can write there, and neither may trip over the other's check.
    out = tmp_path / "out"
    for _ in range(300):
        assert _side_by_side(lambda: prepare_out_dir(out)) == []
    assert list(out.iterdir()) == []  # no probe left behind


def test_runs_started_together_agree_on_the_settings_file(tmp_path):
    # Each run reads run.json, or writes it when absent: the one started a moment later
    # must never read it half-written (and refuse the directory as unreadable).
    settings = RunSettings("smollm2", "llama.cpp", 256, {"temperature": 0.0}, "auto")
    for round_ in range(300):
        out = tmp_path / str(round_)
        out.mkdir()
        assert _side_by_side(lambda out=out: check_manifest(out, settings)) == []
        assert json.loads((out / "run.json").read_text("utf-8")) == settings.to_dict()
        assert [p.name for p in out.iterdir()] == ["run.json"]


def test_progress_eta():
    assert RunProgress(0, 10, 0.0).eta_s is None
    assert RunProgress(2, 10, 4.0).eta_s == pytest.approx(16.0)
    assert RunProgress(10, 10, 9.0).eta_s == 0.0


# -- report ----------------------------------------------------------------------------


def test_report_rows_validity_latency_and_tokens(bfcl_dir, tmp_path):
    cases = load_cases("simple_python", bfcl_dir)[:4]
    truth = ground_truth_calls(cases[0])
    wrong_value = [{"name": truth[0]["name"], "arguments": {"base": 99, "height": 5}}]
    undeclared = [{"name": truth[0]["name"], "arguments": {**truth[0]["arguments"], "x": 1}}]
    records = [
        ResultRecord(cases[0].id, wrong_value, "", 1.0, 10),  # valid, but a wrong value
        ResultRecord(cases[1].id, [], "prose", 3.0, 50),  # did not parse
        ResultRecord(cases[2].id, undeclared, "", 2.0, 20),  # another case's function
        ResultRecord("simple_python_399", [], "", 9.0, 1),  # not selected: left out
    ]
    row = summarize("simple_python", "constrained", cases, records)
    assert (row.cases, row.correct, row.valid) == (3, 0, 1)
    assert row.median_latency_s == 2.0 and row.tokens_per_call == 26.67  # 80 / 3, rounded
    assert row.errors == {
        "value_error:others": 1,
        "simple_function_checker:wrong_count": 1,
        "simple_function_checker:wrong_func_name": 1,
    }
    report = Report([row], {"model": "m"})
    table = report.table()
    assert table.splitlines()[0].split("|")[1].strip() == "category"
    assert "| simple_python | constrained |     3 |     0.0% | 33.3% |     2.00 |" in table
    data = report.to_dict()
    assert data["rows"][0]["valid_share"] == pytest.approx(0.3333)
    assert data["mean_accuracy"] == {"constrained": 0.0}


def test_chart_is_a_png_or_a_clear_message(tmp_path, monkeypatch):
    rows = [
        summarize("irrelevance", mode, [], [])  # empty rows draw as zero
        for mode in ("constrained", "free")
    ]
    report = Report(rows, {"model": "m"})
    pytest.importorskip("matplotlib")
    path = report.write_chart(tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'edge-agent\[eval\]'"):
        report.write_chart(tmp_path)


# -- the CLI, end to end with tiny -----------------------------------------------------


def _run(args: list[str]) -> int:
    return main(["eval", "bfcl", "run", *args])


def test_cli_run_tiny_both_then_baseline_then_resume(bfcl_dir, tmp_path, capsys):
    out = tmp_path / "out"
    common = ["--model", "tiny", "--category", "simple_python", "--limit", "3",
              "--max-tokens", "96", "--out", str(out), "--data", str(bfcl_dir)]  # fmt: skip
    assert _run([*common, "--mode", "both", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert json.loads((out / "summary.json").read_text()) == summary
    rows = {r["mode"]: r for r in summary["rows"]}
    assert set(rows) == {"constrained", "free"}
    assert rows["constrained"]["cases"] == 3 and rows["constrained"]["valid_share"] == 1.0
    assert summary["settings"]["free_prompt"] == "native"  # tiny has LFM2's call tokens
    for mode in ("constrained", "free"):
        lines = results_path(out, "simple_python", mode).read_text().splitlines()
        assert len(lines) == 3
    assert "bfcl: 6 cases to run" in captured.err
    before = results_path(out, "simple_python", "constrained").read_text()

    assert _run([*common, "--mode", "both"]) == 0  # a rerun does no new case
    captured = capsys.readouterr()
    assert "all 6 cases already done" in captured.err
    assert "| simple_python | constrained |     3 |" in captured.out
    assert results_path(out, "simple_python", "constrained").read_text() == before

    assert _run([*common, "--mode", "baseline", "--json"]) == 0
    rows = {r["mode"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["baseline"]["cases"] == 3 and rows["baseline"]["valid_share"] == 1.0
    assert (out / "accuracy.png").exists() or "chart skipped" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "simple"], "unknown BFCL category 'simple'"),
        (["--category", "simple_python", "--data", "{tmp}/nowhere"], "BFCL data not found"),
        (["--category", "simple_python", "--out", "{tmp}/file"], "is not a directory"),
        (["--category", "simple_python", "--out", "{tmp}/file/sub"], "cannot write to --out"),
        (["--category", "simple_python", "--mode", "fast"], "invalid choice: 'fast'"),
        (["--category", "simple_python", "--limit", "0"], "expected a number >= 1"),
    ],
)
def test_cli_bad_input_is_one_line_before_any_model_loads(
    bfcl_dir, tmp_path, capsys, args, message
):
    (tmp_path / "file").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = {"--out": str(tmp_path / "out"), "--data": str(bfcl_dir)}
    for flag, value in base.items():
        if flag not in args:
            args += [flag, value]
    # A model that cannot load: the input error must come first.
    try:
        code = _run(["--model", str(tmp_path / "no-such-model"), *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_run_against_an_openai_compatible_server(bfcl_dir, tmp_path, capsys):
    """Any engine: a remote server gets the tools with tool_choice "required" and its
    calls are scored as they come."""
    from openai_stub import StubReply, StubServer, running

    cases = select_cases(load_cases("simple_python", bfcl_dir), 2)
    replies = [
        StubReply(calls=[(c["name"], json.dumps(c["arguments"])) for c in ground_truth_calls(case)])
        for case in cases
    ]
    with running(StubServer(replies)) as stub:
        code = _run(["--base-url", stub.url, "--model", "stub", "--category", "simple_python",
                     "--limit", "2", "--mode", "constrained", "--out", str(tmp_path),
                     "--data", str(bfcl_dir), "--json"])  # fmt: skip
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert (row["cases"], row["correct"], row["valid"]) == (2, 2, 2)
    sent = stub.requests[0]
    assert sent["tool_choice"] == "required"
    assert sent["tools"][0]["function"]["name"] == cases[0].functions[0]["name"]
