"""The gateway: aim-ray's Serve ingress and the one HTTP surface users meet.

It extends Ray Serve LLM's ``OpenAiIngress`` (model routing, streaming, OpenAI error
shapes; reached through ``aim_ray.serving.ray_internals``) and owns what aim-ray adds around
it: the route table, the middleware stack (host/origin policy ``guard``, CORS, per-client
concurrency and request ``limits``, API-key auth, 5xx ``errors`` without internals), the
check of chat messages (``messages``), ``/health``, OpenAI-shaped errors for requests that
never reach a handler, and the hand-off of MCP-aware chats to ``aim_ray.mcp.chat`` and of ``/mcp``
to ``aim_ray.mcp.server``. The FastAPI app is built inside each replica
(``__serve_build_asgi_app__``) so its routes can close over the replica's deployment handles.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from ray import serve
from ray.serve.deployment import Application
from ray.serve.handle import DeploymentHandle
from ray.serve.llm import LLMConfig, build_llm_deployment
from ray.serve.llm.openai_api_models import ChatCompletionRequest, CompletionRequest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response, StreamingResponse
from vllm.exceptions import VLLMClientError

from aim_ray.config.gateway import GatewaySettings
from aim_ray.config.mcp import MCPConfig
from aim_ray.errors import validation_problems
from aim_ray.mcp.chat.loop import Finished, MCPChat
from aim_ray.mcp.protocol import (
    STATUS_PARTS,
    ContextAPI,
    ContextHealth,
    ToolAPI,
    ToolsHealth,
    overall_status,
)
from aim_ray.mcp.server import MCPEndpoint, build_mcp_server
from aim_ray.mcp.tools.client import ToolClient
from aim_ray.metrics import GatewayMetricsMiddleware
from aim_ray.serving.auth import APIKeyAuth, load_api_keys
from aim_ray.serving.errors import ScrubServerErrors, openai_error
from aim_ray.serving.guard import HostOriginGuard
from aim_ray.serving.limits import ClientConcurrency, LimitExceeded, apply_limits, limit_error
from aim_ray.serving.messages import message_problems
from aim_ray.serving.ray_internals import (
    Ingress,
    OpenAIHTTPException,
    ingress_app,
    maybe_apply_llm_deployment_config_defaults,
    model_card,
)
from aim_ray.serving.rounds import ModelRounds, Tokenizers

HEALTH_TIMEOUT_S = 5.0
OPEN_PATHS = frozenset({"/health", "/mcp/health"})
ENGINE_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})


class Gateway(Ingress):
    """The ingress deployment: OpenAI API, health and (later) MCP on one port."""

    def __init__(
        self,
        llm_deployments: dict[str, DeploymentHandle],
        model_cards: dict[str, Any],
        *,
        settings: GatewaySettings,
        tools: DeploymentHandle[ToolAPI] | None = None,
        context: DeploymentHandle[ContextAPI] | None = None,
        mcp: MCPConfig | None = None,
        tokenizer_sources: dict[str, str] | None = None,
        lora_paths: dict[str, str] | None = None,
    ) -> None:
        super().__init__(llm_deployments, model_cards, lora_paths=lora_paths)
        self._tokenizers = Tokenizers(tokenizer_sources or {})
        self._settings = settings
        self._api_keys = load_api_keys(settings.auth)
        self._tools = None if tools is None or mcp is None else ToolClient(tools, mcp)
        self._context = context
        self._prompts = mcp.prompts if mcp else []
        self._mcp_chat = MCPChat(
            self._tools,
            context,
            max_context_tokens=mcp.context.max_length if mcp else 0,
            settings=settings.chat,
            max_tool_time_s=settings.limits.max_tool_time_s,
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        # Ray's ingress app brings request ids, HTTP metrics and OpenAI-shaped errors for
        # handler exceptions, and takes our CORS policy; we add what it lacks.
        settings = self._settings
        app = ingress_app(settings.cors)
        # Registered handlers run inside Ray's catch-all middleware, so these win and
        # the client gets the engine's own message rather than a wrapped internal one.
        app.add_exception_handler(StarletteHTTPException, _http_exception_as_openai_error)
        app.add_exception_handler(OpenAIHTTPException, _openai_exception_as_openai_error)
        app.add_exception_handler(RequestValidationError, _validation_error_as_openai_error)
        app.add_exception_handler(VLLMClientError, _client_error_as_openai_error)
        # Each middleware added wraps the ones before it: the last runs first.
        app.add_middleware(
            ClientConcurrency,
            limit=settings.limits.max_concurrent_per_client,
            paths=ENGINE_PATHS,
        )
        if self._api_keys:
            # Outside the concurrency cap, so requests with a wrong key take no slot.
            app.add_middleware(APIKeyAuth, keys=self._api_keys, open_paths=OPEN_PATHS)
        app.add_middleware(
            HostOriginGuard,
            allowed_hosts=settings.allowed_hosts,
            allowed_origins=[*settings.allowed_origins, *settings.cors.allow_origins],
            open_paths=OPEN_PATHS,
        )
        app.add_middleware(ScrubServerErrors, exempt=OPEN_PATHS)
        # Added last so it is outermost: refused (401, 421, 403) requests are counted too.
        app.add_middleware(GatewayMetricsMiddleware)
        app.add_api_route("/v1/models", self.models, methods=["GET"])
        app.add_api_route("/v1/models/{model:path}", self.model_data, methods=["GET"])
        app.add_api_route("/v1/chat/completions", self.chat, methods=["POST"])
        app.add_api_route("/v1/completions", self.completions, methods=["POST"])
        app.add_api_route("/health", self.health, methods=["GET"])
        if self._tools is not None and self._context is not None:
            self._mount_mcp(app)
        return app

    def _mount_mcp(self, app: FastAPI) -> None:
        endpoint = MCPEndpoint(
            build_mcp_server(self._tools, self._context, self._prompts),
            self._settings.transport_guard(),
        )
        app.add_api_route("/mcp/health", self.mcp_health, methods=["GET"])
        app.router.routes.append(endpoint.route())
        app.router.lifespan_context = endpoint.wrap_lifespan(app.router.lifespan_context)

    async def chat(self, body: ChatCompletionRequest, request: Request) -> Response:
        """Chat completions: MCP-aware ones to ``aim_ray.mcp.chat``, the rest to the engine."""
        payload = await request.json()
        refusal = _checked(payload, body, self._settings)
        if refusal is not None:
            return refusal
        problems = message_problems(payload.get("messages"))
        if problems is not None:
            return openai_error(
                400, f"Invalid messages: {problems}", "invalid_request_error", param="messages"
            )
        payload["model"] = await self.resolve_model(payload.get("model"))
        rounds = ModelRounds(self, request, self._tokenizers)
        answer = await self._mcp_chat.handle(payload, rounds)
        if answer is None:
            return await super().chat(body, request)
        if isinstance(answer, Finished):
            return JSONResponse(answer.body)
        return StreamingResponse(answer.chunks, media_type="text/event-stream")

    async def completions(self, body: CompletionRequest, request: Request) -> Response:
        """Completions, within the request limits."""
        refusal = _checked(await request.json(), body, self._settings)
        if refusal is not None:
            return refusal
        return await super().completions(body, request)

    async def health(self) -> JSONResponse:
        """Each engine's own health check and, with MCP on, the MCP status (as ``/mcp/health``
        without the detail): 503 while an engine is down; ``degraded`` (still 200) while MCP
        is not fully healthy, since chat still works."""
        engines, mcp = await asyncio.gather(
            asyncio.gather(*(self._engine_health(m, h) for m, h in self.engine_handles.items())),
            self._mcp_status(),
        )
        serving = all(status == "healthy" for status in engines)
        status = "healthy" if serving else "unhealthy"
        if serving and mcp not in (None, "healthy"):
            status = "degraded"
        body: dict[str, Any] = {
            "status": status,
            "models": dict(zip(self.engine_handles, engines, strict=True)),
        }
        if mcp is not None:
            body["mcp"] = mcp
        return JSONResponse(status_code=200 if serving else 503, content=body)

    async def _mcp_status(self) -> str | None:
        if self._tools is None or self._context is None:
            return None
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                status, _ = await self._mcp_health_report()
        except Exception:  # noqa: BLE001 - /mcp/health has the detail; this is the summary
            return "unhealthy"
        return status

    async def _mcp_health_report(self) -> tuple[str, dict[str, Any]]:
        context: ContextHealth
        tools: ToolsHealth
        context, tools = await asyncio.gather(self._context.health.remote(), self._tools.health())
        # Unhealthy only when nothing works: tools still run while providers are down.
        status = overall_status(
            up for service in (context.status, tools.status) for up in STATUS_PARTS[service]
        )
        return status, {
            **context.model_dump(include={"providers"}),
            **tools.model_dump(include={"tools", "remote_servers"}, exclude_none=True),
        }

    async def mcp_health(self) -> JSONResponse:
        """Each context provider's and remote MCP server's state; 503 when none works."""
        status, detail = await self._mcp_health_report()
        body = {"mcp": {"status": status, **detail}}
        return JSONResponse(status_code=503 if status == "unhealthy" else 200, content=body)

    async def _engine_health(self, model_id: str, handle: DeploymentHandle) -> str:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                await handle.check_health.remote()
        except Exception:  # noqa: BLE001 - any failure means the engine is not serving
            return "unhealthy"
        return "healthy"


def _checked(
    payload: dict[str, Any],
    body: ChatCompletionRequest | CompletionRequest,
    settings: GatewaySettings,
) -> JSONResponse | None:
    """The 400 for a request over a limit; else None, with the default token cap applied to
    the parsed ``body`` too (the engine gets that one on the plain path)."""
    try:
        apply_limits(payload, settings.limits)
    except LimitExceeded as exc:
        return limit_error(exc)
    for cap in ("max_tokens", "max_completion_tokens"):
        if cap in payload and body.__dict__.get(cap) is None:
            setattr(body, cap, payload[cap])
    return None


def _error_type(status: int) -> str:
    return "invalid_request_error" if status < 500 else "server_error"


async def _http_exception_as_openai_error(
    request: Request, exc: StarletteHTTPException
) -> JSONResponse:
    code = "not_found" if exc.status_code == 404 else None
    return openai_error(exc.status_code, str(exc.detail), _error_type(exc.status_code), code)


async def _openai_exception_as_openai_error(
    request: Request, exc: OpenAIHTTPException
) -> JSONResponse:
    return openai_error(exc.status_code, exc.message, _error_type(exc.status_code))


async def _client_error_as_openai_error(request: Request, exc: VLLMClientError) -> JSONResponse:
    # vLLM's request models validate some fields (e.g. tool_choice against tools) while
    # FastAPI parses the body, so these surface here rather than from the engine.
    return openai_error(400, str(exc), "invalid_request_error")


async def _validation_error_as_openai_error(
    request: Request, exc: RequestValidationError
) -> JSONResponse:
    problems = "; ".join(validation_problems(exc, drop={"body"}, index_brackets=False))
    return openai_error(400, f"Invalid request: {problems}", "invalid_request_error")


def build_gateway(
    llm_configs: list[LLMConfig],
    settings: GatewaySettings,
    *,
    tools: Application | None = None,
    context: Application | None = None,
    mcp: MCPConfig | None = None,
) -> Application:
    """Bind one engine deployment per model, and the MCP services, behind the gateway."""
    # One name whatever the server class: dashboards and alerts key on "LLMServer:<model>".
    llm_deployments = {
        c.model_id: build_llm_deployment(c, name_prefix="LLMServer:") for c in llm_configs
    }
    model_cards = {c.model_id: model_card(c) for c in llm_configs}
    options = maybe_apply_llm_deployment_config_defaults(
        Gateway.get_deployment_options(llm_configs), settings.deployment_config
    )
    deployment = serve.deployment(serve.ingress()(Gateway), name="Gateway", **options)
    return deployment.bind(
        llm_deployments=llm_deployments,
        model_cards=model_cards,
        settings=settings,
        tools=tools,
        context=context,
        mcp=mcp,
        tokenizer_sources={c.model_id: _tokenizer_source(c) for c in llm_configs},
    )


def _tokenizer_source(config: LLMConfig) -> str:
    loading = config.model_loading_config
    return loading.tokenizer_source or loading.model_source or loading.model_id
