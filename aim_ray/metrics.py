"""Prometheus metrics of the MCP layer and the gateway, through ``ray.serve.metrics``.

Ray exports them on each node's metrics endpoint with a ``ray_`` prefix (counters also
get ``_total``), tagged with the deployment, replica and application that recorded them;
``kuberay/grafana/aim-ray-dashboard.json`` charts them beside Serve's and vLLM's own.

The instruments are made on first use, inside the replica that records them, and not at
all outside Ray (the unit tests run the services as plain classes), so importing this
module costs nothing.
"""

from __future__ import annotations

import time
from functools import cache

import ray
from ray.serve import metrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds; from a cached context lookup (~1 ms) to a slow provider or tool (30 s).
LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
# Paths with a fixed, small set of values; anything else is counted as "other" so a
# scanner cannot grow the label set without bound.
GATEWAY_ROUTES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/models",
    "/health",
    "/mcp",
    "/mcp/health",
)


class _Instruments:
    """Every instrument, made together the first time a replica records anything."""

    def __init__(self) -> None:
        self.context_duration = metrics.Histogram(
            "mcp_context_retrieval_duration_seconds",
            description="Time to get context items from one provider, cache hits included.",
            boundaries=LATENCY_BUCKETS,
            tag_keys=("provider",),
        )
        self.context_requests = metrics.Counter(
            "mcp_context_requests",
            description="Context lookups per provider, by outcome (ok, error, timeout).",
            tag_keys=("provider", "status"),
        )
        self.context_cache_hits = metrics.Counter(
            "mcp_context_cache_hits",
            description="Context lookups answered from the (provider, query) cache.",
            tag_keys=("provider",),
        )
        self.tool_executions = metrics.Counter(
            "mcp_tool_execution",
            description="Tool calls, by outcome (ok, error, timeout, rate_limited).",
            tag_keys=("tool", "status"),
        )
        self.tool_duration = metrics.Histogram(
            "mcp_tool_execution_duration_seconds",
            description="Time to run a tool call, failures included.",
            boundaries=LATENCY_BUCKETS,
            tag_keys=("tool",),
        )
        self.gateway_requests = metrics.Counter(
            "aim_ray_gateway_requests",
            description="Requests the gateway answered, by route, method and HTTP status.",
            tag_keys=("route", "method", "status"),
        )
        self.gateway_duration = metrics.Histogram(
            "aim_ray_gateway_request_duration_seconds",
            description="Time from request to the last byte of the response, streams included.",
            boundaries=LATENCY_BUCKETS,
            tag_keys=("route", "method", "status"),
        )


@cache
def _instruments() -> _Instruments:
    return _Instruments()


def record_context_lookup(provider: str, status: str, seconds: float, cached: bool) -> None:
    if not ray.is_initialized():
        return
    instruments = _instruments()
    instruments.context_requests.inc(tags={"provider": provider, "status": status})
    instruments.context_duration.observe(seconds, tags={"provider": provider})
    if cached:
        instruments.context_cache_hits.inc(tags={"provider": provider})


def record_tool_call(tool: str, status: str, seconds: float) -> None:
    if not ray.is_initialized():
        return
    instruments = _instruments()
    instruments.tool_executions.inc(tags={"tool": tool, "status": status})
    instruments.tool_duration.observe(seconds, tags={"tool": tool})


def gateway_route(path: str) -> str:
    return path if path in GATEWAY_ROUTES else "other"


class GatewayMetricsMiddleware:
    """Counts and times every gateway request by route, method and status.

    Plain ASGI rather than ``BaseHTTPMiddleware`` so streamed responses pass through
    untouched and are timed to their last chunk.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            tags = {
                "route": gateway_route(scope["path"].rstrip("/") or "/"),
                "method": scope["method"],
                "status": str(status),
            }
            instruments = _instruments()
            instruments.gateway_requests.inc(tags=tags)
            instruments.gateway_duration.observe(time.perf_counter() - start, tags=tags)
