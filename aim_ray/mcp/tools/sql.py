"""The ``sql_query`` tool: one read-only statement against PostgreSQL, row-capped."""

from __future__ import annotations

import json
import re

import asyncpg

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_tools import SqlQueryToolConfig
from aim_ray.mcp.backends.postgres import PostgresPool, pg_errors
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.backends.values import jsonable
from aim_ray.mcp.protocol import ComponentHealth
from aim_ray.mcp.tools.base import HEALTH_TIMEOUT_S, SqlQueryArguments, Tool, ToolError, ToolOutput

_READ_ONLY_START = re.compile(r"^\(*\s*(select|with|values|table|show|explain)\b", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


class SqlQueryTool(Tool):
    """One statement in a READ ONLY transaction with ``SET LOCAL statement_timeout``.

    PostgreSQL itself refuses writes in the read-only transaction, and the statement is
    prepared (extended protocol), which cannot hold several statements. The keyword check
    on the first word only gives a clearer message early. Rows are fetched through a
    cursor, so no more than ``max_rows + 1`` ever leave the server.
    """

    arguments = SqlQueryArguments
    default_description = "Run one read-only SQL query on PostgreSQL and return the rows as JSON."

    def __init__(self, config: SqlQueryToolConfig, mcp: MCPConfig) -> None:
        super().__init__(config)
        self._settings = config.config
        connection = self._settings.connection or mcp.provider(self._settings.provider).config
        self._pool = PostgresPool(connection)

    async def run(self, args: SqlQueryArguments) -> ToolOutput:
        sql = _LEADING_COMMENTS.sub("", args.query, count=1)
        if not _READ_ONLY_START.match(sql):
            raise ToolError(
                "only read-only queries are allowed (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN)"
            )
        limit = self._settings.max_rows
        async with self._pool.connection() as conn:
            try:
                async with conn.transaction(readonly=True):
                    await conn.execute(
                        "SELECT set_config('statement_timeout', $1, true)",
                        str(self._settings.statement_timeout_ms),
                    )
                    statement = await conn.prepare(sql)
                    cursor = await statement.cursor()
                    rows = await cursor.fetch(limit + 1)
                    columns = [attribute.name for attribute in statement.get_attributes()]
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                raise ToolError(describe_error(error)) from None
        truncated = len(rows) > limit
        body = {
            "columns": columns,
            "rows": [jsonable(list(row.values())) for row in rows[:limit]],
            "row_count": min(len(rows), limit),
            "truncated": truncated,
        }
        return ToolOutput(text=json.dumps(body), structured=body)

    async def health(self) -> ComponentHealth:
        async with self._pool.connection() as conn, pg_errors("health query failed"):
            await conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT_S)
        return ComponentHealth(status="up", detail=self._pool.where)

    async def close(self) -> None:
        await self._pool.close()
