"""edge-agent as an Outlines model: a program written for Outlines runs unchanged.

    import outlines
    from agent.integrations.outlines import from_edge_agent

    model = from_edge_agent("smollm2")            # or a loaded agent.Model
    person = outlines.Generator(model, Person)("...", max_tokens=200)

Why a black-box model: Outlines 1.3 has two kinds of model. A steerable one hands
Outlines its logits and Outlines masks them (on MLX with a Metal kernel, so
`outlines.from_mlxlm` fails on Linux); a black-box one receives the output type and
enforces it itself, as Outlines' OpenAI and vLLM models do. edge-agent is the second
kind: the output type goes to edge-agent's own grammar engines (llguidance, the regex
compiler as fallback), so the same program runs on MLX (Metal, CUDA or CPU) and on
llama.cpp, with edge-agent's guarantees: the output is never cut by `max_tokens` (a
request whose shortest output does not fit is refused before generating), forced tokens
are fed at once, and a Lark grammar is compiled by llguidance.

Output types mean what they mean in Outlines, because Outlines itself turns them into
terms (`python_types_to_terms`): `Literal["a", "b"]` and enums give the bare text `a`,
`int` the digits, a pydantic model or dataclass JSON, `dict` any JSON (Outlines' Lark
grammar). As in Outlines, the result is the generated text; `Person.model_validate_json`
and friends read it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from typing import Any, is_typeddict

try:
    from outlines.inputs import Chat
    from outlines.models.base import Model as OutlinesModel
    from outlines.models.base import ModelTypeAdapter
    from outlines.models.vllm_offline import VLLMOffline
except ImportError as exc:  # the `outlines` extra
    raise ImportError(
        f'agent.integrations.outlines needs Outlines: pip install "edge-agent[outlines]" ({exc})'
    ) from exc

from agent.constrained.output_types import OutputSpec, choice_spec, resolve_output_type
from agent.errors import UserError
from agent.sampling import SamplingParams
from agent.structured import StructuredResult, stream_structured
from agent.token_runtime import Message, Prompt, TextChunk, TokenRuntime

DEFAULT_MAX_TOKENS = 512
# Keyword arguments a generator call may pass besides the sampling parameters.
_OPTIONS = ("max_tokens", "whitespace", "compile_timeout", "engine")
_SAMPLING = tuple(f.name for f in fields(SamplingParams))


class UnsupportedOutputType(UserError, TypeError):
    """An output type edge-agent cannot constrain to (a TypeError, as Outlines raises)."""


class EdgeAgentTypeAdapter(ModelTypeAdapter):
    """Outlines inputs -> edge-agent prompts; Outlines output types -> OutputSpecs."""

    def __init__(self, chat_mode: bool = True) -> None:
        self.chat_mode = chat_mode

    def format_input(self, model_input: Any) -> Prompt:
        """A string is a user message under the model's chat template (as Outlines'
        `from_llamacpp` and `from_mlxlm` take it), or raw text with `chat_mode=False`;
        a `Chat` is rendered with the chat template."""
        if isinstance(model_input, str):
            if self.chat_mode:
                return [{"role": "user", "content": model_input}]
            return model_input
        if isinstance(model_input, Chat):
            messages: list[Message] = []
            for message in model_input.messages:
                content = message.get("content")
                if not isinstance(content, str):
                    raise TypeError(
                        "edge-agent models take text messages only (no images or other assets)"
                    )
                messages.append({"role": message["role"], "content": content})
            return messages
        raise TypeError(
            f"the input type {type(model_input).__name__} is not available with edge-agent; "
            "pass a str or an outlines.inputs.Chat"
        )

    def format_output_type(self, output_type: Any = None) -> OutputSpec | None:
        """The request for `output_type`, read the way Outlines reads it."""
        if output_type is None:
            return None
        from outlines.types.dsl import python_types_to_terms

        name = getattr(output_type, "__name__", None) or type(output_type).__name__
        if isinstance(output_type, (list, tuple)):  # Outlines has no list form: edge-agent's
            return choice_spec(list(output_type))
        try:
            term = python_types_to_terms(output_type)
            return resolve_output_type(term)
        except (TypeError, ValueError, RecursionError, UserError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            reason = reason.split(". Please open an issue")[0]  # Outlines' tracker, not ours
            if is_typeddict(output_type) and sys.version_info < (3, 12):
                # Outlines and pydantic read only typing_extensions' TypedDict there.
                reason = "use typing_extensions.TypedDict on Python < 3.12"
            raise UnsupportedOutputType(
                f"edge-agent cannot constrain output to {name}: {reason}"
            ) from None


class EdgeAgentOutlinesModel(OutlinesModel):
    """An Outlines model whose generation runs on an edge-agent model.

    Inference keyword arguments: `max_tokens` (default 512), the fields of
    `agent.SamplingParams` (`temperature`, `top_p`, `top_k`, `min_p`,
    `repetition_penalty`, `seed`; the model's defaults otherwise), and edge-agent's
    `whitespace`, `compile_timeout` and `engine` ("auto", "llguidance", "regex").
    """

    tensor_library_name = "mlx"

    def __init__(self, model: TokenRuntime, *, chat_mode: bool = True) -> None:
        self.model = model
        self.type_adapter = EdgeAgentTypeAdapter(chat_mode)

    def generate(self, model_input: Any, output_type: Any = None, **inference_kwargs: Any) -> str:
        """The whole output text (for JSON types, text that validates)."""
        return "".join(self.generate_stream(model_input, output_type, **inference_kwargs))

    def generate_batch(
        self, model_input: list[Any], output_type: Any = None, **inference_kwargs: Any
    ) -> list[str]:
        """One output per input, generated one after another (the runtimes decode one
        sequence at a time)."""
        return [self.generate(item, output_type, **inference_kwargs) for item in model_input]

    def generate_stream(
        self, model_input: Any, output_type: Any = None, **inference_kwargs: Any
    ) -> Iterator[str]:
        """The output text in pieces, as it is generated (forced runs in one piece)."""
        prompt = self.type_adapter.format_input(model_input)
        spec = self.type_adapter.format_output_type(output_type)
        max_tokens, sampling, options = self._options(inference_kwargs)
        if spec is None:
            for item in self.model.stream(prompt, max_tokens=max_tokens, sampling=sampling):
                if isinstance(item, TextChunk) and item.text:
                    yield item.text
            return
        for piece in stream_structured(
            self.model, prompt, spec, max_tokens=max_tokens, sampling=sampling, **options
        ):
            if isinstance(piece, TextChunk) and piece.text:
                yield piece.text
            elif isinstance(piece, StructuredResult):
                pass  # the text was streamed; parsing it checked it

    def _options(self, kwargs: dict[str, Any]) -> tuple[int, SamplingParams, dict[str, Any]]:
        unknown = sorted(k for k in kwargs if k not in _OPTIONS and k not in _SAMPLING)
        if unknown:
            raise TypeError(
                f"edge-agent models do not take {', '.join(unknown)} (they take max_tokens, "
                f"{', '.join(_SAMPLING)}, whitespace, compile_timeout and engine)"
            )
        max_tokens = kwargs.get("max_tokens", DEFAULT_MAX_TOKENS)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise UserError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        overrides = {k: v for k, v in kwargs.items() if k in _SAMPLING}
        sampling = replace(self.model.default_sampling, **overrides)
        options: dict[str, Any] = {
            k: kwargs[k] for k in ("whitespace", "compile_timeout", "engine") if k in kwargs
        }
        return max_tokens, sampling, options


# Outlines' Generator recognises a black-box model by a closed Union of its own classes
# (`outlines.models.BlackBoxModel`), and has no registration hook. Registering as a
# virtual subclass of `VLLMOffline` (the in-process model whose engine enforces the
# output type, as edge-agent's does) makes `Generator` pass the output type through
# unchanged; Outlines 1.3 checks VLLMOffline nowhere else.
# tests/test_outlines_interop.py fails if a new Outlines routes these models otherwise.
VLLMOffline.register(EdgeAgentOutlinesModel)


def from_edge_agent(
    model: Any, *, engine: str = "auto", chat_mode: bool = True
) -> EdgeAgentOutlinesModel:
    """An Outlines model from a model spec (`tiny`, `smollm2`, a directory, a GGUF, a
    repo id), a loaded `agent.Model`, or a local engine (`agent.engines`).

    `engine` picks the runtime for a spec ("auto", "mlx", "llama.cpp"). `chat_mode`
    is `from_llamacpp`'s: a `str` prompt is a user message (True) or raw text. A server
    is not accepted: Outlines reaches one with `outlines.from_openai` or `from_vllm`.
    """
    if isinstance(model, str):
        from agent.loader import load_model

        model = load_model(model, engine=engine, reuse=True)
    if isinstance(model, TokenRuntime):
        return EdgeAgentOutlinesModel(model, chat_mode=chat_mode)
    inner = getattr(model, "model", None)
    if isinstance(inner, TokenRuntime):  # a LocalChatModel
        return EdgeAgentOutlinesModel(inner, chat_mode=chat_mode)
    raise UserError(
        f"from_edge_agent needs a local model (a spec or a loaded agent.Model), not "
        f"{type(model).__name__}; Outlines reaches a server with outlines.from_openai"
    )


__all__ = ["EdgeAgentOutlinesModel", "UnsupportedOutputType", "from_edge_agent"]
