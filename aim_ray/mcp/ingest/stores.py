"""Where ingested chunks go: a provider's Chroma collection or PostgreSQL table.

Both upsert by chunk id and then drop the chunks of the same source past its new last
index, so ingesting a file again (changed or not) never duplicates it. Chroma stores the
chunk as a document embedded with the offline model, with ``source``, ``chunk`` and
``title`` as metadata. PostgreSQL gets, if the table is missing, ``(id text primary key,
<columns>, source, chunk)`` with a GIN index on exactly the expression the provider's
full-text search uses; the title goes in the first of ``columns`` and the text in the last.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from aim_ray.config.mcp_providers import (
    ChromaProviderConfig,
    ChromaSettings,
    PostgresProviderConfig,
    PostgresSettings,
    ProviderConfig,
)
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.postgres import PostgresPool, pg_errors, quote_identifier
from aim_ray.mcp.ingest.chunks import Chunk

if TYPE_CHECKING:  # chromadb is imported when a Chroma store is used
    import asyncpg
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

T = TypeVar("T")


class IngestTargetError(AimRayError):
    """The provider cannot take documents (wrong type, or a table of another shape)."""


class ChunkStore(Protocol):
    name: str

    async def count(self) -> int | None:
        """Documents stored, or None when the collection or table does not exist yet."""
        ...

    async def upsert(self, chunks: list[Chunk]) -> None: ...

    async def remove_from(self, source: str, first_stale: int) -> int:
        """Drop the source's chunks from index ``first_stale`` on; how many were dropped."""
        ...

    async def close(self) -> None: ...


def open_store(provider: ProviderConfig) -> ChunkStore:
    if isinstance(provider, ChromaProviderConfig):
        return ChromaStore(provider.name, provider.config)
    if isinstance(provider, PostgresProviderConfig):
        if provider.config.table is None:
            raise IngestTargetError(
                f"provider {provider.name!r} searches with its own `query`; "
                "ingest needs `table` and `columns` to write to"
            )
        return PostgresStore(provider.name, provider.config)
    raise IngestTargetError(
        f"provider {provider.name!r} is a {provider.type} provider; "
        "documents can be ingested into chroma and postgresql providers"
    )


STAGING_SUFFIX = "-aim-ray-staging"


def staged(provider: ChromaProviderConfig) -> ChromaProviderConfig:
    """The provider writing to a staging collection beside its own, renamed when filled
    (``ChromaStore.rename``): a process that opens an embedded collection while another
    still writes it can find its index missing on disk ("Error creating hnsw segment
    reader: Nothing found on disk") and keeps failing; a staged one is never opened."""
    collection = provider.config.collection + STAGING_SUFFIX
    config = provider.config.model_copy(update={"collection": collection})
    return provider.model_copy(update={"config": config})


class ChromaStore:
    def __init__(self, name: str, settings: ChromaSettings) -> None:
        self.name = name
        self._settings = settings
        self._client: ClientAPI | None = None

    async def _run(self, what: str, work: Callable[[], T]) -> T:
        from aim_ray.mcp.context.chroma import off_loop

        return await off_loop(f"{what} {self.name!r}", work, IngestTargetError)

    def _get_client(self) -> ClientAPI:
        from aim_ray.mcp.context.chroma import chroma_client

        if self._client is None:
            self._client = chroma_client(self._settings)
        return self._client

    def _collection(self, create: bool) -> Collection | None:
        from chromadb.errors import NotFoundError

        from aim_ray.mcp.context.chroma import open_collection

        client = self._get_client()
        if create:
            return open_collection(client, self._settings.collection)
        try:
            return client.get_collection(self._settings.collection)
        except NotFoundError:
            return None

    async def count(self) -> int | None:
        def count() -> int | None:
            collection = self._collection(create=False)
            return None if collection is None else collection.count()

        return await self._run("counting", count)

    async def upsert(self, chunks: list[Chunk]) -> None:
        from aim_ray.mcp.context.chroma import upsert_documents

        def upsert() -> None:
            upsert_documents(
                self._get_client(),
                self._settings.collection,
                [chunk.id for chunk in chunks],
                [chunk.text for chunk in chunks],
                [chunk.metadata() for chunk in chunks],
            )

        await self._run("writing to", upsert)

    async def remove_from(self, source: str, first_stale: int) -> int:
        def remove() -> int:
            collection = self._collection(create=False)
            if collection is None:
                return 0
            where = {"$and": [{"source": source}, {"chunk": {"$gte": first_stale}}]}
            stale = collection.get(where=where, include=[])["ids"]
            if stale:
                collection.delete(ids=stale)
            return len(stale)

        return await self._run("writing to", remove)

    async def drop(self) -> None:
        """Delete the collection if it exists (a staging one an earlier attempt left)."""

        def drop() -> None:
            if self._collection(create=False) is not None:
                self._get_client().delete_collection(self._settings.collection)

        await self._run("dropping", drop)

    async def rename(self, new_name: str) -> None:
        def rename() -> None:
            collection = self._collection(create=False)
            assert collection is not None  # called after a successful ingest
            collection.modify(name=new_name)

        await self._run("renaming", rename)

    async def close(self) -> None:
        self._client = None


