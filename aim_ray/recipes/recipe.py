"""Recipes: how to run one model on one kind of hardware, and which recipe to choose.

Owns the recipe schema (pydantic models of the YAML files), loading recipes from the search
path, ranking and selecting one for a model and hardware, and turning a chosen profile into
the dict ``ray.serve.llm.LLMConfig.model_validate`` accepts.

A recipe follows AMD's AIM *profile* conventions (``amd-enterprise-ai/aim-build``): one file
per model, GPU, precision and metric, named ``vllm-<gpu>-<precision>-<metric>.yaml`` under
``<org>/<model>/``, general fallbacks under ``general/``, and the search order custom →
model-specific → general. Unlike an AIM profile, one file holds a profile per GPU count, and
each profile carries a ``ray`` block (accelerator type, placement group, actor options, Serve
deployment) because Ray, not vLLM's ``mp`` executor, places the engine's workers.

Where the shipped recipes live: the ``recipes/`` directory at the top of the source tree,
found relative to this package (source checkouts and ``pip install -e .``), or
``aim_ray/_recipes`` inside an installed package when the build copies it there.
"""

from __future__ import annotations

import copy
import importlib.resources
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    model_validator,
)

from aim_ray.errors import AimRayError
from aim_ray.recipes.hardware import (
    RAY_ACCELERATOR_TYPES,
    Hardware,
    HardwareKind,
    hardware_from_name,
)

RECIPES_PATH_ENV = "AIM_RAY_RECIPES_PATH"
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
_TIER_ORDER = {"custom": 0, "model": 1, "general": 2}
# AIM's order for precision "auto" (aim_runtime/profile_selector.py): the lowest precision
# first. mxfp4 ranks with fp4 and GGUF q4 with int4, their closest AIM classes.
_PRECISION_ORDER = {
    "int4": 1,
    "q4": 1,
    "int8": 2,
    "fp4": 3,
    "mxfp4": 3,
    "fp8": 4,
    "fp16": 5,
    "bf16": 6,
    "fp32": 7,
}
_MATURITY_ORDER = {"optimized": 1, "preview": 2, "unoptimized": 3, "general": 4}
_PREFERRED_METRIC = "latency"  # AIM resolves metric "auto" to latency.

# Ray assigns each worker its GPUs through HIP_VISIBLE_DEVICES, and raises outright when
# ROCR_VISIBLE_DEVICES is set (ray/_private/accelerators/amd_gpu.py).
_FORBIDDEN_ENV = {
    "ROCR_VISIBLE_DEVICES": "Ray raises when it is set; Ray assigns GPUs itself",
    "HIP_VISIBLE_DEVICES": "Ray assigns each worker its GPUs through it",
    "CUDA_VISIBLE_DEVICES": "Ray assigns each worker its GPUs",
    "VLLM_USE_TRITON_FLASH_ATTN": "a deprecated vLLM V0 variable the V1 engine ignores",
}
_LOADER_KEYS = ("id", "tier", "path")


class RecipeError(AimRayError):
    """A recipe file that cannot be loaded, or a recipe asked for something it lacks."""


class NoRecipeError(AimRayError):
    """No recipe fits the model, hardware, GPU count, precision and metric asked for."""


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
        return _deep_merge(config, overrides or {})

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


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --------------------------------------------------------------------------- loading


class Catalog(BaseModel):
    """Every recipe on the search path, in search order, with the files custom ones shadow."""

    recipes: list[Recipe]
    shadowed: dict[str, str] = Field(
        default_factory=dict, description="Recipe id → the later file it overrode."
    )

    def get(self, recipe_id: str) -> Recipe:
        for recipe in self.recipes:
            if recipe.id == recipe_id:
                return recipe
        raise RecipeError(f"no recipe {recipe_id!r}: see `aim-ray recipes list`")

    def matching(self, model_id: str | None = None, hardware: str | None = None) -> list[Recipe]:
        """Recipes that can serve ``model_id`` (general ones included) on a ``hardware`` kind."""
        return [
            recipe
            for recipe in self.recipes
            if (model_id is None or recipe.matches_model(model_id))
            and (hardware is None or recipe.hardware == hardware)
        ]

    def count(self, tier: Tier) -> int:
        return sum(recipe.tier == tier for recipe in self.recipes)


