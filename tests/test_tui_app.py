"""Pilot tests of the chat app with the real agent, the tiny model and a private
session store: every interaction of `edge-agent chat` end to end (prompt, streaming,
stop, history, sessions, approval, palette, loading, errors).

The tiny model has random weights, so tests assert on structure and state (what the
widgets show, what the store holds, how a run ended), never on the words.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

import pytest
from readme_blocks import readme_test_command

from agent.events import FinalEvent, TextDelta
from agent.messages import AssistantMessage
from agent.messages import UserMessage as UserTurn
from agent.progress import GenerationProgress, generation_observer, observe_generations
from agent.sessions import SessionStore
from tui.agent_backend import AgentBackend, ChatOptions
from tui.app import EdgeAgentApp
from tui.widgets.approval import ApprovalScreen
from tui.widgets.chat_pane import Welcome
from tui.widgets.error_card import ErrorCard
from tui.widgets.message import UserMessage
from tui.widgets.sessions import SessionsSidebar
from tui.widgets.tool_card import ToolCard
from tui.widgets.turn import StopMarker

SIZE = (100, 32)


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body in its own event loop (no asyncio plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


SEED = {"seed": 7, "temperature": 0.8}


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions.sqlite3")


def make_app(store: SessionStore, **options) -> EdgeAgentApp:
    options.setdefault("max_tokens", 24)
    options.setdefault("sampling_overrides", SEED)
    return EdgeAgentApp(AgentBackend(ChatOptions(model="tiny", **options), store))


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


async def ready(pilot) -> EdgeAgentApp:
    app = pilot.app
    await wait_for(pilot, lambda: app.ready)
    return app


async def send(pilot, prompt: str) -> None:
    """Type `prompt` and press Enter; returns once the turn has started."""
    app = pilot.app
    before = app.turn_id
    app.prompt_input.focus()
    app.prompt_input.value = prompt
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.turn_id > before)


async def answer(pilot, prompt: str) -> FinalEvent:
    """Send `prompt` and wait for the end of its turn; the turn's FinalEvent."""
    app = pilot.app
    await send(pilot, prompt)
    await wait_for(pilot, lambda: not app.generating)
    final = app.chat.turns[-1].final
    assert final is not None
    return final


