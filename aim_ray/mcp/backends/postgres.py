"""PostgreSQL access shared by the ``postgresql`` provider and the ``sql_query`` tool.

``PostgresPool`` is a lazily created asyncpg pool whose password is resolved from a named
secret at connect time; ``pg_errors`` turns driver and network failures into a
``DatabaseError`` with a secret-free message; ``quote_identifier`` quotes a configured
(already pattern-checked) table, column or role name; ``role_privileges`` says whether a
role can reach the server's files or other sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from aim_ray.config.mcp_providers import PostgresConnection
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.secrets import describe_error, resolve_secret


class DatabaseError(AimRayError):
    """The database could not be reached or did not answer; the message is safe to show."""


class PostgresPool:
    """A lazily created asyncpg pool; creation is retried on the next use after a failure."""

    def __init__(self, connection: PostgresConnection) -> None:
        self._connection = connection
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        c = self._connection
        # No user: this text reaches errors and /mcp/health.
        return f"postgresql://{c.host}:{c.port}/{c.database}"

    async def get(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                c = self._connection
                password = None
                if c.credentials is not None:
                    password = resolve_secret(
                        c.credentials.secret_name, c.credentials.key
                    ).get_secret_value()
                async with pg_errors(f"cannot connect to {self.where}"):
                    self._pool = await asyncpg.create_pool(
                        host=c.host,
                        port=c.port,
                        user=c.user,
                        database=c.database,
                        password=password,
                        ssl=c.ssl,
                        min_size=c.pool_min_size,
                        max_size=c.pool_max_size,
                        timeout=c.connect_timeout_s,
                    )
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        pool = await self.get()
        async with pg_errors(f"cannot connect to {self.where}"):
            connection = await pool.acquire(timeout=self._connection.connect_timeout_s)
        try:
            yield connection
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@asynccontextmanager
async def pg_errors(what: str) -> AsyncIterator[None]:
    """Turn driver and network failures into a ``DatabaseError`` with a clean message."""
    try:
        yield
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError) as error:
        raise DatabaseError(f"{what}: {describe_error(error)}") from None
    except TimeoutError:
        raise DatabaseError(f"{what}: timed out") from None


def quote_identifier(name: str) -> str:
    # Names are checked against IDENTIFIER_PATTERN in the config, so quoting is all we need.
    return ".".join(f'"{part}"' for part in name.split("."))


# Predefined roles that reach the server's files, programs or other sessions.
PRIVILEGED_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
)
_PRIVILEGES_QUERY = """
SELECT r.rolname, r.rolsuper,
       ARRAY(SELECT g FROM unnest($1::text[]) AS g
             WHERE to_regrole(g) IS NOT NULL AND pg_has_role(current_user, g, 'MEMBER'))
FROM pg_roles AS r WHERE r.rolname = current_user
"""


async def role_privileges(conn: asyncpg.Connection, set_role: str | None = None) -> str | None:
    """Why the role queries run as (``set_role``, else the login role) is privileged, or None.

    A superuser, or a member of a role in ``PRIVILEGED_ROLES``, reads and writes server files
    or signals other backends even inside a READ ONLY transaction.
    """
    async with conn.transaction(readonly=True):
        if set_role is not None:
            await conn.execute(f"SET LOCAL ROLE {quote_identifier(set_role)}")
        name, superuser, memberships = await conn.fetchrow(_PRIVILEGES_QUERY, PRIVILEGED_ROLES)
    if superuser:
        return f"role {name!r} is a superuser"
    if memberships:
        return f"role {name!r} is a member of {', '.join(memberships)}"
    return None
