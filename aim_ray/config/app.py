"""The ``args`` of an aim-ray application in a Serve config, and their validation.

``AppArgs`` is what ``aim_ray.app:build_app`` receives, what ``render_serve_config`` writes
and what ``validate_serve_config`` checks: the models to serve (``ModelSpec``, one engine
deployment each), the gateway settings and the optional ``mcp:`` section, inline or in a
file of its own (``mcp_config_file``), which ``parse_app_args`` reads in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aim_ray.config import SERVE_CONFIG_DIR_ENV
from aim_ray.config.gateway import GatewaySettings
from aim_ray.config.mcp import MCPConfig, MCPConfigError, load_mcp_config
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
    mcp_config_file: str | None = Field(
        default=None,
        description="The mcp: section in a YAML file of its own, relative to the serve config "
        "(see ``serve_config_dir``); instead of ``mcp``.",
    )

    @model_validator(mode="after")
    def _one_mcp_source(self) -> AppArgs:
        if self.mcp is not None and self.mcp_config_file is not None:
            raise ValueError("set `mcp` or `mcp_config_file`, not both")
        return self


class InvalidAppArgs(AimRayError):
    """Application args that do not validate; the message lists every problem."""


def parse_app_args(args: dict[str, Any], base_dir: Path | None = None) -> AppArgs:
    """Validated args, with an ``mcp_config_file`` (relative to ``base_dir``, by default
    ``serve_config_dir()``) read into ``mcp``: what the replicas get is self-contained."""
    try:
        parsed = AppArgs.model_validate(args)
    except ValidationError as exc:
        problems = "\n".join(f"  {p}" for p in validation_problems(exc, root="args"))
        raise InvalidAppArgs(f"invalid aim-ray application args:\n{problems}") from None
    if parsed.mcp_config_file is None:
        return parsed
    path = mcp_file_path(parsed.mcp_config_file, base_dir or serve_config_dir())
    try:
        mcp = load_mcp_config(path)
    except MCPConfigError as error:
        problems = "\n".join(f"  {p}" for p in error.problems)
        raise InvalidAppArgs(
            f"invalid MCP config in {parsed.mcp_config_file}:\n{problems}"
        ) from None
    return parsed.model_copy(update={"mcp": mcp, "mcp_config_file": None})


def serve_config_dir() -> Path:
    """Where the serve config being deployed lives: ``$AIM_RAY_SERVE_CONFIG_DIR``, which
    ``aim-ray serve run`` sets for its cluster; else the working directory (plain
    ``serve run`` started from the config's folder, or a container's working dir)."""
    return Path(os.environ.get(SERVE_CONFIG_DIR_ENV) or ".")


def mcp_file_path(name: str, base_dir: Path) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else base_dir / path
