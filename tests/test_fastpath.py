"""The CPU fast path (a fast BLAS, float32 weights for small models) and the deferred
iri format checkers (agent/fastpath.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agent import fastpath

NEEDS_MKL = pytest.mark.skipif(
    fastpath.fast_blas() is None,
    reason="no fast BLAS in this process: `pip install -e '.[cpu-fast]'` (Intel's mkl wheel, "
    "x86-64 Linux) turns the CPU fast path on",
)


def _python(code: str, **env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_iri_checkers_load_on_first_use_and_still_check():
    out = _python(
        "import json, sys, agent, jsonschema\n"
        "before = 'rfc3987_syntax.syntax_helpers' in sys.modules\n"
        "cls = jsonschema.Draft202012Validator\n"
        "v = cls({'format': 'iri'}, format_checker=cls.FORMAT_CHECKER)\n"
        "bad = [e.message for e in v.iter_errors('not an iri')]\n"
        "good = [e.message for e in v.iter_errors('http://example.com/ä')]\n"
        "ref = cls({'format': 'iri-reference'}, format_checker=cls.FORMAT_CHECKER)\n"
        "bad_ref = [e.message for e in ref.iter_errors('http://[bad')]\n"
        "after = 'rfc3987_syntax.syntax_helpers' in sys.modules\n"
        "print(json.dumps([before, bad, good, bad_ref, after]))"
    )
    before, bad, good, bad_ref, after = out
    assert before is False  # importing jsonschema did not build the lark grammar
    assert bad == ["'not an iri' is not a 'iri'"] and good == []
    assert len(bad_ref) == 1 and after is True


def test_blas_can_be_turned_off():
    out = _python(
        "import json, agent.fastpath as f; print(json.dumps(f.fast_blas()))",
        EDGE_AGENT_BLAS="off",
    )
    assert out is None


def test_a_missing_blas_library_leaves_mlx_alone():
    out = _python(
        "import json, agent.fastpath as f, mlx.core as mx\n"
        "a = mx.ones((4, 4)); print(json.dumps([f.fast_blas(), float((a @ a).sum())]))",
        EDGE_AGENT_BLAS="/nonexistent/libblas.so",
    )
    assert out == [None, 64.0]


def test_no_fast_blas_once_mlx_is_imported_first():
    out = _python("import json, mlx.core, agent.fastpath as f; print(json.dumps(f.fast_blas()))")
    assert out is None


def test_tiny_keeps_its_quantized_kernels(tiny):
    assert tiny.info.quantization == "3-bit (group 64)"


@NEEDS_MKL
def test_dequantized_weights_compute_what_the_quantized_ones_did():
    import mlx.core as mx
    import mlx.nn as nn

    mx.random.seed(0)
    module = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 128))
    nn.quantize(module, group_size=32, bits=4)
    x = mx.random.normal((3, 7, 256))
    quantized = module(x)
    config = {"quantization": {"group_size": 32, "bits": 4}}
    assert fastpath.dequantize_on_cpu(module, config)
    assert isinstance(module.layers[0], nn.Linear) and module.layers[0].weight.dtype == mx.float32
    dense = module(x)
    assert mx.allclose(quantized, dense, atol=1e-4, rtol=1e-4).item()
    # Quantized codes of 4 bits, 4 bytes per weight once dequantized.
    assert fastpath.float32_bytes(module, {}) == 4 * (256 * 512 + 512 + 512 * 128 + 128)


@NEEDS_MKL
def test_a_small_model_directory_loads_on_the_fast_path(tiny):
    from agent import SamplingParams, load_model

    # The tiny model's directory as a plain path: not a built-in, so the fast path applies.
    fast = load_model(str(tiny.path))
    assert fast.info.quantization == "float32 (mkl fast path)"
    assert fast.info.weight_bytes == 4 * fast.info.parameters  # every weight in float32
    result = fast.generate("Hello", max_tokens=8, sampling=SamplingParams.greedy())
    assert result.stats.generated_tokens == 8


@NEEDS_MKL
def test_large_models_stay_quantized(tiny, monkeypatch):
    monkeypatch.setattr(fastpath, "MAX_FLOAT32_BYTES", 1024)
    from agent import load_model

    assert load_model(str(tiny.path)).info.quantization == "3-bit (group 64)"
