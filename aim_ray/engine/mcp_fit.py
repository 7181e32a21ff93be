"""Whether an ``mcp:`` section can work on the models' recipes.

A recipe says what its model can do for MCP through its engine args: its window
(``max_model_len``) and whether it calls tools (``enable_auto_tool_choice`` with a
``tool_call_parser``), after the model entry's own ``engine_kwargs``. Context must fit the
smallest window with ``ANSWER_RESERVE_TOKENS`` left for the question and the answer, and
registry tools need models that can call them. ``aim-ray config validate`` reports each
mismatch at its place in the file; ``build_app`` refuses them before anything starts. A
``context.max_length`` left unset becomes the largest budget that fits. Import-light.
"""

from __future__ import annotations

from dataclasses import dataclass

from aim_ray.config.app import AppArgs, ModelSpec
from aim_ray.config.mcp import MCPConfig
from aim_ray.engine.llm_config import llm_config_dict
from aim_ray.errors import AimRayError
from aim_ray.recipes.schema import tool_call_parser
from aim_ray.recipes.selection import Selection

ANSWER_RESERVE_TOKENS = 512


@dataclass(frozen=True)
class ModelAbilities:
    """What one model entry can do for MCP; ``window`` None: vLLM takes the model's own."""

    name: str
    recipe: str
    window: int | None
    tool_call_parser: str | None


@dataclass(frozen=True)
class Mismatch:
    """A problem with the ``mcp:`` section, at ``loc`` inside the application args."""

    loc: tuple[str | int, ...]
    message: str


def model_abilities(spec: ModelSpec, selection: Selection) -> ModelAbilities:
    config = llm_config_dict(spec, selection)
    kwargs = config.get("engine_kwargs", {})
    return ModelAbilities(
        name=config["model_loading_config"]["model_id"],
        recipe=selection.recipe.id,
        window=kwargs.get("max_model_len"),
        tool_call_parser=tool_call_parser(kwargs),
    )


def mcp_mismatches(args: AppArgs, selections: list[Selection]) -> list[Mismatch]:
    """Every way the ``mcp:`` section cannot work on these models."""
    return _mismatches(args, _abilities(args, selections))


def _abilities(args: AppArgs, selections: list[Selection]) -> list[ModelAbilities]:
    return [model_abilities(s, sel) for s, sel in zip(args.models, selections, strict=True)]


def _mismatches(args: AppArgs, abilities: list[ModelAbilities]) -> list[Mismatch]:
    mcp = args.mcp
    if mcp is None or not mcp.enabled:
        return []
    found = []
    if "max_length" in mcp.context.model_fields_set:
        found += _context_too_long(mcp.context.max_length, abilities)
    if any(tool.enabled for tool in mcp.tools):
        found += [
            Mismatch(
                ("mcp", "tools"),
                f"model {model.name!r} (recipe {model.recipe}) cannot call the registry "
                "tools: its engine args set no tool_call_parser with enable_auto_tool_choice; "
                "choose a recipe that does (`aim-ray recipes select --mcp`) or set both in "
                "the model's engine_kwargs",
            )
            for model in abilities
            if model.tool_call_parser is None
        ]
    return found


def _context_too_long(budget: int, abilities: list[ModelAbilities]) -> list[Mismatch]:
    return [
        Mismatch(
            ("mcp", "context", "max_length"),
            f"{budget} context tokens plus {ANSWER_RESERVE_TOKENS} for the question and the "
            f"answer exceed model {model.name!r}'s window of {model.window} tokens (recipe "
            f"{model.recipe}); set at most {model.window - ANSWER_RESERVE_TOKENS}",
        )
        for model in abilities
        if model.window is not None and budget + ANSWER_RESERVE_TOKENS > model.window
    ]


def fitted(mcp: MCPConfig, abilities: list[ModelAbilities]) -> MCPConfig:
    """The section with an unset ``context.max_length`` lowered to fit every window."""
    windows = [model.window for model in abilities if model.window is not None]
    if "max_length" in mcp.context.model_fields_set or not windows:
        return mcp
    budget = min(mcp.context.max_length, min(windows) - ANSWER_RESERVE_TOKENS)
    context = mcp.context.model_copy(update={"max_length": max(budget, 64)})
    return mcp.model_copy(update={"context": context})


def fit_mcp(args: AppArgs, selections: list[Selection]) -> AppArgs:
    """The args with their ``mcp:`` section checked against the models and fitted to them;
    ``MCPMismatchError`` lists every mismatch."""
    abilities = _abilities(args, selections)
    mismatches = _mismatches(args, abilities)
    if mismatches:
        raise MCPMismatchError(mismatches)
    if args.mcp is None:
        return args
    return args.model_copy(update={"mcp": fitted(args.mcp, abilities)})


class MCPMismatchError(AimRayError):
    """The ``mcp:`` section cannot work on the models' recipes."""

    def __init__(self, mismatches: list[Mismatch]) -> None:
        self.mismatches = mismatches
        lines = [f"args.{'.'.join(map(str, m.loc))}: {m.message}" for m in mismatches]
        super().__init__("the mcp section does not fit the models:\n  " + "\n  ".join(lines))
