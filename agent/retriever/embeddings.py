"""Sentence embeddings with all-MiniLM-L6-v2 in MLX: BERT, mean pooling, L2 norm.

Matches sentence-transformers' pipeline for this model: WordPiece (lower-cased) with
[CLS]/[SEP], truncation at 256 word pieces, mean of the token states over real tokens,
unit length. Vectors are float32 numpy arrays so the stores need no MLX.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import mlx.core as mx
import numpy as np

from agent.progress import ProgressCallback, silent_progress
from agent.retriever.bert import BertConfig, BertModel, l2_normalize, mean_pool
from agent.retriever.weights import MINILM_MODEL_ID, minilm_model_dir

EMBEDDING_DIM = 384
MAX_TOKENS = 256


class Embedder:
    """Turns texts into unit-length float32 vectors."""

    def __init__(self, model_dir: Path, max_tokens: int = MAX_TOKENS):
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        config = json.loads((model_dir / "config.json").read_text())
        self.name = MINILM_MODEL_ID
        self.max_tokens = max_tokens
        self.dim = int(config["hidden_size"])
        self._model = BertModel(BertConfig.from_dict(config))
        self._model.load_safetensors(model_dir / "model.safetensors")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        self._lock = threading.Lock()

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), dim) float32, rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        # Sorting by length keeps padding (wasted work) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int32)
            mask = np.zeros((len(batch), width), dtype=np.int32)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            ids_mx, mask_mx = mx.array(ids), mx.array(mask)
            vectors = l2_normalize(mean_pool(self._model(ids_mx, mask_mx), mask_mx))
            out[batch] = np.array(vectors.astype(mx.float32))
        return out

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, as embedded (with [CLS]/[SEP], truncated): the usage a
        server reports."""
        with self._lock:
            return [len(e.ids) for e in self._tokenizer.encode_batch(texts)]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(progress: ProgressCallback = silent_progress) -> Embedder:
    """The MiniLM embedder, loaded once per process (fetching its files if needed)."""
    with _CACHE_LOCK:
        if MINILM_MODEL_ID not in _CACHE:
            _CACHE[MINILM_MODEL_ID] = Embedder(minilm_model_dir(progress))
        return _CACHE[MINILM_MODEL_ID]