@run_async
async def test_prompt_streams_answer_with_live_status(store):
    app = make_app(store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert "tiny · 3-bit" in app.status.model_label
        final = await answer(pilot, "Say hello")
        turn = app.chat.turns[-1]
        assert [m.text for m in app.chat.query(UserMessage)] == ["Say hello"]
        assert final.stats.generated_tokens > 0
        # The streamed deltas and the final answer agree, and all of it reached the screen.
        assert turn.answer_text.strip() == final.content.strip()
        if turn.segments:
            assert turn.segments[-1].source == turn.segments[-1].text
        status = app.status
        assert status.turn.generated_tokens == final.stats.generated_tokens
        assert status.session.prompt_tokens == final.stats.prompt_tokens
        assert status.first_ttft_s is not None and status.first_ttft_s > 0
        assert "decode" in status.speed_text() and "grammar" in status.counts_text()
        assert status.rates and list(status.query_one("#rate").data) == list(status.rates)
        # The turn is stored in a new session, listed in the sidebar with its title.
        sessions = store.list()
        assert len(sessions) == 1 and sessions[0].title == "Say hello"
        assert [i.id for i in app.sidebar.items] == [sessions[0].id]


class HeldBackend(AgentBackend):
    """The real backend, whose generations pause on the model thread once `hold_at`
    tokens are out, until `release` is set: a turn that is certainly still running,
    however fast the machine."""

    def __init__(self, *args: Any, hold_at: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold_at = hold_at
        self.held = threading.Event()
        self.release = threading.Event()

    async def stream(self, prompt: str):
        shown = generation_observer()  # the app's: it posts the reports to the UI

        def observer(progress: GenerationProgress) -> None:
            if shown is not None:
                shown(progress)
            if progress.phase == "decode" and progress.generated >= self.hold_at:
                self.held.set()
                self.release.wait(timeout=60)

        observe_generations(observer)
        async for event in super().stream(prompt):
            yield event


def make_held_app(store: SessionStore, **options) -> EdgeAgentApp:
    options.setdefault("sampling_overrides", SEED)
    # Seeded: the tiny model's answer is longer than `hold_at` tokens, every run.
    backend = HeldBackend(ChatOptions(model="tiny", max_tokens=200, **options), store)
    return EdgeAgentApp(backend)


@run_async
async def test_ui_stays_responsive_while_generating(store):
    app = make_held_app(store)
    backend = app.backend
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Write a long story")
        await wait_for(pilot, backend.held.is_set)
        app.prompt_input.focus()
        await pilot.press("a")  # a key is handled while the model is mid-answer
        assert app.prompt_input.value == "a"
        assert app.generating
        await pilot.press("escape")
        backend.release.set()
        await wait_for(pilot, lambda: not app.generating)
        assert app.chat.turns[-1].final.stopped_by in ("cancelled", None)


@run_async
async def test_status_is_live_while_a_step_runs_and_the_session_is_listed(store):
    app = make_held_app(store)
    backend = app.backend
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.sidebar.items == []
        await send(pilot, "Count to ten")
        # Mid-step (no StatsEvent yet): the running step's numbers are on screen.
        status = app.status
        await wait_for(pilot, lambda: status.current is not None and status.current.generated >= 3)
        assert status.last is None and status.first_ttft_s is None
        live = status.current
        assert live.phase == "decode" and live.ttft_s is not None and live.to_prefill > 0
        speed = status.speed_text()
        assert speed.startswith("TTFT ") and "TTFT -" not in speed
        assert re.search(r"decode [0-9.]+ tok/s", speed), speed
        assert status.live_generated() >= 3
        assert re.search(r"turn 0→[1-9]", status.counts_text())
        # The new conversation is in the sidebar before its first answer ends.
        await wait_for(pilot, lambda: [i.id for i in app.sidebar.items] == [backend.session_id])
        assert app.sidebar.items[0].title == "Count to ten"
        assert app.generating
        backend.release.set()
        await wait_for(pilot, lambda: not app.generating)
        assert status.current is None and status.first_ttft_s is not None


@run_async
async def test_status_shows_the_prefill_with_a_spinner():
    ticks = iter(range(1000))
    app = EdgeAgentApp(live_stats=False)
    async with app.run_test(size=SIZE):
        status = app.status
        status.clock = lambda: float(next(ticks))
        status.begin_turn()
        status.progress(GenerationProgress("prefill", 0, 300, 0, 0.5))
        first = status.speed_text()
        assert re.fullmatch(r"\S prefill 0/300 tok │ [0-9.]+ s", first), first
        status.progress(GenerationProgress("prefill", 128, 300, 0, 1.0))
        status.sample_rate()  # a tick: the spinner turns, the elapsed time grows
        second = status.speed_text()
        assert "prefill 128/300 tok" in second and second[0] != first[0]
        status.progress(GenerationProgress("decode", 300, 300, 5, 3.0, ttft_s=2.0))
        assert status.speed_text() == "TTFT 2.0 s │ prefill 150 tok/s │ decode 4.0 tok/s"
        status.progress(GenerationProgress("done", 300, 300, 9, 4.0, ttft_s=2.0))
        assert status.current is None
        status.end_turn()
        status.progress(GenerationProgress("prefill", 0, 10))  # a late report: ignored
        assert status.current is None


@pytest.mark.parametrize("key", ["escape", "ctrl+c"])
@run_async
async def test_stop_keeps_partial_answer_marked_stopped(store, key):
    app = make_app(store, max_tokens=1000)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Write a long story")  # runs to the token budget with this seed
        turn = app.chat.turns[-1]
        await wait_for(pilot, lambda: turn.deltas > 0)
        await pilot.press(key)
        await wait_for(pilot, lambda: not app.generating)
        assert turn.final is not None and turn.final.stopped_by == "cancelled"
        assert turn.final.stats.generated_tokens < 1000
        # The partial answer (or reasoning) stays on screen.
        assert turn.answer_text or (turn.reasoning is not None and turn.reasoning.text)
        assert "stopped" in str(turn.query_one(StopMarker).render())
        assert app.is_running
        # The model is free again: the next prompt (in a new session with a small
        # budget, to keep the test short) gets a full answer.
        app.backend.options.max_tokens = 8
        await app.action_new_session()
        final = await answer(pilot, "Hi")
        assert final.stopped_by != "cancelled" and final.stats.generated_tokens > 0


@run_async
async def test_prompt_history_up_and_down(store):
    app = make_app(store, max_tokens=4)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "first question")
        await answer(pilot, "second question")
        box = app.prompt_input
        box.focus()
        box.value = "draft"
        await pilot.press("up")
        assert box.value == "second question"
        await pilot.press("up")
        assert box.value == "first question"
        await pilot.press("up")
        assert box.value == "first question"
        await pilot.press("down")
        assert box.value == "second question"
        await pilot.press("down")
        assert box.value == "draft"


NOTES_MODULE = '''
from tools import tool

@tool(requires_approval=True)
def save_note(priority: int) -> str:
    """Save a note with a priority.

    Args:
        priority: how urgent the note is.
    """
    from pathlib import Path
    Path(__file__).with_name("saved.txt").write_text(str(priority))
    return f"saved with priority {priority}"
'''


@run_async
async def test_approval_modal_allows_and_denies(store, tmp_path):
    from tools import ToolRegistry

    module = tmp_path / "notes_tools.py"
    module.write_text(NOTES_MODULE)
    tools = ToolRegistry().load_module(module)
    app = make_app(store, tools=tools, tool_choice="required", max_tokens=48, max_steps=1)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Save a note")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        assert app.screen.tool_name == "save_note"
        assert "Save a note with a priority." in app.screen.description
        await pilot.press("n")
        await wait_for(pilot, lambda: not app.generating)
        card = app.chat.turns[-1].query_one(ToolCard)
        assert card.state == "failed" and card.result.error == "denied by the user"
        assert not (tmp_path / "saved.txt").exists()

        await send(pilot, "Save it now")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.generating)
        card = app.chat.turns[-1].query_one(ToolCard)
        assert card.state == "done", card.result
        saved = (tmp_path / "saved.txt").read_text()
        assert card.result.content == f"saved with priority {saved}"
        assert card.call.arguments == {"priority": int(saved)}
        assert card.border_subtitle.startswith("✓ done in ")

        # Reopened from the store, the session shows both cards again.
        await app.open_session(SessionsSidebar.Open(app.backend.session_id))
        replayed = app.chat.query(ToolCard)
        assert [c.state for c in replayed] == ["failed", "done"]
        assert replayed[1].result.content == card.result.content
        assert replayed[1].call.arguments == card.call.arguments


