"""Command palette entries (Ctrl+P): new session, toggle reasoning, sessions and trace,
switch model, clear."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from tui.app import EdgeAgentApp


@dataclass(frozen=True)
class ChatCommand:
    title: str
    help: str
    run: Callable[[], object]


def chat_commands(app: EdgeAgentApp) -> list[ChatCommand]:
    """Every palette entry; one "Switch model" per model the backend offers."""
    commands = [
        ChatCommand("New session", "Start an empty conversation", app.action_new_session),
        ChatCommand(
            "Toggle reasoning", "Show or hide the reasoning blocks", app.action_toggle_reasoning
        ),
        ChatCommand("Clear", "Clear the chat view (the session is kept)", app.action_clear),
        ChatCommand(
            "Toggle sessions", "Show or hide the sessions sidebar", app.action_toggle_sidebar
        ),
        ChatCommand(
            "Toggle trace",
            "Show or hide this turn's spans: steps, tools, durations (Ctrl+T)",
            app.action_toggle_trace,
        ),
    ]
    current = app.backend.model_spec if app.backend is not None else None
    for spec in app.model_choices():
        if spec != current:
            commands.append(
                ChatCommand(
                    f"Switch model: {spec}",
                    "Load this model for the next answers",
                    _switch(app, spec),
                )
            )
    return commands


def _switch(app: EdgeAgentApp, spec: str) -> Callable[[], object]:
    return lambda: app.switch_model(spec)


class ChatCommands(Provider):
    @property
    def _app(self) -> EdgeAgentApp:
        return self.app  # type: ignore[return-value]

    async def discover(self) -> Hits:
        for command in chat_commands(self._app):
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in chat_commands(self._app):
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
