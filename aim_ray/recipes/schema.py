"""The recipe schema: how to run one model on one kind of hardware, and what makes a recipe valid.

Owns the pydantic models of a recipe file (engine args, env, the Ray block, a profile per
GPU count), the checks that a profile fits its hardware, and ``Recipe.llm_config``, which
turns a chosen profile into the dict ``ray.serve.llm.LLMConfig.model_validate`` accepts.

A recipe follows AMD's AIM *profile* conventions (``amd-enterprise-ai/aim-build``): one file
per model, GPU, precision and metric, named ``vllm-<gpu>-<precision>-<metric>.yaml`` under
``<org>/<model>/``, general fallbacks under ``general/``. Unlike an AIM profile, one file
holds a profile per GPU count, and each profile carries a ``ray`` block (accelerator type,
placement group, actor options, Serve deployment) because Ray, not vLLM's ``mp`` executor,
places the engine's workers. Where recipes are found: ``recipes.catalog``; which one is
chosen: ``recipes.selection``.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    model_validator,
)

from aim_ray.config.merge import deep_merge
from aim_ray.errors import AimRayError
from aim_ray.recipes.hardware import RAY_ACCELERATOR_TYPES, HardwareKind

ANY_MODEL = "*"

Tier = Literal["custom", "model", "general"]
Precision = Literal["int4", "q4", "int8", "fp4", "mxfp4", "fp8", "fp16", "bf16", "fp32"]
Metric = Literal["latency", "throughput"]
Maturity = Literal["optimized", "preview", "unoptimized", "general"]

TIER_LABELS: dict[str, str] = {
    "custom": "custom",
    "model": "model-specific",
    "general": "general",
}

# Ray assigns each worker its GPUs through HIP_VISIBLE_DEVICES, and raises outright when
# ROCR_VISIBLE_DEVICES is set (ray/_private/accelerators/amd_gpu.py).
_FORBIDDEN_ENV = {
    "ROCR_VISIBLE_DEVICES": "Ray raises when it is set; Ray assigns GPUs itself",
    "HIP_VISIBLE_DEVICES": "Ray assigns each worker its GPUs through it",
    "CUDA_VISIBLE_DEVICES": "Ray assigns each worker its GPUs",
    "VLLM_USE_TRITON_FLASH_ATTN": "a deprecated vLLM V0 variable the V1 engine ignores",
}


class RecipeError(AimRayError):
    """A recipe file that cannot be loaded, or a recipe asked for something it lacks."""


def _coerce_env(value: Any) -> Any:
    # YAML reads VAR: 1 as an int; env values are strings, so accept numbers, not booleans.
    if not isinstance(value, dict):
        return value
    for key, item in value.items():
        if isinstance(item, bool):
            raise ValueError(f"{key}: quote the value ('1' or '0'), env values are strings")
    return {
        key: str(item) if isinstance(item, int | float) else item for key, item in value.items()
    }


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for key in env:
        if key in _FORBIDDEN_ENV:
            raise ValueError(f"{key} must not be set: {_FORBIDDEN_ENV[key]}")
    return env


EnvVars = Annotated[dict[str, str], BeforeValidator(_coerce_env), AfterValidator(_check_env)]


class _Strict(BaseModel):
    # Unknown keys are errors so that a typo in a recipe surfaces instead of being ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineArgs(_Strict):
    """vLLM engine args (Python names, as in ``vllm.engine.arg_utils.EngineArgs``)."""

    tensor_parallel_size: PositiveInt | None = None
    max_model_len: PositiveInt | None = None
    max_num_batched_tokens: PositiveInt | None = None
    max_num_seqs: PositiveInt | None = None
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    dtype: str | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Any other vLLM engine or frontend arg."
    )

    @model_validator(mode="before")
    @classmethod
    def _python_names(cls, data: Any) -> Any:
        # AIM profiles spell args the CLI way (max-num-seqs); Ray passes them as kwargs.
        if not isinstance(data, dict):
            return data
        extra = data.get("extra")
        keys = [*data, *(extra if isinstance(extra, dict) else ())]
        dashed = [key for key in keys if isinstance(key, str) and "-" in key]
        if dashed:
            fixes = ", ".join(f"{key} → {key.replace('-', '_')}" for key in dashed)
            raise ValueError(f"use vLLM's Python arg names with underscores: {fixes}")
        return data

    @model_validator(mode="after")
    def _extra_does_not_repeat_fields(self) -> EngineArgs:
        repeated = sorted(set(self.extra) & set(type(self).model_fields))
        if repeated:
            raise ValueError(f"set {', '.join(repeated)} as named engine_args, not under extra")
        return self

    def engine_kwargs(self) -> dict[str, Any]:
        """The args for ``LLMConfig.engine_kwargs``: the set named fields, then ``extra``."""
        named = self.model_dump(exclude={"extra"}, exclude_none=True)
        return {**named, **copy.deepcopy(self.extra)}


class PlacementGroup(_Strict):
    """How Ray places the engine's workers: one bundle per worker (per GPU)."""

    bundle_per_worker: dict[str, int | float]
    strategy: Literal["PACK", "STRICT_PACK", "SPREAD", "STRICT_SPREAD"] = "PACK"


