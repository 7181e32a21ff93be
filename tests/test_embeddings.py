"""The offline MiniLM embedding function, as Chroma sees it."""

from __future__ import annotations

import chromadb
import numpy as np
from chromadb.utils.embedding_functions import known_embedding_functions

from aim_ray.mcp.backends.embeddings import (
    DIMENSIONS,
    EMBEDDING_NAME,
    MiniLMEmbeddingFunction,
    embed,
    load_model,
)


def test_vectors_are_384_dim_and_unit_length():
    vectors = embed(["a cat", "quarterly revenue"])
    assert vectors.shape == (2, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_meanings_are_closer():
    cat, kitten, revenue = embed(["cat", "kitten", "revenue"])
    assert cat @ kitten > 0.5
    assert cat @ kitten > cat @ revenue + 0.3


def test_the_model_is_loaded_once_per_process():
    assert load_model() is load_model()


def test_embedding_function_protocol():
    ef = MiniLMEmbeddingFunction()
    assert ef.name() == EMBEDDING_NAME
    assert known_embedding_functions[EMBEDDING_NAME] is MiniLMEmbeddingFunction
    rebuilt = MiniLMEmbeddingFunction.build_from_config(ef.get_config())
    assert isinstance(rebuilt, MiniLMEmbeddingFunction)
    assert not ef.is_legacy()
    assert ef.default_space() == "cosine"
    embeddings = ef(["hello world"])
    assert len(embeddings) == 1 and len(embeddings[0]) == DIMENSIONS


def test_chroma_reopens_a_collection_with_the_stored_function(tmp_path):
    settings = chromadb.Settings(anonymized_telemetry=False)
    client = chromadb.PersistentClient(path=str(tmp_path), settings=settings)
    collection = client.create_collection("docs", embedding_function=MiniLMEmbeddingFunction())
    collection.add(ids=["cat", "money"], documents=["cats are felines", "revenue grew"])

    reopened = chromadb.PersistentClient(path=str(tmp_path), settings=settings)
    found = reopened.get_collection("docs").query(query_texts=["kitten"], n_results=1)
    assert found["ids"] == [["cat"]]
