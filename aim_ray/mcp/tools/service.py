"""``ToolService``, the plain async class the Serve ``Tools`` deployment wraps.

Every call comes back as a ``ToolResult`` (``ok``/``error``/``rate_limited``/``timeout``):
arguments are validated against the tool's schema, the tool runs under its ``timeout_s``,
and errors become a short message with known secret values redacted, never an exception or
a trace.

Rate limits are a sliding window of ``requests`` per ``window`` seconds
(``SlidingWindowLimiter``), kept in memory **per ToolService replica**: with N replicas the
cluster admits up to N x ``requests`` per window. Calls with malformed arguments still
count, so a model looping on a bad call is throttled too. A ``remote_mcp`` entry has one
limit shared by all of its tools.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_tools import REMOTE_SEPARATOR, RemoteMCPToolConfig
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.secrets import describe_error, redact
from aim_ray.mcp.protocol import (
    ComponentHealth,
    ToolResult,
    ToolsHealth,
    ToolSpec,
    elapsed_ms,
    overall_status,
)
from aim_ray.mcp.tools.base import HEALTH_TIMEOUT_S, ToolError, ToolOutput
from aim_ray.mcp.tools.registry import build_tool
from aim_ray.mcp.tools.remote import RemoteMCPServer
from aim_ray.metrics import record_tool_call

logger = logging.getLogger(__name__)

Run = Callable[[dict[str, Any]], Awaitable[ToolOutput]]


class SlidingWindowLimiter:
    """At most ``requests`` acquisitions in any ``window_s`` seconds (this process only)."""

    def __init__(self, requests: int, window_s: float) -> None:
        self._requests = requests
        self._window_s = window_s
        self._times: deque[float] = deque()

    def try_acquire(self) -> float | None:
        """None when admitted, else the seconds until a slot frees up."""
        now = time.monotonic()
        while self._times and self._times[0] <= now - self._window_s:
            self._times.popleft()
        if len(self._times) >= self._requests:
            return self._times[0] + self._window_s - now
        self._times.append(now)
        return None


class ToolService:
    """Tool registry and execution; the Serve ``Tools`` deployment."""

    def __init__(self, config: MCPConfig) -> None:
        self._config = config
        enabled = [t for t in config.tools if t.enabled]
        self._remotes = {
            t.prefix: RemoteMCPServer(t) for t in enabled if isinstance(t, RemoteMCPToolConfig)
        }
        self._tools = {
            t.name: build_tool(t, config) for t in enabled if not isinstance(t, RemoteMCPToolConfig)
        }
        self._limiters = {
            t.name: SlidingWindowLimiter(t.rate_limit.requests, t.rate_limit.window)
            for t in enabled
            if t.rate_limit is not None
        }

    async def list_tools(self) -> list[ToolSpec]:
        """Local tools, then each reachable remote server's tools (an unreachable server's
        tools are left out; ``health`` says why)."""
        specs = [tool.spec() for tool in self._tools.values() if tool.available]
        for remote in self._remotes.values():
            try:
                specs += await remote.specs()
            except ToolError as error:
                logger.warning("remote MCP server %s left out: %s", remote.name, error)
        return specs

    def _route(self, name: str) -> tuple[str, float, Run]:
        if name in self._tools:
            tool = self._tools[name]
            return tool.name, tool.timeout_s, tool.call
        prefix, separator, remote_name = name.partition(REMOTE_SEPARATOR)
        remote = self._remotes.get(prefix) if separator else None
        if remote is None or not remote_name:
            raise ToolError(f"unknown tool {name!r}")
        timeout_s = remote.config.timeout_s

        async def call(arguments: dict[str, Any]) -> ToolOutput:
            return await remote.call(remote_name, arguments, timeout_s)

        return remote.name, timeout_s, call

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """Run a tool; every outcome, including failures, is a ``ToolResult``."""
        start = time.perf_counter()
        # Unknown names share one metrics label, so callers cannot grow the label set.
        label = "unknown"

        def result(status: str, text: str, structured: Any = None) -> ToolResult:
            record_tool_call(label, status, time.perf_counter() - start)
            return ToolResult(
                tool=name,
                status=status,
                content=redact(text),
                is_error=status != "ok",
                latency_ms=elapsed_ms(start),
                structured=structured,
            )

        try:
            config_name, timeout_s, run = self._route(name)
        except ToolError as error:
            return result("error", str(error))
        label = name
        limiter = self._limiters.get(config_name)
        if limiter is not None and (retry_after := limiter.try_acquire()) is not None:
            return result("rate_limited", f"rate limit exceeded; retry in {retry_after:.1f}s")
        if not isinstance(arguments, dict | None):
            return result("error", "arguments must be a JSON object")
        try:
            async with asyncio.timeout(timeout_s):
                output = await run(arguments or {})
        except TimeoutError:
            return result("timeout", f"{name} did not finish within {timeout_s:g}s")
        except AimRayError as error:
            return result("error", str(error))
        except Exception as error:  # a bug or an unexpected library error: report, don't raise
            logger.warning("tool %s failed unexpectedly: %s", name, describe_error(error))
            return result("error", f"{name} failed: {describe_error(error)}")
        return result("error" if output.is_error else "ok", output.text, output.structured)

    async def _health_of(self, check: Callable[[], Awaitable[ComponentHealth]]) -> ComponentHealth:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                return await check()
        except TimeoutError:
            return ComponentHealth(status="down", detail="timed out")
        except Exception as error:  # health reports any failure as "down", with its reason
            return ComponentHealth(status="down", detail=describe_error(error))

    async def health(self) -> ToolsHealth:
        """Every local tool's and remote server's check, rolled up: degraded while some are
        down."""
        tool_names = list(self._tools)
        remote_names = list(self._remotes)
        checks = await asyncio.gather(
            *(self._health_of(self._tools[n].health) for n in tool_names),
            *(self._health_of(self._remotes[p].health) for p in remote_names),
        )
        tools = dict(zip(tool_names, checks[: len(tool_names)], strict=True))
        remotes = {
            self._remotes[p].name: state
            for p, state in zip(remote_names, checks[len(tool_names) :], strict=True)
        }
        return ToolsHealth(
            status=overall_status(state.status == "up" for state in checks),
            tools=tools,
            remote_servers=remotes,
        )

    async def close(self) -> None:
        for tool in self._tools.values():
            await tool.close()
        for remote in self._remotes.values():
            await remote.close()
