"""The chat app: layout, key bindings, and the flow of events from the agent thread.

Every change on screen comes from an agent event (or from the user): the agent thread
posts `AgentEventPosted` messages, and the handlers pass the event objects to the
chat pane and the status bar. The same handlers take fixed events in tests
(`apply_event`), which is what keeps the snapshots deterministic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Header, Input

from agent.errors import UserError
from agent.events import ErrorEvent, Event, FinalEvent
from agent.model_info import ModelInfo
from agent.progress import GenerationProgress, observe_generations
from agent.session_replay import ReplayTurn
from tui.backend import ChatBackend
from tui.commands import ChatCommands
from tui.engine import AgentThread
from tui.widgets.approval import ApprovalScreen
from tui.widgets.chat_pane import ChatPane
from tui.widgets.loading import LoadingPanel
from tui.widgets.prompt_input import PromptInput
from tui.widgets.sessions import SessionItem, SessionsSidebar
from tui.widgets.status_bar import StatusBar
from tui.widgets.trace_panel import TracePanel


class AgentEventPosted(Message):
    """An event of turn `turn`, posted from the agent thread."""

    def __init__(self, turn: int, event: Event) -> None:
        super().__init__()
        self.turn = turn
        self.event = event


class GenerationProgressPosted(Message):
    """A live report of the running generation of turn `turn` (from the model thread)."""

    def __init__(self, turn: int, progress: GenerationProgress) -> None:
        super().__init__()
        self.turn = turn
        self.progress = progress


class TurnEnded(Message):
    """The turn's stream is exhausted, or raised `error`."""

    def __init__(self, turn: int, error: str | None) -> None:
        super().__init__()
        self.turn = turn
        self.error = error


class LoadProgress(Message):
    def __init__(self, description: str, completed: float, total: float | None) -> None:
        super().__init__()
        self.description = description
        self.completed = completed
        self.total = total


class ModelLoaded(Message):
    def __init__(
        self, spec: str, info: ModelInfo | None, error: str | None, history: list[ReplayTurn]
    ) -> None:
        super().__init__()
        self.spec = spec
        self.info = info
        self.error = error
        self.history = history


class ApprovalRequested(Message):
    def __init__(
        self,
        tool_name: str,
        arguments: dict[str, Any],
        description: str,
        answer: concurrent.futures.Future[bool],
    ) -> None:
        super().__init__()
        self.tool_name = tool_name
        self.arguments = arguments
        self.description = description
        self.answer = answer


