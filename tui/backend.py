"""What the app needs from the agent side, as a protocol.

The app only renders events and forwards user actions; everything that touches the
model, the tools or the session store sits behind this interface and runs on the
agent thread (see engine.py). `tui.agent_backend.AgentBackend` is the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from agent.events import Event
from agent.model_info import ModelInfo
from agent.progress import ProgressCallback
from agent.session_replay import ReplayTurn
from tui.widgets.sessions import SessionItem

# (tool name, arguments, tool description) -> allowed?
Approver = Callable[[str, dict[str, Any], str], Awaitable[bool]]


class ChatBackend(Protocol):
    model_spec: str

    async def load(self, spec: str, progress: ProgressCallback, approve: Approver) -> ModelInfo:
        """Load (or switch to) model `spec` and build the agent around it."""

    def stream(self, prompt: str) -> AsyncIterator[Event]:
        """One turn of the current session; ends with a FinalEvent."""

    def cancel(self) -> None:
        """Ask the running turn to stop (called from the UI thread)."""

    def models(self) -> Sequence[str]:
        """Model specs the user can switch to."""

    @property
    def session_id(self) -> str | None: ...

    def sessions(self) -> Sequence[SessionItem]: ...

    def history(self) -> list[ReplayTurn]:
        """The current session's finished turns, to show."""

    def open_session(self, session_id: str) -> list[ReplayTurn]:
        """Make `session_id` current; return its turns to show."""

    def new_session(self) -> None: ...

    def delete_session(self, session_id: str) -> None: ...
