"""The Serve application: ``aim_ray.app:build_app`` is the import path of every serve config.

It validates the application args at the edge, turns each model entry into a vLLM
engine deployment through its recipe (``aim_ray.engine.llm_config``), and binds them behind the
gateway ingress (``aim_ray.serving.gateway``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.llm._internal.common.dict_utils import maybe_apply_llm_deployment_config_defaults
from ray.serve.deployment import Application

from aim_ray.config.mcp import MCPConfig
from aim_ray.engine.llm_config import ModelSpec, build_llm_config
from aim_ray.errors import AimRayError, dotted_location
from aim_ray.mcp.context.service import ContextService
from aim_ray.mcp.tools.service import ToolService
from aim_ray.serving.gateway import GatewaySettings, build_gateway

# CPU-light services: a tenth of a CPU a replica, so they schedule beside the engine on a
# 2-core machine, and they scale on their own load.
SERVICE_DEFAULTS: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": 0.1},
    "max_ongoing_requests": 64,
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 16},
}


class AppArgs(BaseModel):
    """The ``args`` block of an aim-ray application in a Serve config."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec] = Field(min_length=1)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    mcp: MCPConfig | None = Field(default=None, description="Context providers and tools.")


class InvalidAppArgs(AimRayError):
    """Application args that do not validate; the message lists every problem."""


def parse_app_args(args: dict[str, Any]) -> AppArgs:
    try:
        return AppArgs.model_validate(args)
    except ValidationError as exc:
        problems = "\n".join(
            f"  args.{dotted_location(e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidAppArgs(f"invalid aim-ray application args:\n{problems}") from None


def build_app(args: dict[str, Any]) -> Application:
    """Serve's application builder: validated args in, the deployment graph out."""
    app_args = parse_app_args(args)
    llm_configs = [build_llm_config(spec) for spec in app_args.models]
    mcp = app_args.mcp
    if mcp is None or not mcp.enabled:
        return build_gateway(llm_configs, app_args.gateway)
    return build_gateway(
        llm_configs,
        app_args.gateway,
        tools=build_service("ToolService", ToolService, mcp.deployments.tools, mcp),
        context=build_service("ContextService", ContextService, mcp.deployments.context, mcp),
        max_context_tokens=mcp.context.max_length,
    )


def build_service(name: str, cls: type, options: dict[str, Any], mcp: MCPConfig) -> Application:
    """One MCP service deployment (no GPU): its config's options over ``SERVICE_DEFAULTS``."""
    merged = maybe_apply_llm_deployment_config_defaults(SERVICE_DEFAULTS, options)
    return serve.deployment(cls, name=name, **merged).bind(mcp)