def packaged_recipes_dir() -> Path:
    """The shipped recipes: ``aim_ray/_recipes`` if installed there, else ``<repo>/recipes``."""
    installed = importlib.resources.files("aim_ray") / "_recipes"
    if installed.is_dir():
        return Path(str(installed))
    source = Path(__file__).resolve().parents[2] / "recipes"
    if source.is_dir():
        return source
    raise RecipeError(
        f"the shipped recipes are missing (looked in {installed} and {source}); "
        f"install aim-ray from a source checkout or set {RECIPES_PATH_ENV}"
    )


def custom_recipe_dirs() -> list[Path]:
    """The custom recipe directories named by ``AIM_RAY_RECIPES_PATH``, in order."""
    value = os.environ.get(RECIPES_PATH_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


def load_catalog(custom_dirs: Sequence[Path] | None = None) -> Catalog:
    """Load the custom (default: from ``AIM_RAY_RECIPES_PATH``), shipped and general recipes.

    A recipe id found twice keeps its first file, so a custom file with the id of a shipped
    one replaces it, as in AIM.
    """
    dirs = custom_recipe_dirs() if custom_dirs is None else list(custom_dirs)
    packaged = packaged_recipes_dir()
    general = packaged / "general"
    sources: list[tuple[Path, Tier, Iterable[Path]]] = [
        (directory, "custom", _yaml_files(_existing(directory))) for directory in dirs
    ]
    model_files = [p for p in _yaml_files(packaged) if general not in p.parents]
    sources += [(packaged, "model", model_files), (packaged, "general", _yaml_files(general))]
    recipes: dict[str, Recipe] = {}
    shadowed: dict[str, str] = {}
    for root, tier, files in sources:
        for path in files:
            recipe = load_recipe_file(path, root=root, tier=tier)
            if recipe.id in recipes:
                shadowed[recipe.id] = str(path)
            else:
                recipes[recipe.id] = recipe
    return Catalog(recipes=list(recipes.values()), shadowed=shadowed)


def load_recipe_file(path: Path, *, root: Path, tier: Tier = "custom") -> Recipe:
    """Load and validate one recipe file; its id is its path under ``root`` minus ``.yaml``."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"{path}: cannot read recipe: {exc}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping")
    reserved = [key for key in _LOADER_KEYS if key in data]
    if reserved:
        raise RecipeError(f"{path}: {', '.join(reserved)} come from the file's place; remove")
    recipe_id = path.relative_to(root).with_suffix("").as_posix()
    try:
        recipe = Recipe.model_validate({**data, "id": recipe_id, "tier": tier, "path": str(path)})
    except ValidationError as exc:
        raise RecipeError(f"{path}: {_describe(exc)}") from exc
    _check_file_name(path, recipe)
    return recipe


def _existing(directory: Path) -> Path:
    if not directory.is_dir():
        raise RecipeError(f"{RECIPES_PATH_ENV} names {directory}, which is not a directory")
    return directory


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.yaml")) if directory.is_dir() else []


def _check_file_name(path: Path, recipe: Recipe) -> None:
    stem = f"{recipe.engine}-{recipe.hardware.lower()}-{recipe.precision}"
    expected = f"{stem}-{recipe.metric}" if recipe.metric else stem
    if path.stem != expected:
        raise RecipeError(f"{path}: its content says it should be named {expected}.yaml")


def _describe(exc: ValidationError) -> str:
    """Pydantic errors as ``where: what`` pairs, e.g. ``profiles.2.engine_args.dtype: ...``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


# --------------------------------------------------------------------------- selection


class Selection(BaseModel):
    """The recipe chosen for a model and hardware, the GPU count to use, and why."""

    recipe: Recipe = Field(description="The chosen recipe; a general one is bound to the model.")
    gpu_count: int
    hardware: Hardware
    reasons: list[str]

    def llm_config(
        self,
        *,
        model_source: str | None = None,
        model_id: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``LLMConfig`` dict of the chosen profile (see ``Recipe.llm_config``)."""
        return self.recipe.llm_config(
            self.gpu_count, model_source=model_source, model_id=model_id, overrides=overrides
        )


class _Request(BaseModel):
    model_id: str
    hardware: Hardware
    gpu_count: int | None
    precision: str
    metric: str | None

    @property
    def capacity(self) -> int | None:
        """How many GPUs a profile may use: the CPU runs one engine; None when unknown."""
        if not self.hardware.is_gpu:
            return 1
        return self.hardware.gpu_count or None


def select_recipe(
    model_id: str,
    hardware: Hardware | str,
    *,
    gpu_count: int | None = None,
    precision: str = "auto",
    metric: str | None = None,
    catalog: Catalog | None = None,
) -> Selection:
    """Choose the recipe and GPU count for ``model_id`` on ``hardware``.

    Candidates must serve the model (or any model), be built for the hardware kind, match
    ``precision`` unless it is ``auto``, and match ``metric`` when given. ``gpu_count`` picks
    that exact profile; without it, the largest profile that fits the detected GPUs (the
    smallest when the count is unknown, e.g. hardware given by name). Ranking, as in AIM:
    tier (custom → model-specific → general), then latency before throughput when no metric
    is asked for, then priority (higher first), then precision on ``auto`` (lower first:
    int4, int8, fp4, fp8, fp16, bf16, fp32), then maturity (optimized → preview →
    unoptimized → general). Raises ``NoRecipeError`` listing what would fit otherwise.
    """
    if isinstance(hardware, str):
        hardware = hardware_from_name(hardware)
    precision = _choice(precision, ("auto", *_PRECISION_ORDER), "precision")
    metric = _choice(metric, ("latency", "throughput"), "metric") if metric else None
    catalog = catalog or load_catalog()
    request = _Request(
        model_id=model_id,
        hardware=hardware,
        gpu_count=gpu_count,
        precision=precision,
        metric=metric,
    )
    relevant = catalog.matching(model_id)
    verdicts = [(recipe, _mismatch(recipe, request)) for recipe in relevant]
    fitting = sorted(
        (recipe for recipe, problem in verdicts if problem is None),
        key=lambda recipe: _rank_key(recipe, request),
    )
    if not fitting:
        raise NoRecipeError(_no_recipe_message(request, relevant))
    chosen = fitting[0]
    count = _pick_gpu_count(chosen, request)
    assert count is not None  # _mismatch rejected recipes without a usable profile
    reasons = _reasons(request, catalog, chosen, count, fitting[1:], verdicts)
    return Selection(
        recipe=chosen.for_model(model_id), gpu_count=count, hardware=hardware, reasons=reasons
    )


def _choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value.lower() not in allowed:
        raise RecipeError(f"unknown {what} {value!r}: expected one of {', '.join(allowed)}")
    return value.lower()


def _mismatch(recipe: Recipe, request: _Request) -> str | None:
    """Why ``recipe`` cannot serve the request, or None when it can."""
    if recipe.hardware != request.hardware.kind:
        return f"built for {recipe.hardware}, not {request.hardware.kind}"
    if request.precision != "auto" and recipe.precision != request.precision:
        return f"precision {recipe.precision}, not {request.precision}"
    if request.metric and recipe.metric not in (None, request.metric):
        return f"tuned for {recipe.metric}, not {request.metric}"
    if _pick_gpu_count(recipe, request) is None:
        return f"has profiles for {_counts(recipe)} GPUs, none for {_wanted_gpus(request)}"
    return None


def _pick_gpu_count(recipe: Recipe, request: _Request) -> int | None:
    counts = recipe.gpu_counts
    if request.gpu_count is not None:
        return request.gpu_count if request.gpu_count in counts else None
    if request.capacity is None:
        return counts[0]
    fitting = [count for count in counts if count <= request.capacity]
    return fitting[-1] if fitting else None


def _emulated_on_cpu(recipe: Recipe, hardware: Hardware) -> bool:
    """A bf16 recipe on a CPU known to lack native bf16: its matmuls would fall back."""
    return recipe.precision == "bf16" and hardware.native_bf16 is False


def _rank_key(recipe: Recipe, request: _Request) -> tuple:
    auto = request.precision == "auto"
    precision = _PRECISION_ORDER[recipe.precision] if auto else 0
    emulated = int(auto and _emulated_on_cpu(recipe, request.hardware))
    metric = 0 if request.metric or recipe.metric in (None, _PREFERRED_METRIC) else 1
    return (
        _TIER_ORDER[recipe.tier],
        metric,
        -recipe.priority,
        emulated,
        precision,
        _MATURITY_ORDER[recipe.maturity],
        recipe.id,
    )


_RANK_EXPLANATIONS = (
    "its tier ({}) comes first in the search order",
    "latency is preferred when no metric is asked for",
    "higher priority ({})",
    "this CPU ({}) has no native bf16 (avx512_bf16 or amx_bf16), so bf16 matmuls fall back "
    "and run slower than fp32",
    "lower precision ({}) is preferred on auto",
    "more mature ({})",
    "its id sorts first",
)


def _why_first(winner: Recipe, other: Recipe, request: _Request) -> str:
    """The rank key that put ``winner`` before ``other``, in words."""
    values = (
        TIER_LABELS[winner.tier],
        winner.metric,
        winner.priority,
        request.hardware.cpu_isa,
        winner.precision,
        winner.maturity,
        winner.id,
    )
    pairs = zip(_rank_key(winner, request), _rank_key(other, request), strict=True)
    for index, (mine, theirs) in enumerate(pairs):
        if mine != theirs:
            return _RANK_EXPLANATIONS[index].format(values[index])
    return "they rank equal"


def _reasons(
    request: _Request,
    catalog: Catalog,
    chosen: Recipe,
    count: int,
    runners_up: list[Recipe],
    verdicts: list[tuple[Recipe, str | None]],
) -> list[str]:
    reasons = [
        _hardware_reason(request.hardware),
        "search order: custom ({}) → model-specific ({}) → general ({})".format(
            catalog.count("custom"), catalog.count("model"), catalog.count("general")
        ),
        f"chose {chosen.id}: {TIER_LABELS[chosen.tier]} tier, priority {chosen.priority}, "
        f"precision {chosen.precision}, maturity {chosen.maturity}, "
        f"metric {chosen.metric or 'any'}",
        _gpu_reason(chosen, count, request),
    ]
    reasons += [
        f"ranked above {other.id}: {_why_first(chosen, other, request)}" for other in runners_up
    ]
    reasons += [f"rejected {recipe.id}: {problem}" for recipe, problem in verdicts if problem]
    reasons += [
        f"custom {recipe_id} overrides {path}"
        for recipe_id, path in catalog.shadowed.items()
        if recipe_id == chosen.id
    ]
    return reasons


def _hardware_reason(hardware: Hardware) -> str:
    if not hardware.is_gpu:
        if hardware.cpu_isa is None:
            return f"hardware: CPU (from {hardware.source})"
        bf16 = "native bf16" if hardware.native_bf16 else "no native bf16"
        return f"hardware: CPU with {hardware.cpu_isa}, {bf16} (from {hardware.source})"
    if hardware.gpu_count == 0:
        return f"hardware: {hardware.kind}, GPU count not known (from {hardware.source})"
    return f"hardware: {hardware.gpu_count} x {hardware.kind} (from {hardware.source})"


def _gpu_reason(recipe: Recipe, count: int, request: _Request) -> str:
    if request.gpu_count is not None:
        return f"GPU count: {count}, as asked"
    if not request.hardware.is_gpu:
        return "GPU count: none; the CPU profile runs one engine per replica"
    if request.capacity is None:
        return (
            f"GPU count: {count}, the smallest profile, since the number of GPUs is not known "
            f"(profiles: {_counts(recipe)}; pass a GPU count to choose)"
        )
    return f"GPU count: {count}, the largest profile that fits {request.capacity} GPU(s)"


def _no_recipe_message(request: _Request, relevant: list[Recipe]) -> str:
    asked = (
        f"no recipe for {request.model_id} on {request.hardware.kind} "
        f"(GPUs: {_wanted_gpus(request)}, precision {request.precision}, "
        f"metric {request.metric or 'any'})"
    )
    if not relevant:
        return f"{asked}; no recipe serves this model and there is no general fallback"
    options = "; ".join(_describe_recipe(recipe) for recipe in relevant)
    return f"{asked}; would fit: {options}"


def _describe_recipe(recipe: Recipe) -> str:
    model = "any model" if recipe.is_general else recipe.model_id
    metric = f", {recipe.metric}" if recipe.metric else ""
    return (
        f"{recipe.id} ({model} on {recipe.hardware}, {recipe.precision}{metric}, "
        f"{_counts(recipe)} GPUs)"
    )


def _counts(recipe: Recipe) -> str:
    return "/".join(map(str, recipe.gpu_counts))


def _wanted_gpus(request: _Request) -> str:
    if not request.hardware.is_gpu:
        return "none"
    if request.gpu_count is not None:
        return f"exactly {request.gpu_count}"
    if request.capacity is None:
        return "any number"
    return f"at most {request.capacity}"
