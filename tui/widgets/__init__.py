"""Widgets of the chat app; each one renders one kind of agent event or state."""

from __future__ import annotations

from tui.widgets.approval import ApprovalScreen
from tui.widgets.chat_pane import ChatPane
from tui.widgets.error_card import ErrorCard
from tui.widgets.loading import LoadingPanel
from tui.widgets.message import AnswerMessage, UserMessage
from tui.widgets.prompt_input import PromptInput
from tui.widgets.reasoning import ReasoningBlock
from tui.widgets.sessions import SessionsSidebar
from tui.widgets.status_bar import StatusBar
from tui.widgets.tool_card import ToolCard
from tui.widgets.turn import AssistantTurn

__all__ = [
    "AnswerMessage",
    "ApprovalScreen",
    "AssistantTurn",
    "ChatPane",
    "ErrorCard",
    "LoadingPanel",
    "PromptInput",
    "ReasoningBlock",
    "SessionsSidebar",
    "StatusBar",
    "ToolCard",
    "UserMessage",
]
