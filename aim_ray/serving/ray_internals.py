"""The one door to Ray Serve LLM's private code: the only module of aim-ray importing
``ray.llm._internal``.

Public names (``ray.serve.llm``, ``ray.serve.llm.ingress``, ``ray.serve.llm.openai_api_models``)
are imported where they are used. What aim-ray needs beyond them (the ingress's FastAPI app,
its model lookup and engine calls, the exception it turns into OpenAI error bodies, model
cards, the deployment-options merge) is reached here, each behind a name of ours, so a Ray
upgrade that moves or renames them changes this file only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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
from ray.serve.handle import DeploymentHandle
from ray.serve.llm import LLMConfig
from ray.serve.llm.ingress import OpenAiIngress
from ray.serve.llm.openai_api_models import ChatCompletionRequest
from starlette.middleware import Middleware

from aim_ray.config.gateway import CORSSettings

__all__ = [
    "Ingress",
    "OpenAIHTTPException",
    "ingress_app",
    "maybe_apply_llm_deployment_config_defaults",
    "model_card",
    "raise_if_error",
]


def ingress_app(cors: CORSSettings) -> FastAPI:
    """Ray's ingress app (request ids, HTTP metrics, OpenAI-shaped handler errors) with
    ``cors`` in place of its CORS middleware, which reflects any origin with credentials."""
    app = init()
    ray_cors = [m for m in app.user_middleware if m.cls is CORSMiddleware]
    if len(ray_cors) != 1:
        raise RuntimeError("Ray's ingress app no longer has exactly one CORS middleware")
    position = app.user_middleware.index(ray_cors[0])
    if cors.allow_origins:
        app.user_middleware[position] = Middleware(
            CORSMiddleware,
            allow_origins=cors.allow_origins,
            allow_credentials=cors.allow_credentials,
            allow_methods=cors.allow_methods,
            allow_headers=cors.allow_headers,
        )
    else:
        del app.user_middleware[position]
    return app


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
