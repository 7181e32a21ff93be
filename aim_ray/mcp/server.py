"""The ``/mcp`` endpoint: aim-ray's tools and context served to any MCP client.

Owns the protocol side only: a low-level MCP SDK ``Server`` whose handlers forward to the
tool and context deployments through their handles, and the Streamable HTTP transport
the gateway mounts. The transport is stateless (no session id, no handshake state in a
replica), so any gateway replica can answer any request: stateful sessions broke with
two replicas ("Session not found" on 8 of 20 calls). What the handles return is typed by
``aim_ray.mcp.protocol`` (``ToolAPI``, ``ContextAPI``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from ray.serve.handle import DeploymentHandle
from starlette.routing import Route

import aim_ray
from aim_ray.config.gateway import MCPTransportSettings
from aim_ray.errors import AimRayError
from aim_ray.mcp.protocol import ResourceContent, ResourceSpec, ToolResult, ToolSpec

Context = ServerRequestContext[Any]
Page = types.PaginatedRequestParams | None

MCP_PATH = "/mcp"


def build_mcp_server(tools: DeploymentHandle, context: DeploymentHandle) -> Server:
    """An MCP server whose tools and resources live in the tool and context deployments."""

    async def list_tools(ctx: Context, params: Page) -> types.ListToolsResult:
        specs: list[ToolSpec] = await tools.list_tools.remote()
        return types.ListToolsResult(
            tools=[
                types.Tool(name=s.name, description=s.description, input_schema=s.input_schema)
                for s in specs
            ]
        )

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        result: ToolResult = await tools.call_tool.remote(params.name, params.arguments or {})
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.content)],
            is_error=result.is_error,
        )

    async def list_resources(ctx: Context, params: Page) -> types.ListResourcesResult:
        specs: list[ResourceSpec] = await context.list_resources.remote()
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=s.uri, name=s.name, description=s.description, mime_type=s.mime_type
                )
                for s in specs
            ]
        )

    async def list_templates(ctx: Context, params: Page) -> types.ListResourceTemplatesResult:
        specs: list[ResourceSpec] = await context.list_resource_templates.remote()
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=s.uri,
                    name=s.name,
                    description=s.description,
                    mime_type=s.mime_type,
                )
                for s in specs
            ]
        )

    async def read_resource(
        ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        try:
            content: ResourceContent = await context.read_resource.remote(str(params.uri))
        except AimRayError as exc:
            # The handle re-raises the deployment's error; the SDK turns it into a
            # JSON-RPC error carrying this message.
            raise ValueError(str(exc)) from None
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=content.uri, mime_type=content.mime_type, text=content.text
                )
            ]
        )

    return Server(
        "aim-ray",
        version=aim_ray.__version__,
        instructions="Tools and context providers of an aim-ray deployment.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


class MCPEndpoint:
    """The Streamable HTTP transport for one MCP server, as a route plus a lifespan."""

    def __init__(self, server: Server, settings: MCPTransportSettings) -> None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=settings.dns_rebinding_protection,
            allowed_hosts=settings.allowed_hosts,
            allowed_origins=settings.allowed_origins,
        )
        self._manager = StreamableHTTPSessionManager(
            app=server,
            json_response=True,
            stateless=True,
            security_settings=security,
            max_request_body_size=settings.max_request_body_bytes,
        )

    def route(self) -> Route:
        # A Route, not a Mount: a Mount would redirect /mcp to /mcp/.
        return Route(MCP_PATH, endpoint=StreamableHTTPASGIApp(self._manager))

    def wrap_lifespan(
        self, lifespan: Callable[[Any], AbstractAsyncContextManager[Any]]
    ) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
        """The app's lifespan plus the session manager's task group, which requests need."""
        manager = self._manager

        @asynccontextmanager
        async def combined(app: Any) -> AsyncIterator[Any]:
            async with lifespan(app) as state, manager.run():
                yield state

        return combined
