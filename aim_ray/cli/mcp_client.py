"""The CLI's MCP client: one Streamable HTTP session to any MCP server, and its failures.

Owns opening the session (headers, one overall timeout), paging through ``tools/list``, and
turning every way a session can fail (refused connection, HTTP status, timeout, MCP error)
into a one-line ``AimRayError``. It is the only CLI module that touches the MCP SDK's
session, so it can be swapped for another client without changing the commands. The SDK and
``httpx2`` are imported when a session opens.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

from aim_ray.errors import AimRayError


async def all_tools(client: Any, max_pages: int = 100) -> list[Any]:
    """Every tool the server lists, page by page (at most ``max_pages`` pages)."""
    tools, cursor = [], None
    for _ in range(max_pages):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def run_client(url: str, headers: dict[str, str], timeout: float, work: Any) -> Any:
    """Open an MCP session over Streamable HTTP, run ``await work(client)``, close it; any
    failure becomes a one-line ``AimRayError``."""
    if not re.match(r"https?://[^\s/?#]+", url):
        raise AimRayError(f"{url!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/mcp")
    return asyncio.run(_client_session(url, headers, timeout, work))


async def _client_session(url: str, headers: dict[str, str], timeout: float, work: Any) -> Any:
    import httpx2
    from mcp import Client, MCPError
    from mcp.client.streamable_http import streamable_http_client

    statuses: list[str] = []

    async def record(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            statuses.append(f"HTTP {response.status_code} {response.reason_phrase}".strip())

    try:
        async with (
            asyncio.timeout(timeout),
            httpx2.AsyncClient(
                headers=headers, timeout=timeout, event_hooks={"response": [record]}
            ) as http,
            Client(
                streamable_http_client(url, http_client=http), read_timeout_seconds=timeout
            ) as client,
        ):
            return await work(client)
    except Exception as error:  # every failure becomes one line, never a traceback
        root = _root_cause(error)
        if isinstance(root, AimRayError):
            raise root from None
        if isinstance(root, TimeoutError) or (
            isinstance(root, MCPError) and "timed out" in root.message
        ):
            raise AimRayError(f"{url}: no answer within {timeout:g}s (--timeout)") from None
        if statuses:
            hint = " (is this the MCP endpoint, e.g. .../mcp?)" if "404" in statuses[-1] else ""
            raise AimRayError(f"{url} answered {statuses[-1]}{hint}") from None
        if isinstance(root, MCPError):
            raise AimRayError(f"{url}: MCP error {root.code}: {root.message}") from None
        if isinstance(root, httpx2.TransportError):
            raise AimRayError(f"cannot connect to {url}: {_transport_reason(root)}") from None
        raise AimRayError(f"{url}: {type(root).__name__}: {_first_line(root)}") from None


def _root_cause(error: BaseException) -> BaseException:
    # The SDK runs inside anyio task groups, which wrap failures in ExceptionGroups.
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _transport_reason(error: BaseException) -> str:
    """The OS-level reason (e.g. 'Connection refused') under httpx's summary, if any."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
            return os.strerror(cause.errno)  # asyncio's own text names the address again
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return _first_line(error) or type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
