"""The engine layer: one model entry of the app config becomes a Ray Serve LLM ``LLMConfig``.

The recipe chosen for the model and hardware supplies the vLLM engine args, Ray actor
options, placement group, ROCm env and autoscaling; the model entry may override engine
args and deployment options. Ray Serve LLM's ``LLMServer`` then runs vLLM with them.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray.serve.llm import LLMConfig

from aim_ray.engine.models import resolve_model_source
from aim_ray.recipes.hardware import Hardware, detect
from aim_ray.recipes.recipe import Selection, select_recipe

logger = logging.getLogger(__name__)


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


def choose_recipe(spec: ModelSpec, hardware: Hardware | None = None) -> Selection:
    """The recipe for a model entry on the given (or detected) hardware."""
    if hardware is None:
        hardware = detect() if spec.hardware == "auto" else spec.hardware
    return select_recipe(
        spec.model_id,
        hardware,
        gpu_count=spec.gpus,
        precision=spec.precision,
        metric=spec.metric,
    )


def build_llm_config(spec: ModelSpec, *, prepare_model: bool = True) -> LLMConfig:
    """Resolve the recipe and model source of one entry into a validated ``LLMConfig``."""
    selection = choose_recipe(spec)
    logger.info("recipe for %s: %s", spec.model_id, "; ".join(selection.reasons))
    source = resolve_model_source(spec.source or spec.model_id, prepare=prepare_model)
    config = selection.llm_config(
        model_source=source,
        model_id=spec.served_name,
        overrides={
            "engine_kwargs": spec.engine_kwargs,
            "deployment_config": spec.deployment_config,
        },
    )
    return LLMConfig.model_validate(config)
