"""The contract between the gateway and the MCP services: what crosses a deployment handle.

The gateway (its chat loop and its ``/mcp`` server) calls the Serve ``ContextService`` and
``ToolService`` deployments through ``DeploymentHandle``s. Everything passed or returned
across that hop is a type in this module, imported on both sides, as Ray Serve LLM keeps its
wire types in ``core/protocol.py`` and the MCP SDK in ``mcp_types``. ``ContextAPI`` and
``ToolAPI`` spell out each deployment's remote methods.

Also here, because every side reports with them: ``overall_status`` (the one
healthy/degraded/unhealthy roll-up) and ``elapsed_ms`` (how ``latency_ms`` is measured).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

OverallStatus = Literal["healthy", "degraded", "unhealthy"]
# What a rolled-up status says of its parts, so rolled-up statuses can be rolled up again
# (the gateway's one status over both services): degraded means some up, some down.
STATUS_PARTS: dict[OverallStatus, tuple[bool, ...]] = {
    "healthy": (True,),
    "degraded": (True, False),
    "unhealthy": (False,),
}


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading), to the microsecond."""
    return round((time.perf_counter() - start) * 1000, 3)


def overall_status(up: Iterable[bool]) -> OverallStatus:
    """Healthy when all parts are up, unhealthy when none is (or there are none up of
    several), degraded in between: one part down never takes the others with it."""
    states = list(up)
    if all(states):
        return "healthy"
    return "degraded" if any(states) else "unhealthy"


# -- context --------------------------------------------------------------------------------


class ContextItem(BaseModel):
    provider: str
    id: str
    content: str
    score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ProviderHealth(BaseModel):
    status: Literal["up", "down"]
    detail: str = ""
    latency_ms: float = 0.0


class ProviderOutcome(BaseModel):
    provider: str
    status: Literal["ok", "error", "timeout"]
    items: int = 0
    cached: bool = False
    latency_ms: float = 0.0
    error: str | None = None


class ContextResult(BaseModel):
    query: str
    items: list[ContextItem]
    providers: list[ProviderOutcome]
    cache_hits: int = 0
    token_estimate: int = 0
    truncated: bool = False
    latency_ms: float = 0.0


class ContextHealth(BaseModel):
    """``ContextService.health``: every enabled provider's probe, rolled up by
    ``overall_status``."""

    status: OverallStatus
    providers: dict[str, ProviderHealth]


class ResourceSpec(BaseModel):
    uri: str
    name: str
    description: str
    mime_type: str = "application/json"


class ResourceContent(BaseModel):
    uri: str
    mime_type: str = "application/json"
    text: str


# -- tools ----------------------------------------------------------------------------------


class ToolSpec(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]
    source: str = "local"


class ToolResult(BaseModel):
    tool: str
    status: Literal["ok", "error", "rate_limited", "timeout"]
    content: str
    is_error: bool
    latency_ms: float
    structured: Any = None


class ComponentHealth(BaseModel):
    """One tool's or remote MCP server's state; ``tools`` (how many it lists) is set for
    remote servers that answered, and left out of the JSON everywhere else."""

    status: Literal["up", "down"]
    detail: str = ""
    tools: int | None = None


class ToolsHealth(BaseModel):
    """``ToolService.health``: each local tool and remote server, rolled up by
    ``overall_status``. Dump it with ``exclude_none=True`` for the ``/mcp/health`` shape."""

    status: OverallStatus
    tools: dict[str, ComponentHealth]
    remote_servers: dict[str, ComponentHealth]


# -- the deployments' remote methods ----------------------------------------------------------


class ContextAPI(Protocol):
    """``ContextService``'s methods, as called through its handle (``.remote``)."""

    async def provider_names(self) -> list[str]: ...

    async def retrieve(
        self,
        providers: list[str] | None = None,
        query: str = "",
        limit: int | None = None,
        *,
        fit: bool = True,
    ) -> ContextResult: ...

    async def list_resources(self) -> list[ResourceSpec]: ...

    async def list_resource_templates(self) -> list[ResourceSpec]: ...

    async def read_resource(self, uri: str) -> ResourceContent: ...

    async def health(self) -> ContextHealth: ...


class ToolAPI(Protocol):
    """The tools as the gateway calls them (``aim_ray.mcp.tools.client.ToolClient``), and
    ``ToolService``'s methods behind its handle (``.remote``)."""

    async def list_tools(self) -> list[ToolSpec]: ...

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult: ...

    async def health(self) -> ToolsHealth: ...
