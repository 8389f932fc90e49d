"""The real backend: a model engine, the `Agent` around it, and the session store.

Everything here runs on the app's agent thread (engine.py). The engine (agent.engines)
is a local model, whose loading and generation the engine keeps on its own model
thread, or a server over HTTP; the UI never reaches into either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.agent import Agent
from agent.docqa import DocumentQA
from agent.engines import ChatModel, load_chat_model
from agent.events import Event
from agent.model_info import ModelInfo
from agent.models.registry import BUILTIN_MODELS
from agent.progress import ProgressCallback
from agent.session_replay import ReplayTurn
from agent.sessions import Session, SessionStore
from agent.tracing import Tracing
from tools import Tool, ToolCall
from tui.backend import Approver
from tui.widgets.sessions import SessionItem


@dataclass
class ChatOptions:
    """What `edge-agent chat` and `edge-agent demo` configure; checked before the UI."""

    model: str
    engine: str = "auto"  # the local engine: auto, mlx, llama.cpp
    tools: list[Tool] = field(default_factory=list)
    retriever: Any = None
    session: str | None = None  # resume (or start) this session id
    system: str | None = None
    max_steps: int = 8
    max_tokens: int = 4096
    tool_choice: str = "auto"
    rag_k: int = 4  # passages per rag_search
    # Answer every prompt from `retriever` the way agent/docqa.py does (the demo):
    # retrieval first with the question's words, then a grammar-constrained answer.
    document_qa: bool = False
    # Sampling flags given by the user, applied over the model's own defaults.
    sampling_overrides: dict[str, Any] = field(default_factory=dict)
    # Where the runs' spans go (agent.tracing; None: OpenTelemetry's global providers).
    tracing: Tracing | None = None


class AgentBackend:
    """One Agent per session: opening or starting a session builds a fresh one
    (same model, tools and retriever), so its conversation is the session's."""

    def __init__(self, options: ChatOptions, store: SessionStore | None = None) -> None:
        self.options = options
        self.model_spec = options.model
        self.store = store or SessionStore()
        self.model: ChatModel | None = None
        self.agent: Agent | None = None
        self._session: Session | None = None
        self._approver: Approver | None = None
        self._wanted_session = options.session
        self._qa: DocumentQA | None = None

    # ------------------------------------------------------------------ model
    async def load(self, spec: str, progress: ProgressCallback, approve: Approver) -> ModelInfo:
        # No reuse: a model loaded again replaces the previous copy instead of keeping
        # two, and loading always reports its progress.
        model = await asyncio.to_thread(
            load_chat_model, spec, progress, reuse=False, engine=self.options.engine
        )
        self.model = model
        self.model_spec = spec
        self._approver = approve
        if self._wanted_session is not None:
            sid, self._wanted_session = self._wanted_session, None
            # An exact id resumes or starts that session, like `edge-agent run --session`.
            self._session = self.store.open_or_create(sid, model=model.name)
        self.agent = self._make_agent()
        return model.info

    def models(self) -> Sequence[str]:
        return list(dict.fromkeys([self.model_spec, *BUILTIN_MODELS]))

    def _make_agent(self) -> Agent:
        assert self.model is not None
        o = self.options
        return Agent(
            self.model,
            o.tools,
            system=o.system,
            max_steps=o.max_steps,
            max_tokens=o.max_tokens,
            tool_choice=o.tool_choice,
            retriever=o.retriever,
            rag_k=o.rag_k,
            session=self._session,
            approve=self._approve,
            sampling=self.model.default_sampling.with_overrides(**o.sampling_overrides),
            tracing=o.tracing,
        )

    async def _approve(self, call: ToolCall, tool: Tool) -> bool:
        if self._approver is None:
            return False
        return await self._approver(call.name, dict(call.arguments), tool.description)

    # ------------------------------------------------------------------ turns
    async def stream(self, prompt: str) -> AsyncIterator[Event]:
        if self.agent is None:
            raise RuntimeError("no model is loaded")
        if self._session is None:  # a new conversation is stored from its first prompt
            assert self.model is not None
            # Titled by the prompt as typed (a document question's stored user turn
            # also holds the passages found for it).
            title = " ".join(prompt.split())[:80] if self.options.document_qa else ""
            self._session = self.store.create(model=self.model.name, title=title)
            self.agent = self._make_agent()
        if self.options.document_qa:
            self._qa = self._make_qa()
            stream = self._qa.stream(prompt)
        else:
            stream = self.agent.stream(prompt)
        async for event in stream:
            yield event

    def _make_qa(self) -> DocumentQA:
        assert self.model is not None and self.options.retriever is not None
        o = self.options
        return DocumentQA(
            self.model,
            o.retriever,
            k=o.rag_k,
            session=self._session,
            max_tokens=o.max_tokens,
            sampling=self.model.default_sampling.with_overrides(**o.sampling_overrides),
        )

    def cancel(self) -> None:
        if self._qa is not None:
            self._qa.cancel()
        if self.agent is not None:
            self.agent.cancel()

    # --------------------------------------------------------------- sessions
    @property
    def session_id(self) -> str | None:
        return self._session.id if self._session is not None else None

    def sessions(self) -> Sequence[SessionItem]:
        return [
            SessionItem(s.id, s.title or "(empty)", f"{_when(s.updated)} · {s.turns} turn(s)")
            for s in self.store.list()
        ]

    def history(self) -> list[ReplayTurn]:
        return self._session.replay() if self._session is not None else []

    def open_session(self, session_id: str) -> list[ReplayTurn]:
        self._session = self.store.open(session_id)
        if self.model is not None:
            self.agent = self._make_agent()
        return self.history()

    def new_session(self) -> None:
        self._session = None
        if self.model is not None:
            self.agent = self._make_agent()

    def delete_session(self, session_id: str) -> None:
        deleted = self.store.delete(session_id)
        if deleted == self.session_id:
            self.new_session()


def _when(ts: float) -> str:
    return time.strftime("%b %d %H:%M", time.localtime(ts))
