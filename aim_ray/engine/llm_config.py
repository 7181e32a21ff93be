"""The engine layer: what runs for one model entry, written once.

``choose_recipe`` picks the recipe for a model entry (``ModelSpec``); ``llm_config_dict`` turns
the entry and that choice into the ``LLMConfig`` dict: the recipe's vLLM engine args, Ray
actor options, placement group, ROCm env and autoscaling, with the entry's ``engine_kwargs``
and ``deployment_config`` merged over them. The app validates the dict into Ray Serve LLM's
``LLMConfig``; the Serve config and KubeRay renderers read the same dict, so a pod is sized
for exactly what the app will run. Import-light: no Ray, no vLLM.
"""

from __future__ import annotations

from typing import Any

from aim_ray.config.app import ModelSpec
from aim_ray.recipes.hardware import Hardware, detect
from aim_ray.recipes.selection import Selection, select_recipe


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


def llm_config_dict(
    spec: ModelSpec, selection: Selection, *, model_source: str | None = None
) -> dict[str, Any]:
    """The ``LLMConfig`` dict for ``spec`` run with ``selection``, the entry's overrides in.

    ``model_source`` is the resolved weights (``engine.models.resolve_model_source``); left
    out, the recipe's own source stands, which is enough for sizing and rendering.
    """
    return selection.llm_config(
        model_source=model_source,
        model_id=spec.served_name,
        overrides={
            "engine_kwargs": spec.engine_kwargs,
            "deployment_config": spec.deployment_config,
        },
    )
