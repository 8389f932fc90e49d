"""The quantization lab end to end through the CLI: `edge-agent quantize` builds quants of
the tiny model with every kind of recipe, they load and generate (under a grammar too),
`models list` and `plan` read them, and `edge-agent compare` measures them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.cli.main import main
from schemas import shipped_schema

TEXT = (
    "Maria Rossi (maria.rossi@example.it, +39 06 1234 5678) works at Acme in Rome. "
    "The quick brown fox jumps over the lazy dog, and the dog does not mind at all.\n\n"
) * 12

# name -> CLI flags; tiny's input sizes are 64, 128 and 256, so every group size up to 64.
RECIPES: dict[str, list[str]] = {
    "q3": ["--bits", "3"],
    "q4g32": ["--bits", "4", "--group-size", "32"],
    "q5": ["--bits", "5"],
    "q6": ["--bits", "6"],
    "q8": ["--bits", "8"],
    "mixed_2_6": ["--recipe", "mixed_2_6"],
    "mixed_3_4": ["--recipe", "mixed_3_4"],
    "mixed_3_6": ["--recipe", "mixed_3_6"],
    "mixed_4_6": ["--recipe", "mixed_4_6"],
    "qx86-hi": ["--recipe", "qx86-hi"],
    "roles": ["--recipe", "attention=8/32,experts=3,mlp=5,default=4"],
}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def quants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every recipe's quant of `tiny`, built once through the CLI: name -> (dir, --json)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("quants")
    built = {}
    for name, flags in RECIPES.items():
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["quantize", "tiny", str(root / name), *flags, "--json"])
        assert code == 0, name
        built[name] = (root / name, json.loads(out.getvalue()))
    return built


def layer_bits(path: Path) -> dict[str, tuple[int, int]]:
    """(bits, group size) of every quantized layer, as mlx-lm loads the directory."""
    from mlx_lm.utils import load

    model, _ = load(str(path))
    return {
        name: (module.bits, module.group_size)
        for name, module in model.named_modules()
        if hasattr(module, "bits") and hasattr(module, "scales")
    }


def test_the_recipe_list_is_mlx_lms() -> None:
    from mlx_lm.convert import QUANT_RECIPES

    from agent.quant.recipes import MLX_LM_RECIPES

    assert list(MLX_LM_RECIPES) == QUANT_RECIPES


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_builds_a_model_with_the_bits_mlx_lm_counts(quants, name) -> None:
    from mlx_lm.utils import compute_bits_per_weight, load

    path, report = quants[name]
    assert (path / "config.json").is_file() and report["path"] == str(path)
    assert report["source_quantization"].startswith("3-bit")  # tiny is 3-bit: dequantized
    model, _ = load(str(path))
    # mlx-lm's own figure for the loaded model (bfloat16 scales as stored) is ours.
    assert report["bits_per_weight"] == pytest.approx(compute_bits_per_weight(model), abs=0.01)
    assert report["quantized_layers"] == sum(report["layer_bits"].values()) > 0


@pytest.mark.parametrize(
    ("name", "bits", "group"), [("q3", 3, 64), ("q4g32", 4, 32), ("q5", 5, 64), ("q8", 8, 64)]
)
def test_uniform_quants_are_near_the_requested_bits(quants, name, bits, group) -> None:
    _, report = quants[name]
    floor = bits + 32 / group  # packed bits plus a bfloat16 scale and bias per group
    # Above the floor only by tiny's unquantized norms and its 8-bit router gates.
    assert floor <= report["bits_per_weight"] < floor + 0.6
    loaded = layer_bits(quants[name][0])
    routers = {k for k in loaded if k.endswith("feed_forward.gate")}
    assert routers and all(loaded[k] == (8, 64) for k in routers)  # LFM2-MoE's own rule
    assert all(v == (bits, group) for k, v in loaded.items() if k not in routers)


def test_size_and_bits_grow_with_precision(quants) -> None:
    reports = [quants[n][1] for n in ("q3", "mixed_3_6", "q5", "q6", "q8")]
    bits = [r["bits_per_weight"] for r in reports]
    sizes = [r["size_bytes"] for r in reports]
    assert bits == sorted(bits) and sizes == sorted(sizes)
    assert len(set(bits)) == len(bits)


def test_mixed_3_6_follows_mlx_lm_s_rule(quants) -> None:
    loaded = layer_bits(quants["mixed_3_6"][0])
    assert set(loaded.values()) == {(3, 64), (6, 64)}
    # mlx-lm's rule: down_proj and v_proj of the first and last eighth of the layers
    # (tiny has 8, so layers 0 and 7) and every third one between get 6 bits.
    assert loaded["model.layers.0.feed_forward.down_proj"] == (6, 64)
    assert loaded["model.layers.1.feed_forward.down_proj"] == (3, 64)
    assert loaded["model.layers.7.feed_forward.switch_mlp.down_proj"] == (6, 64)
    assert loaded["model.layers.0.conv.in_proj"] == (3, 64)


def test_qx86_hi_puts_roles_at_their_precision(quants) -> None:
    loaded = layer_bits(quants["qx86-hi"][0])
    assert loaded["model.embed_tokens"] == (8, 32)
    assert loaded["model.layers.2.self_attn.q_proj"] == (8, 32)
    assert loaded["model.layers.2.feed_forward.gate"] == (8, 32)  # router
    assert loaded["model.layers.7.feed_forward.switch_mlp.gate_proj"] == (6, 32)  # experts
    assert loaded["model.layers.0.feed_forward.up_proj"] == (6, 32)  # dense MLP
    assert loaded["model.layers.0.conv.out_proj"] == (6, 32)


def test_a_role_spec_sets_each_role_and_keeps_the_model_s_router_rule(quants) -> None:
    loaded = layer_bits(quants["roles"][0])
    assert loaded["model.layers.6.self_attn.v_proj"] == (8, 32)
    assert loaded["model.layers.5.feed_forward.switch_mlp.up_proj"] == (3, 64)
    assert loaded["model.layers.1.feed_forward.down_proj"] == (5, 64)
    assert loaded["model.layers.1.conv.in_proj"] == (4, 64)  # default
    assert loaded["model.embed_tokens"] == (4, 64)  # default
    assert loaded["model.layers.4.feed_forward.gate"] == (8, 64)  # LFM2-MoE asks for 8


def test_a_mixed_quant_generates_under_a_grammar(quants, capsys) -> None:
    path = str(quants["mixed_3_6"][0])
    code, out, err = run_cli(
        capsys, "extract", "--schema", "contact", "--model", path, "--text", TEXT[:200]
    )
    assert code == 0, err
    jsonschema.Draft202012Validator(
        shipped_schema("contact"), format_checker=jsonschema.FormatChecker()
    ).validate(json.loads(out))
    code, out, err = run_cli(
        capsys, "generate", "--model", path, "--max-tokens", "8", "--seed", "1", "Hello"
    )
    assert code == 0, err
    assert "tok/s" in err.strip().splitlines()[-1]


def test_models_list_and_plan_read_the_quants(quants, capsys) -> None:
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0
    assert "BITS/W" in out.splitlines()[0]
    for name in ("q3", "qx86-hi"):
        path, report = quants[name]
        row = next(line for line in out.splitlines() if line.startswith(str(path) + " "))
        assert f"{report['bits_per_weight']:.2f}" in row.split()
    tiny_row = next(line for line in out.splitlines() if line.startswith("tiny "))
    assert "3.54" in tiny_row.split()  # the 3-bit built-in: 3 + 0.5 for scales + norms

    weights = {}
    for name in ("q3", "q8"):
        code, out, _ = run_cli(capsys, "plan", "--model", str(quants[name][0]), "--json")
        assert code == 0
        weights[name] = json.loads(out)["weights_bytes"]
    assert weights["q3"] < weights["q8"]


def test_quantize_reports_progress_per_layer(tmp_path) -> None:
    from agent.quant.quantize import quantize
    from agent.quant.recipes import parse_recipe

    calls: list[tuple[str, float, float | None]] = []
    result = quantize("tiny", tmp_path / "q", parse_recipe(None, 4, 64), lambda *c: calls.append(c))
    steps = [c for c in calls if c[0].startswith("Quantizing") and c[2] is not None]
    assert [c[1] for c in steps] == list(range(result.quantized_layers + 1))
    assert {c[2] for c in steps} == {result.quantized_layers}


def test_compare_two_quants_as_json(quants, capsys) -> None:
    text = quants["q3"][0].parent / "corpus.txt"
    text.write_text(TEXT, encoding="utf-8")
    models = [str(quants["q3"][0]), str(quants["q8"][0])]
    code, out, err = run_cli(
        capsys,
        "compare",
        *models,
        "tiny",
        "--text",
        str(text),
        "--context",
        "1024",
        "40000",
        "--sequence-length",
        "64",
        "--prompt-tokens",
        "16",
        "--generation-tokens",
        "8",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["evaluated_tokens"] == data["windows"] * data["sequence_length"] > 0
    rows = {row["name"]: row for row in data["models"]}
    assert list(rows) == ["q3", "q8", "tiny"]
    for name, row in rows.items():
        assert math.isfinite(row["perplexity"]) and row["perplexity"] > 1
        assert 0 < row["perplexity_se"] < row["perplexity"]
        assert row["prefill_tps"] > 0 and row["decode_tps"] > 0
        assert row["peak_memory_bytes"] > 0
        assert set(row["ram_plan"]) == {"1024", "40000"}
        assert row["ram_plan"]["40000"] is None  # over tiny's 32768-token window
        assert row["ram_plan"]["1024"] > 0
        if name != "tiny":
            assert row["bits_per_weight"] == quants[name][1]["bits_per_weight"]
    assert rows["q3"]["size_bytes"] < rows["q8"]["size_bytes"]
    assert rows["q3"]["ram_plan"]["1024"] < rows["q8"]["ram_plan"]["1024"]
    # 8 bits reproduce the 3-bit source's weights almost exactly: the same perplexity
    # within a fraction of its standard error; re-quantizing at 3 bits loses more.
    source = rows["tiny"]["perplexity"]
    assert abs(rows["q8"]["perplexity"] - source) < rows["tiny"]["perplexity_se"] / 4
    assert abs(rows["q8"]["perplexity"] - source) < abs(rows["q3"]["perplexity"] - source)


def test_compare_prints_a_table_bars_and_a_chart(quants, capsys, tmp_path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text(TEXT, encoding="utf-8")
    chart = tmp_path / "chart.svg"
    names = ("q3", "mixed_3_6")
    code, out, err = run_cli(
        capsys,
        "compare",
        *(str(quants[n][0]) for n in names),
        "--text",
        str(text),
        "--context",
        "2048",
        "--sequence-length",
        "64",
        "--prompt-tokens",
        "16",
        "--generation-tokens",
        "4",
        "--plot",
        str(chart),
    )
    assert code == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("MODEL"))
    for column in ("SIZE", "BITS/W", "PERPLEXITY", "PREFILL tok/s", "DECODE tok/s"):
        assert column in header
    assert "PEAK MEM" in header and "RAM@2048" in header
    for name in names:
        row = next(line for line in lines if line.startswith(name + " "))
        assert "±" in row and f"{quants[name][1]['bits_per_weight']:.2f}" in row
        assert sum(line.startswith(f"  {name} ") for line in lines) == 3  # three bar charts
    assert "perplexity (lower is better)" in out
    assert chart.read_text().lstrip().startswith("<?xml") and "<svg" in chart.read_text()
    assert "Perplexity of q3" in err  # progress


def test_compare_reads_a_dataset_in_mlx_lm_format(quants, capsys, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = [json.dumps({"text": chunk}) for chunk in TEXT.split("\n\n") if chunk]
    (data / "test.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(
        capsys,
        "compare",
        str(quants["q5"][0]),
        "--dataset",
        str(data),
        "--sequence-length",
        "32",
        "--tokens",
        "128",
        "--context",
        "512",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["evaluated_tokens"] == 128 and result["windows"] == 4
    assert math.isfinite(result["models"][0]["perplexity"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["quantize", "no-such-model-dir", "{out}"], "unknown model 'no-such-model-dir'"),
        (["quantize", "./missing/model", "{out}"], "unknown model"),
        (["quantize", "tiny", "{out}", "--recipe", "mixed_9_9"], "unknown recipe 'mixed_9_9'"),
        (["quantize", "tiny", "{out}", "--recipe", "attn=8"], "unknown role 'attn'"),
        (["quantize", "tiny", "{out}", "--recipe", "experts=7"], "experts bits must be one of"),
        (["quantize", "tiny", "{out}", "--group-size", "128"], "group size 128 does not divide"),
        (["quantize", "tiny", "{out}", "--recipe", "experts=4/128"], "size 128 does not divide"),
        (["quantize", "tiny", "{exists}"], "already exists"),
        (["quantize", "tiny", "{out}", "--bits", "7"], "invalid choice: 7"),
        (["compare", "tiny", "--text", "{missing}"], "does not exist"),
        (["compare", "tiny"], "one of the arguments --text --dataset is required"),
        (["compare", "tiny", "--text", "{exists}/x", "--plot", "c.txt"], "must end in .svg"),
        (["compare", "tiny", "--dataset", "{missing}"], "cannot read dataset"),
        (["compare", "gguf:{missing}.gguf", "--text", "{text}"], "is a GGUF file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, needle) -> None:
    exists = tmp_path / "exists"
    exists.mkdir()
    (exists / "x").write_text("some text to read", encoding="utf-8")
    values = {
        "out": str(tmp_path / "out"),
        "exists": str(exists),
        "missing": str(tmp_path / "missing"),
        "text": str(exists / "x"),
    }
    argv = [a.format(**values) for a in args]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    # One line for the error, after at most the progress lines of the work started.
    assert needle in err[-1] and err[-1].startswith("edge-agent")
    assert all(line.endswith("...") for line in err[:-1]), err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_role_of_names_the_layers_of_mlx_lm_models() -> None:
    from agent.quant.recipes import role_of

    assert role_of("model.embed_tokens") == "embeddings"
    assert role_of("lm_head") == "head"
    assert role_of("model.layers.3.self_attn.v_proj") == "attention"
    assert role_of("model.layers.3.feed_forward.gate") == "router"
    assert role_of("model.layers.3.mlp.gate") == "router"
    assert role_of("model.layers.3.feed_forward.switch_mlp.down_proj") == "experts"
    assert role_of("model.layers.3.mlp.experts.0.down_proj") == "experts"
    assert role_of("model.layers.3.mlp.gate_proj") == "mlp"
    assert role_of("model.layers.0.conv.in_proj") == "conv"
    assert role_of("model.norm") == "default"


@pytest.mark.slow
def test_a_gguf_file_quantizes_into_a_model_that_answers(capsys, tmp_path) -> None:
    """From SmolLM2's real GGUF (Q4_1) to an 8-bit MLX quant that still knows Paris."""
    from agent.errors import ModelUnavailableError
    from agent.llamacpp.models import smollm2_gguf

    try:
        gguf = smollm2_gguf()
    except ModelUnavailableError as exc:
        pytest.skip(f"SmolLM2 wheel not available: {exc}")
    out = tmp_path / "smollm2-8bit"
    code, printed, err = run_cli(capsys, "quantize", f"gguf:{gguf}", str(out), "--bits", "8")
    assert code == 0, err
    assert "Converting GGUF to MLX" in err and "8.5" in printed  # 8 bits + scales
    code, printed, err = run_cli(
        capsys,
        "generate",
        "What is the capital of France?",
        "--model",
        str(out),
        "--temp",
        "0",
        "--max-tokens",
        "32",
    )
    assert code == 0, err
    assert "Paris" in printed


def test_perplexity_on_dequantized_weights_is_the_quantized_kernels_one(quants) -> None:
    """Why `compare` may dequantize before its perplexity pass on a fast-BLAS CPU."""
    import contextlib
    import io

    import mlx.core as mx
    from mlx_lm.perplexity import eval_ppl
    from mlx_lm.utils import dequantize_model, load

    model, tokenizer = load(str(quants["mixed_3_6"][0]))
    model.set_dtype(mx.float32)
    tokens = tokenizer.encode(TEXT)[:128]
    data = mx.array([tokens[:64], tokens[64:128]])
    with contextlib.redirect_stdout(io.StringIO()):
        quantized = eval_ppl(model, data, batch_size=2)
        dequantize_model(model)
        dequantized = eval_ppl(model, data, batch_size=2)
    assert dequantized == pytest.approx(quantized, rel=1e-4)
