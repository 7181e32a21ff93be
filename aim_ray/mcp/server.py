"""The ``/mcp`` endpoint: aim-ray's tools and context served to any MCP client.

Owns the protocol side only: a low-level MCP SDK ``Server`` whose handlers forward to the
tool and context deployments through their handles (prompts, plain templates from the
config, are filled in the gateway itself), and the Streamable HTTP transport
the gateway mounts. The transport is stateless (no session id, no handshake state in a
replica), so any gateway replica can answer any request: stateful sessions broke with
two replicas ("Session not found" on 8 of 20 calls). What the handles return is typed by
``aim_ray.mcp.protocol`` (``ToolAPI``, ``ContextAPI``).

Errors follow the MCP spec (2025-06-18) and never carry a traceback or a host path: an
unknown resource is -32002, an unknown tool -32602, a tool that fails (invalid arguments
included) a result with ``isError``, anything unexpected -32603 with a request id that the
server's log files the detail under. In front of the SDK's transport, ``_MCPGate`` answers
what a stateless server does not serve: a GET (no server-initiated stream: 405) and a
JSON-RPC batch (removed from MCP in 2025-06-18: -32600), and words malformed messages
itself instead of passing on a validation dump.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import (
    RequestBodyLimitMiddleware,
    TransportSecurityMiddleware,
    TransportSecuritySettings,
)
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import aim_ray
from aim_ray.config.gateway import MCPTransportSettings
from aim_ray.config.mcp_prompts import PromptArgumentsError, PromptConfig
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.protocol import ResourceContent, ResourceSpec, ToolAPI, ToolResult, ToolSpec

Context = ServerRequestContext[Any]
Page = types.PaginatedRequestParams | None
P = TypeVar("P")
R = TypeVar("R")

MCP_PATH = "/mcp"
# MCP's own code for a resource that does not exist (the spec's resources/read errors).
RESOURCE_NOT_FOUND = -32002

logger = logging.getLogger(__name__)


def _cause(error: BaseException) -> BaseException:
    """The deployment's own exception: a handle re-raises it inside a ``RayTaskError``
    whose text is a full remote traceback (pid, node address, file paths)."""
    if isinstance(error, RayTaskError) and error.cause is not None:
        return error.cause
    return error


def _guarded(
    method: str, handler: Callable[[Context, P], Awaitable[R]]
) -> Callable[[Context, P], Awaitable[R]]:
    """``handler`` with every unexpected failure turned into -32603 and a request id; the
    detail goes to the log under that id, never to the client."""

    @functools.wraps(handler)
    async def run(ctx: Context, params: P) -> R:
        try:
            return await handler(ctx, params)
        except MCPError:
            raise
        except Exception as error:  # the one place an unexpected failure is worded
            cause = _cause(error)
            request_id = uuid.uuid4().hex[:16]
            logger.error("MCP %s failed, request id %s", method, request_id, exc_info=cause)
            # An AimRayError's message is written to be shown; anything else is not.
            what = describe_error(cause) if isinstance(cause, AimRayError) else "internal error"
            raise MCPError(
                types.INTERNAL_ERROR,
                f"{what} (request id {request_id})",
                data={"request_id": request_id},
            ) from None

    return run


def build_mcp_server(
    tools: ToolAPI, context: DeploymentHandle, prompts: list[PromptConfig] | None = None
) -> Server:
    """An MCP server whose tools and resources live in the tool and context deployments;
    the config's prompts are filled in here, in the gateway."""
    by_name = {prompt.name: prompt for prompt in prompts or []}

    async def list_tools(ctx: Context, params: Page) -> types.ListToolsResult:
        specs: list[ToolSpec] = await tools.list_tools()
        return types.ListToolsResult(
            tools=[
                types.Tool(name=s.name, description=s.description, input_schema=s.input_schema)
                for s in specs
            ]
        )

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        result: ToolResult = await tools.call_tool(params.name, params.arguments or {})
        if result.status == "error":
            # The spec: an unknown tool is a protocol error; a tool that ran and failed
            # (arguments it refused included) is a result with isError. Only a failed call
            # pays for the listing.
            listed: list[ToolSpec] = await tools.list_tools()
            if params.name not in {spec.name for spec in listed}:
                raise MCPError(types.INVALID_PARAMS, f"unknown tool: {params.name!r}")
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
        uri = str(params.uri)
        listed: list[ResourceSpec] = await context.list_resources.remote()
        target = urlsplit(uri)[:2]
        if target not in {urlsplit(spec.uri)[:2] for spec in listed}:
            raise MCPError(RESOURCE_NOT_FOUND, "resource not found", data={"uri": uri})
        content: ResourceContent = await context.read_resource.remote(uri)
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=content.uri, mime_type=content.mime_type, text=content.text
                )
            ]
        )

    async def list_prompts(ctx: Context, params: Page) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name=p.name,
                    title=p.title,
                    description=p.description,
                    arguments=[
                        types.PromptArgument(
                            name=a.name, description=a.description, required=a.required
                        )
                        for a in p.arguments
                    ],
                )
                for p in by_name.values()
            ]
        )

    async def get_prompt(
        ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        prompt = by_name.get(params.name)
        if prompt is None:
            raise MCPError(types.INVALID_PARAMS, f"unknown prompt: {params.name!r}")
        try:
            messages = prompt.render(params.arguments or {})
        except PromptArgumentsError as error:
            raise MCPError(types.INVALID_PARAMS, f"prompt {params.name!r}: {error}") from None
        return types.GetPromptResult(
            description=prompt.description,
            messages=[
                types.PromptMessage(
                    role=m.role, content=types.TextContent(type="text", text=m.content)
                )
                for m in messages
            ],
        )

    return Server(
        "aim-ray",
        version=aim_ray.__version__,
        instructions="Tools and context providers of an aim-ray deployment.",
        on_list_tools=_guarded("tools/list", list_tools),
        on_call_tool=_guarded("tools/call", call_tool),
        on_list_resources=_guarded("resources/list", list_resources),
        on_list_resource_templates=_guarded("resources/templates/list", list_templates),
        on_read_resource=_guarded("resources/read", read_resource),
        on_list_prompts=_guarded("prompts/list", list_prompts),
        on_get_prompt=_guarded("prompts/get", get_prompt),
    )


def _jsonrpc_error(status: int, code: int, message: str) -> JSONResponse:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


class _MCPGate:
    """Before the SDK's transport: the Host/Origin guard first, then only POSTed single
    JSON-RPC messages pass; the body read here is replayed to the transport."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self._app = app
        self._security = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        is_post = request.method == "POST"
        refused = await self._security.validate_request(request, is_post=is_post)
        if refused is None and not is_post:
            # Stateless: no server-initiated stream to open and no session to delete.
            refused = _jsonrpc_error(405, types.INVALID_REQUEST, "Method Not Allowed: use POST")
            refused.headers["Allow"] = "POST"
        if refused is None:
            body = await request.body()
            refused = self._check_message(body)
            receive = _replay(body, receive)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self._app(scope, receive, send)

    @staticmethod
    def _check_message(body: bytes) -> JSONResponse | None:
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _jsonrpc_error(400, types.PARSE_ERROR, "Parse error: the body is not JSON")
        if isinstance(message, list):
            return _jsonrpc_error(
                400, types.INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported"
            )
        try:
            types.jsonrpc_message_adapter.validate_python(message, by_name=False)
        except ValidationError:
            return _jsonrpc_error(
                400, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message"
            )
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once more, then the connection's own messages (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class MCPEndpoint:
    """The Streamable HTTP transport for one MCP server, as a route plus a lifespan."""

    def __init__(self, server: Server, settings: MCPTransportSettings) -> None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=settings.dns_rebinding_protection,
            allowed_hosts=settings.allowed_hosts,
            allowed_origins=settings.allowed_origins,
        )
        self._security = security
        self._max_body = settings.max_request_body_bytes
        self._manager = StreamableHTTPSessionManager(
            app=server,
            json_response=True,
            stateless=True,
            security_settings=security,
            max_request_body_size=settings.max_request_body_bytes,
        )

    def route(self) -> Route:
        # A Route, not a Mount: a Mount would redirect /mcp to /mcp/.
        gate = _MCPGate(StreamableHTTPASGIApp(self._manager), self._security)
        # The size cap goes first, so the gate never buffers more than the transport would.
        app = RequestBodyLimitMiddleware(gate, self._max_body)
        return Route(MCP_PATH, endpoint=app)

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
