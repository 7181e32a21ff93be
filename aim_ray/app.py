"""The Serve application: ``aim_ray.app:build_app`` is the import path of every serve config.

It validates the application args at the edge, turns each model entry into a vLLM
engine deployment through its recipe (``aim_ray.engine``), and binds them behind the
gateway ingress (``aim_ray.gateway``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray.serve.deployment import Application

from aim_ray.engine import ModelSpec, build_llm_config
from aim_ray.errors import AimRayError
from aim_ray.gateway import GatewaySettings, build_gateway


class AppArgs(BaseModel):
    """The ``args`` block of an aim-ray application in a Serve config."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelSpec] = Field(min_length=1)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)


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


def dotted_location(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a path: ``models[0].gpus``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def build_app(args: dict[str, Any]) -> Application:
    """Serve's application builder: validated args in, the deployment graph out."""
    app_args = parse_app_args(args)
    llm_configs = [build_llm_config(spec) for spec in app_args.models]
    return build_gateway(llm_configs, app_args.gateway)
