"""Recipe selection: which recipe and GPU count serve a model on given hardware, and why.

Owns ``select_recipe``, its ranking (AIM's: tier, metric, priority, precision, maturity, with
a CPU where bf16 does not fit weighed in), and the reasons it gives for its choice and for
every recipe it passed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from aim_ray.errors import AimRayError
from aim_ray.recipes.catalog import Catalog, load_catalog
from aim_ray.recipes.hardware import Hardware, hardware_from_name
from aim_ray.recipes.schema import TIER_LABELS, Recipe, RecipeError

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


class NoRecipeError(AimRayError):
    """No recipe fits the model, hardware, GPU count, precision and metric asked for."""


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
    mcp: bool = False

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
    mcp: bool = False,
) -> Selection:
    """Choose the recipe and GPU count for ``model_id`` on ``hardware``.

    Candidates must serve the model (or any model), be built for the hardware kind, match
    ``precision`` unless it is ``auto``, and match ``metric`` when given. ``gpu_count`` picks
    that exact profile; without it, the largest profile that fits the detected GPUs (the
    smallest when the count is unknown, e.g. hardware given by name). Ranking, as in AIM:
    tier (custom → model-specific → general), then latency before throughput when no metric
    is asked for, then priority (higher first), then precision on ``auto`` (lower first:
    int4, int8, fp4, fp8, fp16, bf16, fp32), then maturity (optimized → preview →
    unoptimized → general). With ``mcp``, recipes whose model calls tools (a tool-call
    parser: what registry tools need) rank before all others. Raises ``NoRecipeError``
    listing what would fit otherwise.
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
        mcp=mcp,
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


def _tool_call_parser(recipe: Recipe, request: _Request) -> str | None:
    count = _pick_gpu_count(recipe, request)
    return None if count is None else recipe.tool_call_parser(count)


def _mcp_reason(recipe: Recipe, count: int) -> str:
    window = recipe.window(count)
    room = f"a {window}-token window" if window else "the model's own window"
    parser = recipe.tool_call_parser(count)
    if parser is None:
        return (
            f"MCP: no recipe for this model calls tools, so registry tools cannot run on it "
            f"(context still can, within {room})"
        )
    return f"MCP: it calls tools (vLLM's {parser} parser) and has {room} for context"


def _bf16_unfit_on_cpu(recipe: Recipe, hardware: Hardware) -> bool:
    """A bf16 recipe on a CPU where bf16 falls back (slow) or vLLM gets it wrong."""
    return recipe.precision == "bf16" and hardware.bf16_fits is False


def _bf16_unfit_reason(hardware: Hardware) -> str:
    if hardware.native_bf16:
        return (
            f"on this CPU ({hardware.cpu_isa}) vLLM's AMX bf16 kernels answer wrongly, "
            "so bf16 is not chosen"
        )
    return (
        f"this CPU ({hardware.cpu_isa}) has no native bf16 (avx512_bf16 or amx_bf16), "
        "so bf16 matmuls fall back and run slower than fp32"
    )


def _rank_key(recipe: Recipe, request: _Request) -> tuple:
    auto = request.precision == "auto"
    precision = _PRECISION_ORDER[recipe.precision] if auto else 0
    bf16_unfit = int(auto and _bf16_unfit_on_cpu(recipe, request.hardware))
    metric = 0 if request.metric or recipe.metric in (None, _PREFERRED_METRIC) else 1
    return (
        int(request.mcp and _tool_call_parser(recipe, request) is None),
        _TIER_ORDER[recipe.tier],
        metric,
        -recipe.priority,
        bf16_unfit,
        precision,
        _MATURITY_ORDER[recipe.maturity],
        recipe.id,
    )


_RANK_EXPLANATIONS = (
    "its model calls tools (MCP asked for)",
    "its tier ({}) comes first in the search order",
    "latency is preferred when no metric is asked for",
    "higher priority ({})",
    "{}",
    "lower precision ({}) is preferred on auto",
    "more mature ({})",
    "its id sorts first",
)


def _why_first(winner: Recipe, other: Recipe, request: _Request) -> str:
    """The rank key that put ``winner`` before ``other``, in words."""
    values = (
        None,
        TIER_LABELS[winner.tier],
        winner.metric,
        winner.priority,
        _bf16_unfit_reason(request.hardware),
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
    if request.mcp:
        reasons.append(_mcp_reason(chosen, count))
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
        if hardware.native_bf16 and not hardware.bf16_fits:
            bf16 += " that vLLM gets wrong"
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
