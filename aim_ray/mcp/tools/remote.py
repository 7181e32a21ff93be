"""Remote MCP servers over Streamable HTTP, with the MCP SDK's client.

``RemoteMCPServer`` is a ``remote_mcp`` entry of the ``ToolService``: its tools are listed
and called as ``<prefix>__<tool>``, the URL passes netguard's address policy, one session
is held open by a background task (so calls reuse it) and reopened after a failure.

``connect`` is the same client on its own, for a one-off session (``aim-ray mcp
list-tools``/``call``): list every tool with bounded paging, call one, and every failure
raised as one readable ``MCPClientError`` naming the transport's root cause.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx2
import mcp_types
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from aim_ray.config.mcp_tools import REMOTE_SEPARATOR, RemoteMCPToolConfig
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.netguard import URLPolicy, check_address, check_url, system_resolver
from aim_ray.mcp.backends.secrets import describe_error, redact, resolve_secret
from aim_ray.mcp.protocol import ComponentHealth, ToolSpec
from aim_ray.mcp.tools.base import HEALTH_TIMEOUT_S, ToolError, ToolOutput

T = TypeVar("T")

_REMOTE_LIST_PAGES = 20
_RETRY_AFTER_FAILURE_S = 5.0


def root_cause(error: BaseException) -> BaseException:
    """The first real failure inside ``error``: the SDK runs in anyio task groups, which
    wrap failures in ExceptionGroups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def list_all_tools(client: Client, max_pages: int) -> list[mcp_types.Tool]:
    """Every tool ``client``'s server lists, following ``next_cursor`` for at most
    ``max_pages`` pages, so a server that pages forever cannot hold the caller."""
    tools: list[mcp_types.Tool] = []
    cursor = None
    for _ in range(max_pages):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