@run_async
async def test_stop_during_approval_denies_and_ends_turn(store, tmp_path):
    from tools import ToolRegistry

    module = tmp_path / "notes_tools.py"
    module.write_text(NOTES_MODULE)
    tools = ToolRegistry().load_module(module)
    app = make_app(store, tools=tools, tool_choice="required", max_tokens=48, max_steps=1)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await send(pilot, "Save a note")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        app.action_stop()  # Ctrl+C is a priority binding: it reaches the app over the modal
        await wait_for(pilot, lambda: not app.generating)
        assert not isinstance(app.screen, ApprovalScreen)
        assert not (tmp_path / "saved.txt").exists()


@run_async
async def test_sessions_sidebar_new_open_delete(store):
    app = make_app(store, max_tokens=4)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await answer(pilot, "about apples")
        first = app.backend.session_id
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.backend.session_id is None)
        assert app.chat.query(Welcome)
        await answer(pilot, "about pears")
        second = app.backend.session_id
        assert second not in (None, first)
        assert [i.id for i in app.sidebar.items] == [second, first]

        # Open the first session from the sidebar: its turn is shown again.
        app.sidebar.query_one("ListView").focus()
        app.sidebar.query_one("ListView").index = 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.backend.session_id == first)
        assert [m.text for m in app.chat.query(UserMessage)] == ["about apples"]
        assert app.chat.turns[-1].final is not None

        # Delete the second one.
        app.sidebar.query_one("ListView").index = 0
        app.sidebar.query_one("ListView").focus()
        await pilot.press("delete")
        await wait_for(pilot, lambda: [i.id for i in app.sidebar.items] == [first])
        assert [s.id for s in store.list()] == [first]
        assert app.backend.session_id == first


@run_async
async def test_resume_session_on_start(store):
    app = make_app(store, max_tokens=4)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        first_answer = await answer(pilot, "remember the number 42")
        sid = app.backend.session_id

    resumed = make_app(store, max_tokens=4, session=sid)
    async with resumed.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: bool(resumed.chat.turns))
        assert [m.text for m in resumed.chat.query(UserMessage)] == ["remember the number 42"]
        # Replayed text reaches the widget on the next markdown flush.
        expected = first_answer.content.strip()
        await wait_for(pilot, lambda: resumed.chat.turns[0].answer_text.strip() == expected)
        # The session's token counts continue from the stored steps.
        assert resumed.status.session.generated_tokens == first_answer.stats.generated_tokens
        assert resumed.status.session.prompt_tokens == first_answer.stats.prompt_tokens
        # The agent continues the same conversation, in the same stored session.
        await answer(pilot, "which number?")
        assert resumed.backend.session_id == sid
        assert len(store.turns(sid)) == 2
        assert resumed.backend.agent.messages[0].content == "remember the number 42"


