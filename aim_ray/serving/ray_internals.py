"""The one door to Ray Serve LLM's private code: the only module of aim-ray importing
``ray.llm._internal``.

Public names (``ray.serve.llm``, ``ray.serve.llm.ingress``, ``ray.serve.llm.openai_api_models``)
are imported where they are used. What aim-ray needs beyond them (the ingress's FastAPI app,
its model lookup and engine calls, the exception it turns into OpenAI error bodies, model
cards, the deployment-options merge) is reached here, each behind a name of ours, so a Ray
upgrade that moves or renames them changes this file only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from ray.llm._internal.common.dict_utils import (
    maybe_apply_llm_deployment_config_defaults as _apply_deployment_defaults,
)
from ray.llm._internal.serve.constants import DEFAULT_LLM_ROUTER_HTTP_TIMEOUT
from ray.llm._internal.serve.core.configs.openai_api_models import (
    ErrorResponse,
    ModelCard,
    OpenAIHTTPException,
    to_model_metadata,
)
from ray.llm._internal.serve.core.ingress.ingress import init, router_request_timeout
from ray.llm._internal.serve.core.ingress.utils import _peek_at_generator
from ray.llm._internal.serve.utils.batcher import Batcher
from ray.llm._internal.serve.utils.server_utils import get_response_for_error
from ray.serve.handle import DeploymentHandle
from ray.serve.llm import LLMConfig, LLMServer
from ray.serve.llm.ingress import OpenAiIngress
from ray.serve.llm.openai_api_models import ChatCompletionRequest
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aim_ray.config.gateway import CORSSettings

__all__ = [
    "FirstChunkNowServer",
    "Ingress",
    "OpenAIHTTPException",
    "ingress_app",
    "maybe_apply_llm_deployment_config_defaults",
    "model_card",
    "raise_if_error",
]


def ingress_app(cors: CORSSettings) -> FastAPI:
    """Ray's ingress app (request ids, HTTP metrics, OpenAI-shaped handler errors) with
    ``cors`` in place of its CORS middleware, which reflects any origin with credentials,
    and its error middleware as plain ASGI (``HandlerErrors``)."""
    app = init()
    cors_position = _only_middleware(app, CORSMiddleware)
    if cors.allow_origins:
        app.user_middleware[cors_position] = Middleware(
            CORSMiddleware,
            allow_origins=cors.allow_origins,
            allow_credentials=cors.allow_credentials,
            allow_methods=cors.allow_methods,
            allow_headers=cors.allow_headers,
        )
    else:
        del app.user_middleware[cors_position]
    # A BaseHTTPMiddleware relays every message of every response through a task of its
    # own: on a streamed chat that is a hop per chunk.
    app.user_middleware[_only_middleware(app, BaseHTTPMiddleware)] = Middleware(HandlerErrors)
    return app


def _only_middleware(app: FastAPI, cls: type) -> int:
    found = [i for i, m in enumerate(app.user_middleware) if m.cls is cls]
    if len(found) != 1:
        raise RuntimeError(f"Ray's ingress app no longer has exactly one {cls.__name__}")
    return found[0]


class HandlerErrors:
    """ASGI middleware: an exception from a handler becomes the OpenAI-shaped error answer
    Ray's own ingress gives for it (its status: 400 for invalid input, the exception's
    ``status_code``, else 500), as Ray's ``BaseHTTPMiddleware`` did, without its task hop."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, noting_start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if started:
                raise
            answer = get_response_for_error(exc, getattr(Request(scope).state, "request_id", ""))
            await JSONResponse(answer.model_dump(), status_code=answer.error.code)(
                scope, receive, send
            )


def model_card(config: LLMConfig) -> ModelCard:
    """The ``/v1/models`` entry of a model, as Ray's own ingress lists it."""
    return to_model_metadata(config.model_id, config)


def maybe_apply_llm_deployment_config_defaults(
    defaults: dict[str, Any], overrides: dict[str, Any] | None
) -> dict[str, Any]:
    """Serve options: ``overrides`` deep-merged over ``defaults``, whose autoscaling is
    dropped when ``overrides`` fix ``num_replicas`` (Serve refuses both at once)."""
    return _apply_deployment_defaults(defaults, overrides)


