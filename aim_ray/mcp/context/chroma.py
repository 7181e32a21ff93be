"""The ``chroma`` context provider: semantic search in one Chroma collection (embedded
``PersistentClient`` or a ``chroma run`` server), also used by the ``vector_search`` tool
and to seed collections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.errors import NotFoundError

from aim_ray.config.mcp_providers import ChromaSettings
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.embeddings import MiniLMEmbeddingFunction, embed
from aim_ray.mcp.backends.outbound import auth_headers
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.backends.values import jsonable
from aim_ray.mcp.context.base import ContextProvider, ProviderError
from aim_ray.mcp.protocol import ContextItem

T = TypeVar("T")


def chroma_client(settings: ChromaSettings) -> ClientAPI:
    """A PersistentClient (embedded) or HttpClient for the settings; blocking, so run in
    a thread. Telemetry is off: it phones home, which fails (noisily) offline."""
    chroma_settings = chromadb.Settings(anonymized_telemetry=False)
    if settings.mode == "http":
        return chromadb.HttpClient(
            host=settings.host,
            port=settings.port,
            ssl=settings.ssl,
            headers=auth_headers(settings.auth),
            settings=chroma_settings,
        )
    return chromadb.PersistentClient(path=settings.path, settings=chroma_settings)


async def off_loop(what: str, work: Callable[[], T], error: type[AimRayError]) -> T:
    """A blocking chromadb call in a worker thread; its many failure types (ValueError,
    HTTP, Rust) become ``error`` with a clean message."""
    try:
        return await asyncio.to_thread(work)
    except AimRayError:
        raise
    except Exception as failure:  # chromadb raises many types
        raise error(f"{what}: {describe_error(failure)}") from None


def open_collection(client: ClientAPI, name: str) -> Collection:
    """The collection, created on first use with the offline embedding model (cosine space)."""
    try:
        return client.get_collection(name)
    except NotFoundError:
        return client.create_collection(
            name,
            embedding_function=MiniLMEmbeddingFunction(),
            configuration={"hnsw": {"space": "cosine"}},
        )


def upsert_documents(
    client: ClientAPI,
    collection: str,
    ids: list[str],
    documents: list[str],
    metadatas: list[dict] | None,
) -> None:
    """Upsert documents embedded with the offline model (the collection created on first
    use); blocking, so run it with ``off_loop``. The one write path into Chroma."""
    open_collection(client, collection).upsert(
        ids=ids, documents=documents, metadatas=metadatas, embeddings=embed(documents)
    )


class ChromaProvider(ContextProvider):
    """Semantic search in one Chroma collection, embedding the query with the offline model.

    The collection is opened without an embedding function and queried by vector, so a
    collection created with Chroma's default (the same MiniLM model, via ONNX) works too.
    """

    kind = "chroma"

    def __init__(
        self,
        name: str,
        settings: ChromaSettings,
        timeout_s: float,
        description: str | None = None,
    ) -> None:
        super().__init__(name, timeout_s, description)
        self._settings = settings
        self._client: ClientAPI | None = None

    def _get_client(self) -> ClientAPI:
        if self._client is None:
            self._client = chroma_client(self._settings)
        return self._client

    def _collection(self) -> Collection:
        try:
            return self._get_client().get_collection(self._settings.collection)
        except NotFoundError:
            raise ProviderError(
                f"Chroma collection {self._settings.collection!r} does not exist"
            ) from None

    async def _run(self, what: str, fn: Callable[[], T]) -> T:
        return await off_loop(what, fn, ProviderError)

    def _query(self, query: str, limit: int) -> list[ContextItem]:
        result = self._collection().query(
            query_embeddings=embed([query]),
            n_results=limit,
            include=["documents", "metadatas", "distances"],
        )
        items = []
        for index, item_id in enumerate(result["ids"][0]):
            distance = result["distances"][0][index]
            items.append(
                ContextItem(
                    provider=self.name,
                    id=str(item_id),
                    content=result["documents"][0][index] or "",
                    score=None if distance is None else round(1.0 - float(distance), 6),
                    metadata=jsonable(dict(result["metadatas"][0][index] or {})),
                )
            )
        return items

    async def retrieve(self, query: str, limit: int) -> list[ContextItem]:
        limit = min(limit, self._settings.n_results)
        return await self._run(f"query on {self.name!r} failed", lambda: self._query(query, limit))

    async def add_documents(
        self, ids: list[str], documents: list[str], metadatas: list[dict] | None = None
    ) -> None:
        """Upsert documents (creating the collection, cosine space, on first use)."""
        await self._run(
            f"adding documents to {self.name!r} failed",
            lambda: upsert_documents(
                self._get_client(), self._settings.collection, ids, documents, metadatas
            ),
        )

    async def _probe(self) -> str:
        def probe() -> str:
            self._get_client().heartbeat()
            count = self._collection().count()
            return f"collection {self._settings.collection!r}: {count} documents"

        return await self._run("Chroma health check failed", probe)