class RemoteMCPServer:
    """A session with one remote MCP server, owned by a background task.

    The SDK client is an async context manager whose task group must be entered and left by
    the same task, while calls come from many request tasks; so one task holds the session
    open until ``close`` (or a failure), and calls use it from their own tasks.
    """

    def __init__(self, config: RemoteMCPToolConfig) -> None:
        self.config = config
        self.name = config.name
        self.prefix = config.prefix
        self._settings = config.config
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tools: list[mcp_types.Tool] = []
        self._tools_expire = 0.0
        self._down_until = 0.0
        self._failure = ""
        self.last_error: str | None = None

    async def _check_url(self) -> None:
        policy = URLPolicy(
            allow_private=self._settings.allow_private,
            allow_networks=tuple(self._settings.allow_networks),
        )
        url = check_url(self._settings.url, policy)
        try:
            addresses = await system_resolver(url.host, url.port or 0)
        except OSError as error:
            raise ToolError(f"cannot resolve {url.host!r}: {error}") from None
        for address in addresses:
            check_address(address, policy)

    def _headers(self) -> dict[str, str]:
        headers = dict(self._settings.headers)
        for header, ref in self._settings.secret_headers.items():
            headers[header] = (
                ref.prefix + resolve_secret(ref.secret_name, ref.key).get_secret_value()
            )
        return headers

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        timeout = httpx2.Timeout(self._settings.connect_timeout_s, read=300.0)
        try:
            async with (
                httpx2.AsyncClient(headers=self._headers(), timeout=timeout) as http,
                Client(streamable_http_client(self._settings.url, http_client=http)) as client,
            ):
                ready.set_result(client)
                await self._stop.wait()
        except Exception as error:  # reported to the waiting caller, or on the next call
            if not ready.done():
                ready.set_exception(error)
            else:
                self.last_error = describe_error(root_cause(error))

    async def _session(self) -> Client:
        async with self._lock:
            if self._client is not None and self._task is not None and not self._task.done():
                return self._client
            await self._shutdown(graceful=False)
            await self._check_url()
            self._stop = asyncio.Event()
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._hold(ready), name=f"mcp-remote-{self.name}")
            try:
                async with asyncio.timeout(self._settings.connect_timeout_s):
                    self._client = await ready
            except Exception as error:  # any connect failure becomes a tool error
                await self._shutdown(graceful=False)
                self.last_error = describe_error(root_cause(error))
                raise ToolError(
                    f"cannot connect to remote MCP server {self.name!r}: {self.last_error}"
                ) from None
            self.last_error = None
            return self._client

    async def _shutdown(self, graceful: bool) -> None:
        """End the owner task: let it leave the session cleanly, or cancel it."""
        task, self._task, self._client = self._task, None, None
        if task is None:
            return
        self._stop.set()
        if not graceful:
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    async def _guard(self, what: str, coro_fn: Callable[[Client], Awaitable[T]]) -> T:
        client = await self._session()
        try:
            return await coro_fn(client)
        except MCPError as error:
            if error.code != mcp_types.CONNECTION_CLOSED:
                raise ToolError(f"{what}: {describe_error(error)}") from None
            await self._reset(client, error)
            raise ToolError(f"{what}: {self.last_error}") from None
        except Exception as error:  # the transport broke: reconnect on the next call
            await self._reset(client, error)
            raise ToolError(f"{what}: {self.last_error}") from None

    async def _reset(self, client: Client, error: BaseException) -> None:
        self.last_error = describe_error(root_cause(error))
        async with self._lock:
            # Another call may already have replaced the broken session.
            if self._client is client:
                await self._shutdown(graceful=False)

    async def tools(self) -> list[mcp_types.Tool]:
        """The remote tool list, cached for ``list_ttl_s``. After a failure the server is
        not retried for a few seconds, so a dead server cannot slow every listing down."""
        now = time.monotonic()
        if now < self._tools_expire:
            return self._tools
        if now < self._down_until:
            raise ToolError(self._failure)

        async def list_all(client: Client) -> list[mcp_types.Tool]:
            return await list_all_tools(client, _REMOTE_LIST_PAGES)

        try:
            tools = await self._guard(f"listing tools of {self.name!r} failed", list_all)
        except ToolError as error:
            self._failure = str(error)
            self._down_until = time.monotonic() + min(
                _RETRY_AFTER_FAILURE_S, self._settings.list_ttl_s
            )
            raise
        include = self._settings.include
        self._tools = [t for t in tools if include is None or t.name in include]
        self._tools_expire = time.monotonic() + self._settings.list_ttl_s
        return self._tools

    async def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name=f"{self.prefix}{REMOTE_SEPARATOR}{tool.name}",
                description=tool.description or tool.title or tool.name,
                input_schema=tool.input_schema,
                source=f"remote_mcp:{self.name}",
            )
            for tool in await self.tools()
        ]

    async def call(self, tool_name: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        if tool_name not in {tool.name for tool in await self.tools()}:
            raise ToolError(f"unknown tool {self.prefix}{REMOTE_SEPARATOR}{tool_name}")

        async def call_tool(client: Client) -> mcp_types.CallToolResult:
            return await client.call_tool(tool_name, arguments, read_timeout_seconds=timeout_s)

        result = await self._guard(f"remote call to {self.name!r} failed", call_tool)
        text = "\n".join(
            block.text if isinstance(block, mcp_types.TextContent) else f"[{block.type} content]"
            for block in result.content
        )
        return ToolOutput(text=text, structured=result.structured_content, is_error=result.is_error)

    async def health(self) -> ComponentHealth:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                tools = await self.tools()
        except (ToolError, TimeoutError) as error:
            return ComponentHealth(status="down", detail=redact(str(error) or "timed out"), tools=0)
        return ComponentHealth(status="up", detail=f"{len(tools)} tools", tools=len(tools))

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown(graceful=True)


# -- a one-off session ----------------------------------------------------------------------


class MCPClientError(AimRayError):
    """A one-off MCP session failed; the message names the URL and the root cause."""


class MCPTimeoutError(MCPClientError):
    """The server did not answer within the session's timeout."""


class MCPSession:
    """An open session to one MCP server, as ``connect`` yields it."""

    def __init__(self, client: Client, url: str, timeout_s: float, max_pages: int) -> None:
        self.url = url
        self._client = client
        self._timeout_s = timeout_s
        self._max_pages = max_pages

    async def list_tools(self) -> list[mcp_types.Tool]:
        """Every tool the server lists (at most ``max_pages`` pages)."""
        return await list_all_tools(self._client, self._max_pages)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> mcp_types.CallToolResult:
        """Call ``name`` after checking the server lists it; the tool's own failure comes
        back as a result with ``is_error`` set, not as an exception."""
        names = [tool.name for tool in await self.list_tools()]
        if name not in names:
            known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise MCPClientError(f"unknown tool {name!r} at {self.url} (it has: {known or 'none'})")
        return await self._client.call_tool(
            name, arguments or {}, read_timeout_seconds=self._timeout_s
        )


@asynccontextmanager
async def connect(
    url: str,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
    max_pages: int = 100,
) -> AsyncIterator[MCPSession]:
    """A Streamable HTTP session with the MCP server at ``url``, closed on leaving.

    ``timeout_s`` bounds the whole session, each HTTP request and each tool call. Any
    failure inside the block, the block's own included, leaves it as one readable
    ``MCPClientError`` (``MCPTimeoutError`` for the timeout); an ``AimRayError`` raised in
    the block passes through as it is. No address policy applies: the caller chose the URL.
    """
    if not re.match(r"https?://[^\s/?#]+", url):
        raise MCPClientError(f"{url!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/mcp")
    statuses: list[str] = []

    async def record(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            statuses.append(f"HTTP {response.status_code} {response.reason_phrase}".strip())

    try:
        async with (
            asyncio.timeout(timeout_s),
            httpx2.AsyncClient(
                headers=dict(headers or {}), timeout=timeout_s, event_hooks={"response": [record]}
            ) as http,
            Client(
                streamable_http_client(url, http_client=http), read_timeout_seconds=timeout_s
            ) as client,
        ):
            yield MCPSession(client, url, timeout_s, max_pages)
    except Exception as error:  # every failure becomes one line, never a traceback
        raise _client_error(url, timeout_s, statuses, root_cause(error)) from None


def _client_error(
    url: str, timeout_s: float, statuses: list[str], root: BaseException
) -> Exception:
    if isinstance(root, AimRayError):
        return root
    if isinstance(root, TimeoutError) or (
        isinstance(root, MCPError) and "timed out" in root.message
    ):
        return MCPTimeoutError(f"{url}: no answer within {timeout_s:g}s")
    if statuses:
        hint = " (is this the MCP endpoint, e.g. .../mcp?)" if "404" in statuses[-1] else ""
        return MCPClientError(f"{url} answered {statuses[-1]}{hint}")
    if isinstance(root, MCPError):
        return MCPClientError(f"{url}: MCP error {root.code}: {root.message}")
    if isinstance(root, httpx2.TransportError):
        return MCPClientError(f"cannot connect to {url}: {_transport_reason(root)}")
    return MCPClientError(f"{url}: {type(root).__name__}: {_first_line(root)}")


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
