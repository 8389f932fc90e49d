"""SVG snapshots of the chat app's main states, fed with fixed agent events.

No model runs here: the app is built without a backend and the events are constants,
the live rate sampler, the spinner and the cursor blink are off, so every rendering
is the same on every machine. Update after an intended UI change with
`python -m pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from agent.events import (
    Citation,
    ErrorEvent,
    FinalEvent,
    ReasoningDelta,
    RunStats,
    StatsEvent,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from agent.runtime import ModelInfo
from agent.stats import GenerationStats
from tui.app import EdgeAgentApp
from tui.widgets.approval import ApprovalScreen
from tui.widgets.sessions import SessionItem

SIZE = (100, 32)

INFO = ModelInfo(
    name="tiny",
    path="(fixed)",
    model_type="lfm2_moe",
    quantization="3-bit (group 64)",
    parameters=2_019_884,
    weight_bytes=1_024_960,
    context_length=32768,
    vocab_size=1024,
)

STEP_STATS = GenerationStats(
    prompt_tokens=412,
    cached_prompt_tokens=380,
    generated_tokens=57,
    ttft_s=0.084,
    prefill_tps=381.0,
    decode_tps=64.2,
    total_s=0.97,
    peak_memory_bytes=612 * 2**20,
    finish_reason="stop",
    constrained=True,
)

SESSIONS = [
    SessionItem("s2", "Weather in Lisbon", "3 messages"),
    SessionItem("s1", "What is MLX?", "6 messages"),
]


def fixed_app() -> EdgeAgentApp:
    app = EdgeAgentApp(live_stats=False)
    app.animation_level = "none"
    return app


async def shown(app: EdgeAgentApp, events: list) -> None:
    """Apply `events`, then put every buffered token on screen (no flush timing)."""
    await app.apply_events(events)
    await app.chat.flush()


async def prepare(app: EdgeAgentApp) -> None:
    app.prompt_input.cursor_blink = False
    app.status.set_model(INFO)
    await app.sidebar.show(SESSIONS, "s2")


def tool_turn_events(with_result: bool) -> list:
    events: list = [
        ReasoningDelta("The user wants the weather. "),
        ReasoningDelta("I should call the weather tool."),
        ToolCallEvent("call-1", "get_weather", {"city": "Lisbon", "unit": "celsius"}),
    ]
    if with_result:
        events += [
            ToolResultEvent(
                "call-1",
                "get_weather",
                '{"city": "Lisbon", "temperature": 21, "sky": "clear"}',
                duration_s=0.042,
            ),
            StatsEvent(STEP_STATS),
        ]
    return events


def test_empty(snap_compare):
    async def run_before(pilot):
        await prepare(pilot.app)

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=run_before)


def test_streaming(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await prepare(app)
        await app.begin_turn("Explain prompt caching in two sentences.")
        await shown(
            app,
            [
                ReasoningDelta("Short answer wanted; "),
                ReasoningDelta("mention prefix reuse."),
                TextDelta("Prompt caching keeps the **key/value state** "),
                TextDelta("of a prompt prefix so the next call "),
                TextDelta("only prefills the new tokens.\n\n- fewer"),
            ],
        )
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=run_before)


def test_tool_card_running(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await prepare(app)
        await app.begin_turn("What's the weather in Lisbon?")
        await shown(app, tool_turn_events(with_result=False))

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=run_before)


def test_tool_card_done_with_citations(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await prepare(app)
        await app.begin_turn("What's the weather in Lisbon?")
        await shown(app, tool_turn_events(with_result=True))
        await shown(
            app,
            [
                TextDelta("It is **21 °C** and clear in Lisbon [1]."),
                StatsEvent(STEP_STATS),
                FinalEvent(
                    "It is 21 °C and clear in Lisbon [1].",
                    RunStats(),
                    citations=(Citation(1, "docs/weather.md", 3, 9, 0.82, "..."),),
                ),
            ],
        )

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=run_before)


def test_error_and_stopped(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await prepare(app)
        await app.begin_turn("Read /etc/passwd")
        await shown(
            app,
            [
                ToolCallEvent("call-1", "read_file", {"path": "/etc/passwd"}),
                ToolResultEvent(
                    "call-1",
                    "read_file",
                    "",
                    error="path '/etc/passwd' is outside the allowed root",
                    duration_s=0.001,
                ),
                TextDelta("I cannot read that file"),
                ErrorEvent("the model produced an invalid tool call"),
                FinalEvent("I cannot read that file", RunStats(), stopped_by="cancelled"),
            ],
        )

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=run_before)


def test_approval_modal(snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await prepare(app)
        await app.begin_turn("Save a note")
        await shown(app, [ToolCallEvent("call-1", "write_file", {"path": "notes.txt"})])
        await app.push_screen(
            ApprovalScreen(
                "write_file",
                {"path": "notes.txt", "content": "buy milk"},
                "Write a text file inside the workspace.",
            )
        )

    assert snap_compare(fixed_app(), terminal_size=SIZE, run_before=run_before)
