"""The memory plan is computed from config and quantization, and matches reality."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from agent import UserError
from agent.memory_plan import config_for_spec, plan_memory, reference_config

_MEASURE = """
import random, sys
from agent import SamplingParams, load_model
context = int(sys.argv[1])
model = load_model("tiny")
rng = random.Random(context)
prompt = [rng.randrange(20, 1000) for _ in range(context - 4)]
result = model.generate(prompt, max_tokens=4, sampling=SamplingParams(seed=0))
print(result.stats.peak_memory_bytes)
"""


@pytest.mark.parametrize("context", [1024, 4096])
def test_estimate_is_within_25_percent_of_measured_peak(tiny, context):
    # Measured in a fresh process: MLX's peak counts every array alive in the process,
    # and other tests keep other models loaded.
    config, _ = config_for_spec("tiny")
    estimate = plan_memory(config, context).peak_bytes
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    measured = int(proc.stdout.strip().splitlines()[-1])
    assert abs(estimate - measured) / measured <= 0.25, (estimate, measured)


def test_plan_follows_config_not_constants():
    config = reference_config()
    base = plan_memory(config, 4096)
    assert base.attention_layers == 6 and base.conv_layers == 18

    four_bit = copy.deepcopy(config)
    four_bit["quantization"]["bits"] = 4
    assert plan_memory(four_bit, 4096).weights_bytes > base.weights_bytes

    assert plan_memory(config, 8192).kv_cache_bytes == 2 * base.kv_cache_bytes
    assert plan_memory(config, 8192).conv_state_bytes == base.conv_state_bytes

    bigger = copy.deepcopy(config)
    bigger["num_key_value_heads"] *= 2
    assert plan_memory(bigger, 4096).kv_cache_bytes == 2 * base.kv_cache_bytes


def test_default_model_weights_are_about_3_bits_per_parameter():
    plan = plan_memory(reference_config(), 4096)
    params = 8.3e9
    bits_per_param = plan.weights_bytes * 8 / params
    assert 3.0 < bits_per_param < 4.5  # 3-bit codes + group scales/biases + 8-bit gates


def test_context_beyond_the_model_limit_is_a_user_error():
    with pytest.raises(UserError, match="exceeds"):
        plan_memory(reference_config(), 10**7)
