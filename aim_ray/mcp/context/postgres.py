"""The ``postgresql`` context provider: full-text search over a table, or the user's own
parameterised query (``$1`` = query text, optional ``$2`` = limit)."""

from __future__ import annotations

import re
from typing import Any

from aim_ray.config.mcp_providers import PostgresSettings
from aim_ray.mcp.backends.postgres import PostgresPool, pg_errors, quote_identifier
from aim_ray.mcp.backends.values import jsonable
from aim_ray.mcp.context.base import ContextProvider, ProviderError
from aim_ray.mcp.protocol import ContextItem


def text_vector_sql(settings: PostgresSettings) -> tuple[str, str]:
    """(document, ``to_tsvector`` of it) over ``columns``: what table search matches and what
    a GIN index must be built on, character for character, to serve it."""
    assert settings.columns  # guaranteed by PostgresSettings validation for table search
    # Immutable expressions only (no concat_ws), so the index can hold them.
    document = " || E'\\n' || ".join(
        f"coalesce({quote_identifier(column)}::text, '')" for column in settings.columns
    )
    return document, f"to_tsvector({regconfig(settings)}, {document})"


def regconfig(settings: PostgresSettings) -> str:
    return f"'{settings.text_search_config}'::regconfig"


def full_text_sql(settings: PostgresSettings) -> str:
    """The full-text search over ``table``/``columns``: $1 = query text, $2 = limit."""
    assert settings.table  # guaranteed by PostgresSettings validation
    document, vector = text_vector_sql(settings)
    query = f"plainto_tsquery({regconfig(settings)}, $1)"
    row_id = quote_identifier(settings.id_column) + "::text" if settings.id_column else "ctid::text"
    return (
        f"SELECT {row_id} AS id, {document} AS content, ts_rank({vector}, {query}) AS score "
        f"FROM {quote_identifier(settings.table)} WHERE {vector} @@ {query} "
        "ORDER BY score DESC LIMIT $2"
    )


class PostgresProvider(ContextProvider):
    kind = "postgresql"

    def __init__(
        self, name: str, settings: PostgresSettings, timeout_s: float, description: str | None
    ) -> None:
        super().__init__(name, timeout_s, description)
        self._settings = settings
        self._pool = PostgresPool(settings)
        self._sql = settings.query or full_text_sql(settings)
        self._takes_limit = re.search(r"\$2\b", self._sql) is not None

    async def retrieve(self, query: str, limit: int) -> list[ContextItem]:
        args: tuple[Any, ...] = (query, limit) if self._takes_limit else (query,)
        async with self._pool.connection() as conn, pg_errors(f"query on {self.name!r} failed"):
            rows = await conn.fetch(self._sql, *args, timeout=self.timeout_s)
        return [self._item(index, dict(row)) for index, row in enumerate(rows[:limit])]

    def _item(self, index: int, row: dict[str, Any]) -> ContextItem:
        if "content" not in row:
            raise ProviderError(f"query of {self.name!r} must return a `content` column")
        content = row.pop("content")
        row_id = row.pop("id", index)
        score = row.pop("score", None)
        return ContextItem(
            provider=self.name,
            id=str(row_id),
            content="" if content is None else str(content),
            score=None if score is None else float(score),
            metadata=jsonable(row),
        )

    async def _probe(self) -> str:
        async with self._pool.connection() as conn, pg_errors("health query failed"):
            await conn.fetchval("SELECT 1", timeout=self.timeout_s)
        # Where, without the user (health output is open to anyone who reaches /mcp/health).
        s = self._settings
        return f"database {s.database!r} at {s.host}:{s.port}"

    async def close(self) -> None:
        await self._pool.close()