def raise_if_error(response: Any) -> None:
    """Raise the engine's error answer as the exception Ray's routes raise for it.

    Streams may come in batches (lists), whose first item stands for the batch. The check
    is against Ray's internal ``ErrorResponse``: the engine answers with that class, of
    which the public one is a subclass.
    """
    first = response[0] if isinstance(response, list) else response
    if isinstance(first, ErrorResponse):
        raise OpenAIHTTPException(
            status_code=first.error.code, message=first.error.message, type=first.error.type
        )


class Ingress(OpenAiIngress):
    """Ray's ``OpenAiIngress`` with the private members aim-ray relies on, each named."""

    @property
    def engine_handles(self) -> dict[str, DeploymentHandle]:
        """One handle per model id, unconfigured (for calls other than chat/completions)."""
        return self._default_serve_handles

    async def resolve_model(self, model: str | None) -> str:
        """The model id a request means (the only one when it names none); 404 if unknown."""
        return await self._get_model_id(model)

    async def chat_round(
        self, body: ChatCompletionRequest, raw_request: Request
    ) -> tuple[Any, AsyncIterator[Any]]:
        """Send one chat request to its engine exactly as Ray's own chat route does.

        As in ``OpenAiIngress._process_llm_request``: the client's raw request goes along
        (its session header routes the call, e.g. for the consistent-hash router, and its
        headers reach the engine), the first answer must come within the router's request
        timeout (408 otherwise), and an error answer raises. Returns that first answer and
        the whole stream, the first answer included.
        """
        async with router_request_timeout(DEFAULT_LLM_ROUTER_HTTP_TIMEOUT):
            first, responses = await _peek_at_generator(
                self._get_response(body=body, call_method="chat", raw_request=raw_request)
            )
        raise_if_error(first)
        return first, responses


T = TypeVar("T")

# Chosen with benchmarks/levers.py (benchmarks/README.md, 2026-12-02): on a 2-core CPU box a
# 20 ms window was worse than none on tok/s, TTFT and ITL; a small engine has nothing to batch.
STREAM_BATCHING_MS = 0.0
BATCH_WINDOW_ENV = "RAYLLM_MODEL_RESPONSE_BATCH_TIMEOUT_MS"


class _FirstChunkNowBatcher(Batcher[T]):
    """Ray's stream batcher, except that the first chunk leaves as soon as it exists.

    Ray 2.60's batcher holds every stream's first chunk until its first window closes,
    which adds up to a whole window to each TTFT (upstream fix ray#64534, not released).
    """

    def __init__(self, generator: AsyncGenerator[T, None], interval_ms: float | None) -> None:
        # Set before the base class starts its read task, which sets it.
        self._arrived = asyncio.Event()
        super().__init__(_noting_arrival(generator, self._arrived), interval_ms=interval_ms)

    async def stream(self) -> AsyncGenerator[list[T], None]:
        if not self.interval_s:
            async for batch in super().stream():
                yield batch
            return
        try:
            await self._arrived.wait()
            first, done = self.check_done_and_drain()
            if first:
                yield first
            if done:
                self.read_task.result()
                return
        except BaseException:
            self.read_task.cancel()
            raise
        async for batch in super().stream():
            yield batch


async def _noting_arrival(
    generator: AsyncGenerator[T, None], arrived: asyncio.Event
) -> AsyncGenerator[T, None]:
    try:
        async for item in generator:
            yield item
            # Resumed right after the batcher's reader queued the item.
            arrived.set()
    finally:
        # An empty or failing stream must not leave the first wait hanging.
        arrived.set()


class FirstChunkNowServer(LLMServer):
    """Ray Serve LLM's engine deployment with the first streamed chunk sent at once, and
    ``STREAM_BATCHING_MS`` as the stream batching window unless the model's
    ``experimental_configs.stream_batching_interval_ms`` or the
    ``RAYLLM_MODEL_RESPONSE_BATCH_TIMEOUT_MS`` environment variable says otherwise."""

    def _get_batch_interval_ms(self, stream: bool = True) -> float | None:
        if not stream:
            return None
        configured = self._llm_config.experimental_configs.get("stream_batching_interval_ms")
        if configured is not None:
            return configured
        return float(os.environ.get(BATCH_WINDOW_ENV, STREAM_BATCHING_MS))

    def _batch_output_stream(
        self, generator: AsyncGenerator[T, None]
    ) -> AsyncGenerator[list[T], None]:
        return _FirstChunkNowBatcher(generator, self._get_batch_interval_ms()).stream()
