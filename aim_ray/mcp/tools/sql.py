"""The ``sql_query`` tool: one read-only statement against PostgreSQL, capped in rows,
bytes and cell size, on a role that cannot reach the server's files or other sessions."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_tools import SqlQueryToolConfig
from aim_ray.mcp.backends.postgres import (
    PostgresPool,
    pg_errors,
    quote_identifier,
    role_privileges,
)
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.backends.sql_guard import SqlRefused, check_read_only_sql
from aim_ray.mcp.backends.values import jsonable
from aim_ray.mcp.protocol import ComponentHealth
from aim_ray.mcp.tools.base import HEALTH_TIMEOUT_S, SqlQueryArguments, Tool, ToolError, ToolOutput

# Output types whose values can be any size; the server cuts them before they are sent.
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "json", "jsonb", "xml", "unknown"})
# Rows fetched per round trip: small, so the byte budget stops the fetch early.
_BATCH = 20


class SqlQueryTool(Tool):
    """One statement in a READ ONLY transaction with ``SET LOCAL statement_timeout``.

    The statement passes ``check_read_only_sql`` (PostgreSQL's parser) first. The role
    queries run as is checked on the first connection and on every health check; a
    privileged one keeps the tool down unless ``allow_privileged_role``. Rows come through
    a cursor in small batches, so fetching stops at ``max_rows`` or ``max_result_bytes``;
    text-like columns are cut to ``max_cell_bytes`` by the server (a query wrapped around
    the statement), so a huge cell never reaches this process whole.
    """

    arguments = SqlQueryArguments
    default_description = "Run one read-only SQL query on PostgreSQL and return the rows as JSON."

    def __init__(self, config: SqlQueryToolConfig, mcp: MCPConfig) -> None:
        super().__init__(config)
        self._settings = config.config
        connection = self._settings.connection or mcp.provider(self._settings.provider).config
        self._pool = PostgresPool(connection)
        self._role_checked = False
        self._refusal: str | None = None

    async def _check_role(self, conn: asyncpg.Connection) -> None:
        reason = await role_privileges(conn, self._settings.set_role)
        if reason is not None and not self._settings.allow_privileged_role:
            self._refusal = (
                f"{self.name} is disabled: {reason}; use a read-only role "
                "(or set allow_privileged_role: true)"
            )
        else:
            self._refusal = None
        self._role_checked = True

    async def run(self, args: SqlQueryArguments) -> ToolOutput:
        async with self._pool.connection() as conn:
            try:
                # A tool that is down refuses every call the same way, whatever the SQL.
                if not self._role_checked:
                    await self._check_role(conn)
                if self._refusal is not None:
                    raise ToolError(self._refusal)
                try:
                    statement = check_read_only_sql(args.query)
                except SqlRefused as error:
                    raise ToolError(str(error)) from None
                async with conn.transaction(readonly=True):
                    if self._settings.set_role is not None:
                        await conn.execute(
                            f"SET LOCAL ROLE {quote_identifier(self._settings.set_role)}"
                        )
                    await conn.execute(
                        "SELECT set_config('statement_timeout', $1, true)",
                        str(self._settings.statement_timeout_ms),
                    )
                    prepared = await conn.prepare(statement.text)
                    attributes = prepared.get_attributes()
                    capped = None if statement.explain else self._capped(statement.text, attributes)
                    if capped is not None:
                        prepared = await conn.prepare(capped)
                    body = await self._collect(await prepared.cursor(), attributes)
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                raise ToolError(describe_error(error)) from None
        text = json.dumps(body)
        return ToolOutput(text=text, structured=body)

    def _capped(self, sql: str, attributes: Any) -> str | None:
        """The statement wrapped so the server cuts text-like cells, or None if it has none."""
        if not any(a.type.name in _TEXT_TYPES | {"bytea"} for a in attributes):
            return None
        keep = self._settings.max_cell_bytes + 1
        items = []
        for index, attribute in enumerate(attributes):
            column = f"q.c{index}"
            if attribute.type.name == "bytea":
                items.append(f"substring({column} from 1 for {keep})")
            elif attribute.type.name in _TEXT_TYPES:
                items.append(f"left({column}::text, {keep})")
            else:
                items.append(column)
        aliases = ", ".join(f"c{index}" for index in range(len(attributes)))
        # Newlines, so a trailing line comment in the statement cannot swallow the wrapper.
        return f"SELECT {', '.join(items)} FROM (\n{sql}\n) AS q({aliases})"

    async def _collect(self, cursor: asyncpg.cursor.Cursor, attributes: Any) -> dict[str, Any]:
        limit = self._settings.max_rows
        budget = self._settings.max_result_bytes
        columns = [attribute.name for attribute in attributes]
        used = len(json.dumps(columns))
        rows: list[list[Any]] = []
        cells_cut = 0
        reason = None
        while reason is None:
            wanted = min(_BATCH, limit + 1 - len(rows))
            batch = await cursor.fetch(wanted)
            for record in batch:
                if len(rows) == limit:
                    reason = f"more than max_rows={limit} rows"
                    break
                row, cut = self._cap_cells(record)
                size = len(json.dumps(row)) + 2
                if used + size > budget:
                    reason = f"result larger than max_result_bytes={budget}"
                    break
                rows.append(row)
                used += size
                cells_cut += cut
            if reason is None and len(batch) < wanted:
                break
        body: dict[str, Any] = {
            "columns": columns,
            "rows": rows,
            "row_count": len(rows),
            "truncated": reason is not None or cells_cut > 0,
        }
        notes = [reason] if reason else []
        if cells_cut:
            cap = self._settings.max_cell_bytes
            notes.append(f"{cells_cut} cell(s) cut to max_cell_bytes={cap}")
        if notes:
            body["notice"] = "truncated: " + "; ".join(notes)
        return body

    def _cap_cells(self, record: asyncpg.Record) -> tuple[list[Any], int]:
        cap = self._settings.max_cell_bytes
        row, cut = [], 0
        for value in jsonable(list(record.values())):
            if isinstance(value, str) and len(value) > cap // 4:
                encoded = value.encode()
                if len(encoded) > cap:
                    value = encoded[:cap].decode(errors="ignore")
                    cut += 1
            elif not isinstance(value, str) and len(json.dumps(value)) > cap:
                value = None
                cut += 1
            row.append(value)
        return row, cut

    async def health(self) -> ComponentHealth:
        async with self._pool.connection() as conn, pg_errors("health query failed"):
            await conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT_S)
            await self._check_role(conn)
        if self._refusal is not None:
            return ComponentHealth(status="down", detail=self._refusal)
        return ComponentHealth(status="up", detail=self._pool.where)

    async def close(self) -> None:
        await self._pool.close()
