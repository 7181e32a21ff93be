"""The Serve application: ``aim_ray.app:build_app`` is the import path of every serve config.

It validates the application args at the edge (``aim_ray.config.app``), turns each model entry
into a vLLM engine deployment through its recipe (``aim_ray.engine.llm_config``), and binds
them behind the gateway ingress (``aim_ray.serving.gateway``).
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from ray.serve.deployment import Application
from ray.serve.llm import LLMConfig

from aim_ray.config.app import InvalidAppArgs, ModelSpec, parse_app_args
from aim_ray.config.mcp import MCPConfig
from aim_ray.engine.llm_config import choose_recipe, llm_config_dict
from aim_ray.engine.mcp_fit import MCPMismatchError, fit_mcp
from aim_ray.engine.models import resolve_model_source
from aim_ray.mcp.context.service import ContextDeployment
from aim_ray.mcp.tools.service import ToolService
from aim_ray.recipes.selection import Selection
from aim_ray.serving.gateway import build_gateway
from aim_ray.serving.ray_internals import (
    FirstChunkNowServer,
    maybe_apply_llm_deployment_config_defaults,
)

logger = logging.getLogger(__name__)

# CPU-light services: a tenth of a CPU a replica, so they schedule beside the engine on a
# 2-core machine, and they scale on their own load.
SERVICE_DEFAULTS: dict[str, Any] = {
    "ray_actor_options": {"num_cpus": 0.1},
    "max_ongoing_requests": 64,
    "autoscaling_config": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 16},
}


def build_llm_config(
    spec: ModelSpec, *, prepare_model: bool = True, selection: Selection | None = None
) -> LLMConfig:
    """Resolve the recipe and model source of one entry into a validated ``LLMConfig``."""
    selection = selection or choose_recipe(spec)
    logger.info("recipe for %s: %s", spec.model_id, "; ".join(selection.reasons))
    source = resolve_model_source(spec.source or spec.model_id, prepare=prepare_model)
    config = llm_config_dict(spec, selection, model_source=source)
    config.setdefault("server_cls", FirstChunkNowServer)
    return LLMConfig.model_validate(config)


def build_app(args: dict[str, Any]) -> Application:
    """Serve's application builder: validated args in, the deployment graph out."""
    app_args = parse_app_args(args)
    selections = [choose_recipe(spec) for spec in app_args.models]
    try:
        app_args = fit_mcp(app_args, selections)
    except MCPMismatchError as error:
        raise InvalidAppArgs(str(error)) from None
    llm_configs = [
        build_llm_config(spec, selection=selection)
        for spec, selection in zip(app_args.models, selections, strict=True)
    ]
    mcp = app_args.mcp
    if mcp is None or not mcp.enabled:
        return build_gateway(llm_configs, app_args.gateway)
    return build_gateway(
        llm_configs,
        app_args.gateway,
        tools=build_service("ToolService", ToolService, mcp.deployments.tools, mcp),
        context=build_service("ContextService", ContextDeployment, mcp.deployments.context, mcp),
        mcp=mcp,
    )


def build_service(name: str, cls: type, options: dict[str, Any], mcp: MCPConfig) -> Application:
    """One MCP service deployment (no GPU): its config's options over ``SERVICE_DEFAULTS``."""
    # The gateway's options go through the same merge: one rule for every deployment.
    merged = maybe_apply_llm_deployment_config_defaults(SERVICE_DEFAULTS, options)
    return serve.deployment(cls, name=name, **merged).bind(mcp)