@run_async
async def test_command_palette_entries(store):
    app = make_app(store, max_tokens=4)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        from tui.commands import chat_commands

        titles = [c.title for c in chat_commands(app)]
        for expected in ("New session", "Toggle reasoning", "Clear", "Switch model: smollm2"):
            assert expected in titles
        assert "Switch model: tiny" not in titles  # the current model

        async def run_command(text: str) -> None:
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*text)
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()

        assert app.chat.show_reasoning
        await run_command("toggle reasoning")
        assert not app.chat.show_reasoning

        await answer(pilot, "something")
        assert app.chat.query(UserMessage)
        await run_command("clear")
        assert not app.chat.query(UserMessage) and app.chat.query(Welcome)

        await run_command("new session")
        await wait_for(pilot, lambda: app.backend.session_id is None)


class Notified(EdgeAgentApp):
    """The app, recording what it notifies through Textual's public `notify`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.notified: list[tuple[str, str]] = []  # (severity, message)

    def notify(self, message, *, severity="information", **kwargs) -> None:
        self.notified.append((severity, str(message)))
        super().notify(message, severity=severity, **kwargs)


@run_async
async def test_switch_model_loads_with_progress_and_bad_model_is_an_error(store):
    progress: list[str] = []

    class Recording(Notified):
        def on_load_progress(self, message) -> None:
            progress.append(message.description)
            super().on_load_progress(message)

    app = Recording(AgentBackend(ChatOptions(model="tiny", max_tokens=4), store))
    async with app.run_test(size=SIZE) as pilot:
        # The panel may already be gone when a loaded model is reused: the progress
        # messages it received are the evidence that loading was shown.
        await ready(pilot)
        assert not app.loading.active
        assert "Loading tiny" in progress

        # A model that does not exist: an error card and a notification, the app goes on
        # with the model it has.
        app.switch_model("no-such-model-dir")
        await wait_for(pilot, lambda: app.loading_spec is None)
        cards = app.chat.query(ErrorCard)
        assert len(cards) == 1 and "no-such-model-dir" in cards[0].message
        # The notification is a posted message: wait for it to be handled.
        await wait_for(pilot, lambda: any(sev == "error" for sev, _ in app.notified))
        assert app.is_running and app.ready
        final = await answer(pilot, "still there?")
        assert final.stats.generated_tokens > 0

        # A real switch: the same weights from their directory, a new Model and Agent.
        from agent.models.registry import BUILTIN_MODELS

        directory = str(BUILTIN_MODELS["tiny"].path)
        old_agent = app.backend.agent
        progress.clear()
        app.switch_model(directory)
        await wait_for(pilot, lambda: app.loading_spec is None)
        assert app.backend.model_spec == directory and app.backend.agent is not old_agent
        assert app.status.model_label.startswith(directory)
        assert f"Loading {directory}" in progress
        final = await answer(pilot, "and now?")
        assert final.stats.generated_tokens > 0


@run_async
async def test_failed_model_load_keeps_app_alive(store):
    app = Notified(AgentBackend(ChatOptions(model="./missing-model"), store))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.chat.query(ErrorCard)))
        assert not app.ready and not app.loading.active
        assert "missing-model" in app.chat.query_one(ErrorCard).message
        app.prompt_input.value = "hello"
        await pilot.press("enter")
        await pilot.pause()
        assert not app.generating and app.is_running
        await wait_for(pilot, lambda: any("not loaded" in text for _, text in app.notified))


@run_async
async def test_events_reach_widgets_in_order(store):
    """Every TextDelta of a turn ends up in the answer, in order (no lost or stale events)."""
    app = make_app(store, max_tokens=48)
    seen: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        original = app.apply_event

        async def spy(event):
            if isinstance(event, TextDelta):
                seen.append(event.text)
            await original(event)

        app.apply_event = spy  # type: ignore[method-assign]
        await answer(pilot, "Tell me something")
        assert "".join(seen) == app.chat.turns[-1].answer_text


@pytest.mark.slow
@run_async
async def test_demo_ui_answers_its_suggested_first_question(store, data_dir):
    """`edge-agent demo`'s chat: the suggested question, sent with Enter, gets the
    README's test command and its source from SmolLM2, with the retrieval as a card."""
    from agent.cli.demo import DEMO_TASK, RAG_K, build_demo_index
    from agent.errors import ModelUnavailableError
    from agent.models.registry import BUILTIN_MODELS
    from agent.progress import silent_progress
    from agent.retriever import open_index

    try:
        BUILTIN_MODELS["smollm2"].ensure()
    except ModelUnavailableError as exc:
        pytest.skip(f"SmolLM2 wheel not available: {exc}")
    options = ChatOptions(
        model="smollm2",
        retriever=open_index(build_demo_index(silent_progress)),
        rag_k=RAG_K,
        max_tokens=96,
        document_qa=True,
    )
    app = EdgeAgentApp(AgentBackend(options, store), suggestion=DEMO_TASK)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.prompt_input.value == DEMO_TASK
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.turn_id == 1 and not app.generating)
        final = app.chat.turns[-1].final
        assert final is not None and final.stopped_by is None
        assert json.loads(final.content) == {"command": readme_test_command(), "source": 1}
        assert final.citations[0].path.endswith("README.md")
        assert [card.call.name for card in app.chat.query(ToolCard)] == ["rag_search"]
        assert [i.title for i in app.sidebar.items] == [DEMO_TASK]


