"""Engines behind one seam: MLX in-process, OpenAI-compatible servers, scripted replies.

`load_chat_model(spec)` turns a model spec into a `ChatModel`:

* `openai:http://host:8000/v1#model-name` (or `openai:URL` and `model=`): any
  OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, LM Studio, another
  `edge-agent serve`), with the API key from `OPENAI_API_KEY` or `EDGE_AGENT_API_KEY`;
* anything else (`tiny`, `smollm2`, a directory, a Hugging Face repo id): a model
  loaded into this process.

Engine modules load on first use, so importing this package loads no model code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.engines.base import (
    ChatModel,
    PreparedStep,
    StepEvent,
    StepRequest,
    StepResult,
    TextPiece,
)
from agent.errors import UserError
from agent.progress import ProgressCallback, silent_progress

if TYPE_CHECKING:
    from agent.engines.remote import RemoteChatModel

REMOTE_PREFIX = "openai:"


def is_remote_spec(spec: str) -> bool:
    return spec.startswith(REMOTE_PREFIX)


def load_chat_model(
    spec: str,
    progress: ProgressCallback = silent_progress,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    reuse: bool = True,
    engine: str = "auto",
) -> ChatModel:
    """The engine for `spec` (see the module docstring); `base_url` makes `spec` the
    name of a model on that server; `engine` picks the local engine (auto, mlx,
    llama.cpp; see `agent.loader.choose_engine`)."""
    if base_url is not None or is_remote_spec(spec):
        return remote_model(spec, base_url=base_url, api_key=api_key)
    from agent.engines.local import LocalChatModel
    from agent.loader import load_model
    from agent.model_thread import model_executor

    # On the model thread, where its generations run: MLX arrays are bound to a thread.
    model = model_executor().submit(load_model, spec, progress, reuse=reuse, engine=engine).result()
    return LocalChatModel.for_model(model)


def remote_model(
    spec: str, *, base_url: str | None = None, api_key: str | None = None
) -> RemoteChatModel:
    """An OpenAI-compatible server: `openai:URL#name`, or `spec` on `base_url`."""
    from agent.engines.remote import RemoteChatModel

    if base_url is None:
        rest = spec[len(REMOTE_PREFIX) :]
        url, _, name = rest.partition("#")
        if not url.startswith(("http://", "https://")):
            raise UserError(
                f"a remote model spec is openai:http(s)://host[:port]/v1#model-name, got '{spec}'"
            )
        base_url, spec = url, name
    elif is_remote_spec(spec):
        raise UserError("give either --base-url with a model name, or an openai: spec")
    return RemoteChatModel(base_url, spec, api_key=api_key)


def as_chat_model(model: Any) -> ChatModel:
    """A `ChatModel` from one, from a loaded `agent.Model`, or from a model spec."""
    if isinstance(model, str):
        return load_chat_model(model)
    if hasattr(model, "prepare") and hasattr(model, "stream") and hasattr(model, "provider"):
        return model
    from agent.engines.local import LocalChatModel
    from agent.token_runtime import TokenRuntime

    if isinstance(model, TokenRuntime):
        return LocalChatModel.for_model(model)
    raise UserError(f"not a model: {model!r} (pass a model spec, a loaded Model or a ChatModel)")


__all__ = [
    "ChatModel",
    "PreparedStep",
    "StepEvent",
    "StepRequest",
    "StepResult",
    "TextPiece",
    "as_chat_model",
    "is_remote_spec",
    "load_chat_model",
    "remote_model",
]
