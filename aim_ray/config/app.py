"""The ``args`` of an aim-ray application in a Serve config, and their validation.

``AppArgs`` is what ``aim_ray.app:build_app`` receives, what ``render_serve_config`` writes
and what ``validate_serve_config`` checks: the models to serve (``ModelSpec``, one engine
deployment each), the gateway settings and the optional ``mcp:`` section.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aim_ray.config.gateway import GatewaySettings
from aim_ray.config.mcp import MCPConfig
from aim_ray.errors import AimRayError, validation_problems


class ModelSpec(BaseModel):
    """One model to serve, and how to choose its recipe."""

    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(description="Model id used to find the recipe, e.g. Qwen/Qwen3-32B.")
    source: str | None = Field(
        default=None,
        description="Where the weights come from: embedded:<name>, a local HF folder or a "
        "hub id. Defaults to model_id.",
    )
    served_name: str | None = Field(
        default=None, description="The id clients send as `model`; defaults to the recipe's."
    )
    hardware: str = Field(default="auto", description="MI300X, MI325X, MI355X, CPU or auto.")
    gpus: int | None = Field(default=None, ge=1, description="GPU count; default: what fits.")
    precision: str = "auto"
    metric: str | None = Field(default=None, description="latency or throughput")
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="vLLM engine args that override the recipe's."
    )
    deployment_config: dict[str, Any] = Field(
        default_factory=dict, description="Serve deployment options that override the recipe's."
    )


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
        problems = "\n".join(f"  {p}" for p in validation_problems(exc, root="args"))
        raise InvalidAppArgs(f"invalid aim-ray application args:\n{problems}") from None