class ActorOptions(_Strict):
    """Resources of the Serve replica actor that drives the engine."""

    num_cpus: int | float | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, ge=0, description="Bytes.")


class Autoscaling(_Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: int | float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas is larger than max_replicas")
        return self


class Deployment(_Strict):
    autoscaling_config: Autoscaling = Field(default_factory=Autoscaling)
    max_ongoing_requests: PositiveInt | None = None


class RayOptions(_Strict):
    """The Ray side of a profile, which AIM profiles do not have."""

    accelerator_type: str | None = Field(
        default=None, description="Ray accelerator type; defaults to the recipe's GPU's."
    )
    placement_group: PlacementGroup | None = None
    ray_actor_options: ActorOptions = Field(default_factory=ActorOptions)
    deployment: Deployment = Field(default_factory=Deployment)

    def deployment_config(self) -> dict[str, Any]:
        """The Serve deployment options for ``LLMConfig.deployment_config``."""
        config = self.deployment.model_dump(exclude_none=True)
        actor = self.ray_actor_options.model_dump(exclude_none=True)
        return {**config, "ray_actor_options": actor} if actor else config


class Profile(_Strict):
    """How to run the recipe's model on one GPU count."""

    engine_args: EngineArgs
    env: EnvVars = Field(default_factory=dict)
    ray: RayOptions = Field(default_factory=RayOptions)


class Recipe(_Strict):
    """One recipe file: a model on one GPU kind at one precision, with a profile per GPU count.

    ``id``, ``tier`` and ``path`` come from where the file was found, not from its content.
    """

    id: str
    tier: Tier = "custom"
    path: str | None = None
    model_id: str = Field(description="Hugging Face id the recipe is for, or * for any model.")
    served_model_name: str | None = None
    model_source: str | None = Field(
        default=None,
        description="Checkpoint to load when it differs from model_id (e.g. an FP8 one).",
    )
    engine: Literal["vllm"] = "vllm"
    hardware: HardwareKind
    precision: Precision
    metric: Metric | None = Field(default=None, description="None: not tuned for either.")
    maturity: Maturity
    priority: int = Field(default=0, description="Higher wins among recipes of one tier.")
    env: EnvVars = Field(default_factory=dict)
    profiles: dict[PositiveInt, Profile] = Field(min_length=1)

    @model_validator(mode="after")
    def _profiles_fit_hardware(self) -> Recipe:
        for count, profile in self.profiles.items():
            problem = _profile_problem(self.hardware, count, profile)
            if problem:
                raise ValueError(f"profile {count}: {problem}")
        return self

    @property
    def gpu_counts(self) -> list[int]:
        return sorted(self.profiles)

    @property
    def is_general(self) -> bool:
        return self.model_id == ANY_MODEL

    def matches_model(self, model_id: str) -> bool:
        """Whether this recipe serves ``model_id`` (case-insensitive; * matches any)."""
        names = (self.model_id, self.served_model_name, self.model_source)
        wanted = model_id.lower()
        return self.is_general or any(name and name.lower() == wanted for name in names)

    def for_model(self, model_id: str) -> Recipe:
        """A general recipe bound to one model, so that it serves and loads that model."""
        return self.model_copy(update={"model_id": model_id}) if self.is_general else self

    def llm_config(
        self,
        gpu_count: int,
        *,
        model_source: str | None = None,
        model_id: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``LLMConfig`` dict for the profile of ``gpu_count`` GPUs.

        ``model_id`` is the id clients send (default: ``served_model_name``, else the recipe's
        model id); ``model_source`` the weights to load (default: the recipe's
        ``model_source``, else its model id). ``overrides`` is merged in last, key by key,
        e.g. ``{"engine_kwargs": {"max_model_len": 8192}}``. The result is a plain dict
        for ``ray.serve.llm.LLMConfig.model_validate``.
        """
        profile = self._profile(gpu_count)
        served = model_id or self.served_model_name or self.model_id
        if served == ANY_MODEL:
            raise RecipeError(f"{self.id} is a general recipe: give the model id to serve")
        loaded = model_source or self.model_source or (served if self.is_general else self.model_id)
        config: dict[str, Any] = {
            "model_loading_config": {"model_id": served, "model_source": loaded},
            "engine_kwargs": profile.engine_args.engine_kwargs(),
            "runtime_env": {"env_vars": {**self.env, **profile.env}},
            "deployment_config": profile.ray.deployment_config(),
            **self._accelerator(profile),
        }
        return deep_merge(config, overrides or {})

    def tool_call_parser(self, gpu_count: int) -> str | None:
        """The parser vLLM reads this profile's tool calls with; None: it calls no tools."""
        return tool_call_parser(self._profile(gpu_count).engine_args.engine_kwargs())

    def window(self, gpu_count: int) -> int | None:
        """The profile's ``max_model_len``; None: vLLM takes the model's own."""
        return self._profile(gpu_count).engine_args.max_model_len

    def _profile(self, gpu_count: int) -> Profile:
        if gpu_count not in self.profiles:
            counts = "/".join(map(str, self.gpu_counts))
            raise RecipeError(f"{self.id} has no profile for {gpu_count} GPUs (it has {counts})")
        return self.profiles[gpu_count]

    def _accelerator(self, profile: Profile) -> dict[str, Any]:
        ray = profile.ray
        placement = ray.placement_group.model_dump() if ray.placement_group else None
        placement_config = {"placement_group_config": placement} if placement else {}
        if self.hardware == "CPU":
            return {"accelerator_config": {"kind": "cpu"}, **placement_config}
        accelerator = ray.accelerator_type or RAY_ACCELERATOR_TYPES[self.hardware][0]
        return {"accelerator_type": accelerator, **placement_config}


def tool_call_parser(engine_kwargs: dict[str, Any]) -> str | None:
    """What makes vLLM call tools: ``enable_auto_tool_choice`` with a ``tool_call_parser``."""
    if engine_kwargs.get("enable_auto_tool_choice"):
        return engine_kwargs.get("tool_call_parser")
    return None


def _profile_problem(hardware: str, count: int, profile: Profile) -> str | None:
    args, ray = profile.engine_args, profile.ray
    tp = args.tensor_parallel_size
    if tp is not None and tp != count:
        return f"tensor_parallel_size is {tp} but the profile is for {count} GPUs"
    if hardware == "CPU":
        return _cpu_profile_problem(ray)
    if tp is None:
        return "set engine_args.tensor_parallel_size (it must equal the GPU count)"
    if args.max_num_seqs is None:
        # Ray Serve LLM once left it at 128 where vLLM picks 1024 on MI300X: be explicit.
        return "set engine_args.max_num_seqs explicitly"
    allowed = RAY_ACCELERATOR_TYPES[hardware]
    if ray.accelerator_type is not None and ray.accelerator_type not in allowed:
        return f"accelerator_type {ray.accelerator_type} is not a {hardware}: use {allowed[0]}"
    if ray.placement_group and ray.placement_group.bundle_per_worker.get("GPU", 0) <= 0:
        return "placement_group.bundle_per_worker needs a GPU for each worker"
    return None


def _cpu_profile_problem(ray: RayOptions) -> str | None:
    if ray.accelerator_type is not None:
        return "a CPU recipe has no accelerator_type"
    if ray.placement_group and ray.placement_group.bundle_per_worker.get("GPU", 0) > 0:
        return "a CPU recipe's placement group must not ask for GPUs"
    return None
