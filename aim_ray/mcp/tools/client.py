"""How the gateway calls tools: ``ToolClient``, the ``ToolAPI`` of ``/mcp`` and the chat loop.

Most tools run in the ``ToolService`` deployment, which scales on its own and holds their
backends (database pools, Chroma, HTTP clients, secrets). A call there is a hop between
processes, which on a small box costs more than a light tool's work: a ``calculator`` call
takes microseconds and the hop about two milliseconds. So tools that are pure, bounded
computation (``IN_GATEWAY`` kinds: no I/O, no secrets) also run inside each gateway
replica, with the same validation, timeout, rate limit (kept per replica, as the
``ToolService``'s are) and metrics. The listing and every other tool go to the deployment.
Set ``mcp.deployments.light_tools_in_gateway: false`` to send every call there.
"""

from __future__ import annotations

from typing import Any

from ray.serve.handle import DeploymentHandle

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_tools import CalculatorToolConfig
from aim_ray.mcp.protocol import ToolAPI, ToolResult, ToolsHealth, ToolSpec
from aim_ray.mcp.tools.service import ToolService

IN_GATEWAY = (CalculatorToolConfig,)


class ToolClient:
    """``ToolAPI`` over the ``ToolService`` handle, with the light tools run in process."""

    def __init__(self, service: DeploymentHandle[ToolAPI], config: MCPConfig) -> None:
        self._service = service
        light = [tool for tool in config.tools if tool.enabled and isinstance(tool, IN_GATEWAY)]
        if not config.deployments.light_tools_in_gateway:
            light = []
        self._in_process = ToolService(config.model_copy(update={"tools": light}))
        self._in_process_names = frozenset(tool.name for tool in light)

    async def list_tools(self) -> list[ToolSpec]:
        return await self._service.list_tools.remote()

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        if name in self._in_process_names:
            return await self._in_process.call_tool(name, arguments)
        return await self._service.call_tool.remote(name, arguments)

    async def health(self) -> ToolsHealth:
        return await self._service.health.remote()