def describe_error(exc: BaseException) -> str:
    """One line for a user: the message of a UserError, else the type and message."""
    if isinstance(exc, UserError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class EdgeAgentApp(App[None]):
    """`backend=None` gives the bare UI, for feeding fixed events (tests, benchmarks).

    `suggestion` fills the prompt line at start (the demo's first question).
    """

    TITLE = "edge-agent"
    COMMANDS: ClassVar = App.COMMANDS | {ChatCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+c", "stop", "Stop", show=False, priority=True),
        Binding("ctrl+n", "new_session", "New"),
        Binding("ctrl+b", "toggle_sidebar", "Sessions"),
        Binding("ctrl+r", "toggle_reasoning", "Reasoning"),
        Binding("ctrl+t", "toggle_trace", "Trace", show=False),
        Binding("ctrl+l", "clear", "Clear"),
    ]
    CSS = """
    Screen { layout: vertical; }
    #body { height: 1fr; }
    #main { width: 1fr; height: 1fr; }
    """

    def __init__(
        self,
        backend: ChatBackend | None = None,
        *,
        live_stats: bool = True,
        show_sidebar: bool = True,
        history: Sequence[str] = (),
        suggestion: str | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.live_stats = live_stats
        self.engine = AgentThread()
        self.turn_id = 0
        self.generating = False
        self.stopping = False
        self.ready = False
        self.loading_spec: str | None = None
        self.model_info: ModelInfo | None = None
        self._show_sidebar = show_sidebar
        self._history = list(history)
        self._suggestion = suggestion
        self._listed_session: str | None = None
        self._approval: concurrent.futures.Future[bool] | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            sidebar = SessionsSidebar(id="sidebar")
            sidebar.set_class(not self._show_sidebar, "-hidden")
            yield sidebar
            with Vertical(id="main"):
                yield LoadingPanel(id="loading")
                yield ChatPane(id="chat")
                yield PromptInput(history=self._history, id="prompt")
            yield TracePanel(id="trace")
        yield StatusBar(live=self.live_stats, id="status")
        yield Footer()

    @property
    def chat(self) -> ChatPane:
        return self.query_one(ChatPane)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def prompt_input(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def sidebar(self) -> SessionsSidebar:
        return self.query_one(SessionsSidebar)

    @property
    def trace_panel(self) -> TracePanel:
        return self.query_one(TracePanel)

    @property
    def loading(self) -> LoadingPanel:
        return self.query_one(LoadingPanel)

    def on_mount(self) -> None:
        self.prompt_input.focus()
        if self._suggestion:  # a first prompt that works: Enter sends it
            self.prompt_input.value = self._suggestion
            self.prompt_input.cursor_position = len(self._suggestion)
        if self.backend is not None:
            self.start_load(self.backend.model_spec)

    def on_unmount(self) -> None:
        if self.generating and self.backend is not None:
            self.backend.cancel()
        self._refuse_pending_approval()
        self.engine.stop()

    async def _on_agent_thread(self, fn: Any, *args: Any) -> Any:
        """Run blocking `fn(*args)` on the agent thread without blocking the UI."""
        return await asyncio.wrap_future(self.engine.call(fn, *args))

    # ----------------------------------------------------------- model loading
    def model_choices(self) -> list[str]:
        return list(self.backend.models()) if self.backend is not None else []

    def start_load(self, spec: str) -> None:
        assert self.backend is not None
        self.ready = False
        self.loading_spec = spec
        self.loading.start(f"Loading {spec}…")
        self.status.set_model(None, loading=spec)
        self.engine.run(self._load(spec))

    async def _load(self, spec: str) -> None:
        """Agent thread: load the model, build the agent, read the resumed session."""
        assert self.backend is not None

        def progress(description: str, completed: float, total: float | None) -> None:
            self.post_message(LoadProgress(description, completed, total))

        try:
            info = await self.backend.load(spec, progress, self.approve)
            history = self.backend.history()
        except Exception as exc:
            self.post_message(ModelLoaded(spec, None, describe_error(exc), []))
        else:
            self.post_message(ModelLoaded(spec, info, None, history))

    def on_load_progress(self, message: LoadProgress) -> None:
        self.loading.update_progress(message.description, message.completed, message.total)

    async def on_model_loaded(self, message: ModelLoaded) -> None:
        self.loading.stop()
        self.loading_spec = None
        if message.error is not None:
            self.status.set_model(self.model_info)
            self.ready = self.model_info is not None
            await self.show_error(f"Cannot load {message.spec}: {message.error}", "Model")
            return
        self.model_info = message.info
        self.ready = True
        self.status.set_model(message.info)
        self.notify(f"{message.spec} is ready", timeout=3)
        if message.history:
            await self.show_history(message.history)
        await self.refresh_sessions()

    def switch_model(self, spec: str) -> None:
        if self.backend is None:
            return
        if self.generating or self.loading_spec is not None:
            self.notify("Wait for the current answer or load to finish", severity="warning")
            return
        self.start_load(spec)

    # ------------------------------------------------------------------- turns
    @on(Input.Submitted, "#prompt")
    async def submit(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if not prompt:
            return
        if self.backend is None or not self.ready:
            what = "is still loading" if self.loading_spec else "is not loaded"
            self.notify(f"The model {what}", severity="warning")
            return
        if self.generating:
            self.notify("An answer is streaming: Esc stops it", severity="warning")
            return
        self.prompt_input.remember(prompt)
        self.prompt_input.value = ""
        await self.begin_turn(prompt)
        self.engine.run(self._run_turn(prompt, self.turn_id))

    async def begin_turn(self, prompt: str) -> int:
        """Show the prompt and an empty turn; events of the returned turn id go there."""
        self.turn_id += 1
        self.generating = True
        self.stopping = False
        await self.chat.add_user(prompt)
        await self.chat.start_turn()
        self.status.begin_turn()
        self.trace_panel.begin_turn()
        return self.turn_id

    async def _run_turn(self, prompt: str, turn: int) -> None:
        """Agent thread: forward every event of the turn to the UI, and the live progress
        of its generations (this task's context only: observe_generations)."""
        assert self.backend is not None
        observe_generations(lambda p: self.post_message(GenerationProgressPosted(turn, p)))
        error = None
        try:
            async for event in self.backend.stream(prompt):
                self.post_message(AgentEventPosted(turn, event))
        except Exception as exc:
            error = describe_error(exc)
        finally:
            self.post_message(TurnEnded(turn, error))

    async def on_agent_event_posted(self, message: AgentEventPosted) -> None:
        if message.turn == self.turn_id:
            await self._list_new_session()
            await self.apply_event(message.event)

    async def on_generation_progress_posted(self, message: GenerationProgressPosted) -> None:
        if message.turn == self.turn_id:
            await self._list_new_session()
            self.status.progress(message.progress)

    async def _list_new_session(self) -> None:
        """A conversation's session exists once its first prompt is sent: list it then,
        not when the first answer ends."""
        if self.backend is None or self._listed_session == self.backend.session_id:
            return
        self._listed_session = self.backend.session_id
        await self.refresh_sessions()

    async def apply_event(self, event: Event) -> None:
        """Show one event of the current turn."""
        self.status.handle(event)
        self.trace_panel.handle(event)
        await self.chat.handle(event)
        if isinstance(event, ErrorEvent):
            self.notify(event.message, title="Agent error", severity="error")
        elif isinstance(event, FinalEvent):
            await self.chat.end_turn()

    async def apply_events(self, events: Iterable[Event]) -> None:
        for event in events:
            await self.apply_event(event)

    async def on_turn_ended(self, message: TurnEnded) -> None:
        if message.turn != self.turn_id:
            return
        if message.error is not None:
            await self.show_error(message.error, "Agent error")
        await self.chat.end_turn()
        self.status.end_turn()
        self._refuse_pending_approval()
        await self.refresh_sessions()  # a new session gets its title from the first prompt
        self.generating = False
        self.stopping = False

    async def show_history(self, history: list[ReplayTurn]) -> None:
        """A resumed session: its turns in the chat, its token counts in the status bar."""
        # Counts first: the chat fills over several awaits, and whoever sees the last
        # answer on screen may read the status bar at once.
        self.status.reset_session(stats for turn in history for stats in turn.step_stats())
        await self.chat.load_history(history)

    async def show_error(self, message: str, title: str = "Error") -> None:
        """An error as a notification and a card in the chat; the app goes on."""
        self.notify(message, title=title, severity="error", timeout=8)
        await self.chat.add_error(message, title)

    def action_stop(self) -> None:
        if self.generating and self.backend is not None:
            if not self.stopping:
                self.stopping = True
                self._refuse_pending_approval()
                self.backend.cancel()
                self.notify("Stopping…", timeout=2)
        elif self.loading_spec is None:
            self.notify("Nothing to stop (Ctrl+Q quits)", timeout=2)

    # ---------------------------------------------------------------- approval
    async def approve(self, tool_name: str, arguments: dict[str, Any], description: str) -> bool:
        """Agent thread: ask the user, wait for the answer without blocking the agent loop."""
        answer: concurrent.futures.Future[bool] = concurrent.futures.Future()
        if self.stopping or not self.post_message(
            ApprovalRequested(tool_name, arguments, description, answer)
        ):
            return False
        return await asyncio.wrap_future(answer)

    def on_approval_requested(self, message: ApprovalRequested) -> None:
        if self.stopping:
            message.answer.set_result(False)
            return
        self._approval = message.answer

        def decided(allowed: bool | None) -> None:
            if not message.answer.done():
                message.answer.set_result(bool(allowed))
            self._approval = None

        self.push_screen(
            ApprovalScreen(message.tool_name, message.arguments, message.description), decided
        )

    def _refuse_pending_approval(self) -> None:
        answer, self._approval = self._approval, None
        if answer is not None and not answer.done():
            answer.set_result(False)
            if isinstance(self.screen, ApprovalScreen):
                self.screen.dismiss(False)

    # ---------------------------------------------------------------- sessions
    async def refresh_sessions(self) -> None:
        if self.backend is None:
            return
        try:
            items: Sequence[SessionItem] = await self._on_agent_thread(self.backend.sessions)
        except Exception as exc:
            self.notify(f"Cannot list sessions: {describe_error(exc)}", severity="error")
            return
        self._listed_session = self.backend.session_id
        await self.sidebar.show(items, self.backend.session_id)
        self.sub_title = next(
            (item.title for item in items if item.id == self.backend.session_id), "new session"
        )

    def _busy(self) -> bool:
        if self.generating or self.loading_spec is not None:
            self.notify("Wait for the current answer (Esc stops it)", severity="warning")
            return True
        return False

    async def action_new_session(self) -> None:
        if self.backend is None or self._busy():
            return
        await self._on_agent_thread(self.backend.new_session)
        await self.chat.clear()
        self.status.reset_session()
        await self.refresh_sessions()

    @on(SessionsSidebar.New)
    async def _sidebar_new(self) -> None:
        await self.action_new_session()

    @on(SessionsSidebar.Open)
    async def open_session(self, message: SessionsSidebar.Open) -> None:
        if self.backend is None or self._busy():
            return
        try:
            history = await self._on_agent_thread(self.backend.open_session, message.session_id)
        except Exception as exc:
            await self.show_error(describe_error(exc), "Session")
            return
        await self.show_history(history)
        await self.refresh_sessions()
        self.prompt_input.focus()

    @on(SessionsSidebar.Delete)
    async def delete_session(self, message: SessionsSidebar.Delete) -> None:
        if self.backend is None or self._busy():
            return
        was_current = message.session_id == self.backend.session_id
        try:
            await self._on_agent_thread(self.backend.delete_session, message.session_id)
        except Exception as exc:
            await self.show_error(describe_error(exc), "Session")
            return
        if was_current:
            await self.chat.clear()
            self.status.reset_session()
        self.notify("Session deleted", timeout=2)
        await self.refresh_sessions()

    # ----------------------------------------------------------------- toggles
    def action_toggle_reasoning(self) -> None:
        self.chat.show_reasoning = not self.chat.show_reasoning
        self.notify(f"Reasoning {'shown' if self.chat.show_reasoning else 'hidden'}", timeout=2)

    def action_toggle_sidebar(self) -> None:
        self.sidebar.toggle_class("-hidden")

    def action_toggle_trace(self) -> None:
        self.trace_panel.toggle_class("-hidden")

    async def action_clear(self) -> None:
        if self.generating:
            self.notify("Wait for the current answer (Esc stops it)", severity="warning")
            return
        await self.chat.clear()
