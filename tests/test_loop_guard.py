"""The guard against loops inside constrained values (agent/constrained/loop_guard.py):
it refuses the token that would repeat a cycle, never a forced token, never the only
token allowed, and the output stays valid."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.constrained import masks
from agent.constrained.loop_guard import LoopGuard, cycle_next


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ([], None),
        ([5, 5], None),
        ([5, 5, 5], 5),
        ([1, 2, 1, 2, 1, 2], 1),
        ([9, 1, 2, 3, 1, 2, 3, 1, 2, 3], 1),
        ([1, 2, 1, 2, 1], None),  # two and a half cycles
        ([1, 2, 3, 4, 5, 6], None),  # counting is not a cycle
    ],
)
def test_cycle_next(run, expected):
    assert cycle_next(run) == expected


class Free:
    """A constraint allowing `allowed` tokens of 8; `force` is returned once by forced."""

    def __init__(self, allowed, force=()):
        self.allowed = list(allowed)
        self.force = list(force)
        self.taken = []

    def forced(self, budget):
        out, self.force = self.force, []
        self.taken += out
        return out

    def packed_mask(self, budget):
        return masks.pack(self.allowed, 8)

    def logit_bias(self, budget, width):
        return None

    def check(self, token, budget):
        return token in self.allowed

    def fallback(self, budget):
        return self.allowed[0]

    def advance(self, token):
        self.taken.append(token)

    def is_finished(self):
        return False


def test_the_token_that_repeats_a_cycle_is_refused():
    guard = LoopGuard(Free([1, 2, 3]))
    for token in (1, 2, 1, 2, 1, 2):
        guard.advance(token)
    assert list(masks.unpack_ids(guard.packed_mask(10))) == [2, 3]
    assert not guard.check(1, 10) and guard.check(3, 10)
    assert guard.refused == 1
    guard.advance(3)  # the cycle is broken: nothing is refused
    assert list(masks.unpack_ids(guard.packed_mask(10))) == [1, 2, 3]


def test_the_only_way_on_and_forced_runs_are_kept():
    only = LoopGuard(Free([4]))
    for _ in range(3):
        only.advance(4)
    assert list(masks.unpack_ids(only.packed_mask(10))) == [4] and only.check(4, 10)
    inner = Free([1, 2], force=[7])
    guard = LoopGuard(inner)
    for token in (1, 1, 1):
        guard.advance(token)
    assert guard.forced(10) == [7]  # a forced run starts a new run of sampled tokens
    assert list(masks.unpack_ids(guard.packed_mask(10))) == [1, 2]


def test_guarded_calls_stay_valid_on_tiny(tiny):
    """tiny (random weights) loops all the time; with the guard its calls still parse
    and validate, on the call-token path and on the bare-JSON path."""
    import jsonschema

    from agent.engines.base import StepRequest
    from agent.engines.local import LocalChatModel
    from agent.sampling import SamplingParams
    from tools import ToolRegistry

    registry = ToolRegistry()
    registry.add_definitions(
        [
            {
                "name": "plot",
                "description": "Plot numbers.",
                "parameters": {
                    "type": "dict",
                    "properties": {
                        "title": {"type": "string"},
                        "values": {"type": "array", "items": {"type": "integer"}},
                    },
                    "required": ["title", "values"],
                },
            }
        ]
    )
    schema = registry.call_schema()
    for engine in (LocalChatModel.for_model(tiny), LocalChatModel(tiny, native_calls=False)):
        request = StepRequest(
            "", [{"role": "user", "content": "Plot 1, 2, 3."}], SamplingParams.greedy(),
            tools=registry.openai_tools(), tool_choice="required", call_schema=schema,
            loop_guard=True,
        )  # fmt: skip

        async def run(engine=engine, request=request):
            result = None
            async for item in engine.stream(engine.prepare(request), 120):
                result = item
            return result

        result = asyncio.run(run())
        assert result.calls and all(c.error is None for c in result.calls)
        for call in result.calls:
            jsonschema.validate({"name": call.name, "arguments": call.arguments}, schema)
        assert np.all([isinstance(v, int) for v in result.calls[0].arguments["values"]])