class PostgresStore:
    def __init__(self, name: str, settings: PostgresSettings) -> None:
        assert settings.table and settings.columns  # open_store checks
        self.name = name
        self._settings = settings
        self._pool = PostgresPool(settings)
        self._table = quote_identifier(settings.table)
        self._id = quote_identifier(settings.id_column or "id")
        self._content = quote_identifier(settings.columns[-1])
        self._title = quote_identifier(settings.columns[0]) if len(settings.columns) > 1 else None
        self._ready = False

    async def count(self) -> int | None:
        async with self._pool.connection() as conn, pg_errors(f"counting {self.name!r}"):
            if await conn.fetchval("SELECT to_regclass($1)", self._settings.table) is None:
                return None
            return await conn.fetchval(f"SELECT count(*) FROM {self._table}")

    async def _ensure_table(self, conn: asyncpg.Connection) -> None:
        from aim_ray.mcp.context.postgres import text_vector_sql

        if self._ready:
            return
        title = f"{self._title} text, " if self._title else ""
        _, vector = text_vector_sql(self._settings)
        index = quote_identifier(re.sub(r"\W", "_", self._settings.table.split(".")[-1]) + "_fts")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ({self._id} text PRIMARY KEY, {title}"
            f"{self._content} text NOT NULL, source text NOT NULL, chunk integer NOT NULL)"
        )
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON {self._table} USING gin ({vector})"
        )
        await self._check_columns(conn)
        self._ready = True

    async def _check_columns(self, conn: asyncpg.Connection) -> None:
        wanted = {"source", "chunk", *(c for c in self._settings.columns), self._id.strip('"')}
        present = {
            row[0]
            for row in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                "AND attnum > 0 AND NOT attisdropped",
                self._settings.table,
            )
        }
        missing = sorted(wanted - present)
        if missing:
            raise IngestTargetError(
                f"table {self._settings.table} of provider {self.name!r} has no column "
                f"{', '.join(missing)}; ingest into a new table (it is created) or add them"
            )

    async def upsert(self, chunks: list[Chunk]) -> None:
        columns = [self._id, *([self._title] if self._title else []), self._content]
        columns += ["source", "chunk"]
        values = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
        sql = (
            f"INSERT INTO {self._table} ({', '.join(columns)}) VALUES ({values}) "
            f"ON CONFLICT ({self._id}) DO UPDATE SET {updates}"
        )
        rows = [
            (c.id, *([c.title] if self._title else []), c.text, c.source, c.index) for c in chunks
        ]
        async with self._pool.connection() as conn, pg_errors(f"writing to {self.name!r}"):
            await self._ensure_table(conn)
            async with conn.transaction():
                await conn.executemany(sql, rows)

    async def remove_from(self, source: str, first_stale: int) -> int:
        sql = f"DELETE FROM {self._table} WHERE source = $1 AND chunk >= $2"
        async with self._pool.connection() as conn, pg_errors(f"writing to {self.name!r}"):
            await self._ensure_table(conn)
            status = await conn.execute(sql, source, first_stale)
        return int(status.split()[-1])

    async def close(self) -> None:
        await self._pool.close()
