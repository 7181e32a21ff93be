"""A LOGIN role with USAGE and SELECT on the test schema only: ``sql_query`` on a
restricted role. The test server is trust-auth, so the role needs no password."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from mcp_fixtures import PgServer, postgres  # noqa: F401


def reader_name(pg: PgServer) -> str:
    return f"{pg.schema}_reader"


async def _superuser(pg: PgServer) -> bool:
    connection = await pg.connect()
    try:
        return await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = user")
    finally:
        await connection.close()


async def _create(pg: PgServer) -> None:
    name, schema = reader_name(pg), pg.schema
    connection = await pg.connect()
    try:
        if await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
            return
        await connection.execute(f"CREATE ROLE {name} LOGIN")
        await connection.execute(f"GRANT USAGE ON SCHEMA {schema} TO {name}")
        await connection.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {name}")
    finally:
        await connection.close()


async def _drop(pg: PgServer) -> None:
    name = reader_name(pg)
    connection = await pg.connect()
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
        )
        await connection.execute(f"DROP OWNED BY {name}")
        await connection.execute(f"DROP ROLE {name}")
    finally:
        await connection.close()


async def require_superuser(pg: PgServer) -> PgServer:
    if not await _superuser(pg):
        pytest.skip("the test PostgreSQL login is not a superuser")
    return pg


@pytest.fixture(scope="module")
def reader_role(postgres: PgServer) -> Iterator[str]:  # noqa: F811
    """The restricted role's name, created for the module and dropped after it."""
    asyncio.run(require_superuser(postgres))
    asyncio.run(_create(postgres))
    yield reader_name(postgres)
    asyncio.run(_drop(postgres))