@run_async
async def test_trace_panel_shows_the_turns_span_tree(store):
    """Ctrl+T shows the current turn's spans: each model step, each tool call with its
    outcome, the run with its duration; the next turn starts a fresh tree."""
    from tools import tool
    from tui.widgets.trace_panel import TracePanel

    @tool
    def ping(host: Literal["a", "b"]) -> str:
        """Ping a host."""
        return "pong"

    app = make_app(store, tools=[ping], tool_choice="required", max_tokens=64, max_steps=2)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        panel = app.query_one(TracePanel)
        assert not panel.display
        await pilot.press("ctrl+t")
        assert panel.display
        final = await answer(pilot, "Ping a")
        lines = panel.text.splitlines()
        steps = final.stats.steps
        assert lines[0].startswith("invoke_agent") and f"{steps} step(s)" in lines[0]
        names = [line.split("  ")[0][3:] for line in lines[1:]]
        assert names[0] == "chat #1" and names[1] == "execute_tool ping"
        assert names.count("execute_tool ping") == final.stats.tool_calls
        assert [n for n in names if n.startswith("chat")] == [
            f"chat #{k}" for k in range(1, steps + 1)
        ]
        assert "running" not in panel.text
        rendered = str(panel.query_one("#trace-tree").render())
        assert "execute_tool ping" in rendered
        await send(pilot, "Ping b")
        await wait_for(pilot, lambda: not app.generating)
        assert panel.text.count("invoke_agent") == 1
        await pilot.press("ctrl+t")
        assert not panel.display


@run_async
async def test_the_chat_ui_reports_its_runs_to_the_tracing_it_is_given(store):
    """`edge-agent chat --trace` hands its Tracing to the backend's agents."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agent.tracing import Tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = make_app(store, max_tokens=4, tracing=Tracing(provider))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        final = await answer(pilot, "hello")
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["chat tiny", "invoke_agent edge-agent"]
    (chat,) = [s for s in exporter.get_finished_spans() if s.name == "chat tiny"]
    assert chat.attributes["gen_ai.usage.output_tokens"] == final.stats.generated_tokens


def stored_session(store: SessionStore, sid: str, texts: list[str]) -> None:
    session = store.create(sid)
    for text in texts:
        turn = session.begin_turn()
        session.add_message(turn, UserTurn(text))
        session.add_message(turn, AssistantMessage("ok"))
        session.end_turn(turn, None)


@run_async
async def test_resumed_session_over_the_history_limit_says_it_was_trimmed(store):
    """`chat --session ID` and opening a session from the sidebar both say when the
    oldest turns were left out of the conversation (over the 1 MiB history limit)."""
    from agent.limits import MAX_HISTORY_BYTES
    from tui.widgets.note_card import NoteCard

    stored_session(store, "long", ["x" * (MAX_HISTORY_BYTES + 10), "the newest question"])
    stored_session(store, "short", ["hello"])
    app = make_app(store, session="long")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await wait_for(pilot, lambda: bool(app.query(NoteCard)))
        (note,) = app.query(NoteCard)
        assert note.message.startswith("session long: the 1 oldest turn(s) (1 MiB) were left out")
        # The conversation the agent continues is the kept turn only.
        assert app.backend.agent.messages[0].content == "the newest question"
        # A session within the limit shows no note.
        app.sidebar.post_message(SessionsSidebar.Open("short"))
        await wait_for(pilot, lambda: app.backend.session_id == "short")
        await wait_for(pilot, lambda: not app.query(NoteCard))
        app.sidebar.post_message(SessionsSidebar.Open("long"))
        await wait_for(pilot, lambda: bool(app.query(NoteCard)))
