"""``aim-ray recipes list/show/select``: which recipes exist, what one holds, which one fits.

Owns the recipe table and the JSON shape of a selection; the choosing itself lives in
``aim_ray.recipes``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Column, Table

from aim_ray.cli.output import console, size, user_errors
from aim_ray.recipes.catalog import load_catalog
from aim_ray.recipes.hardware import resolve_hardware
from aim_ray.recipes.schema import TIER_LABELS, Recipe
from aim_ray.recipes.selection import Selection, select_recipe

recipes_app = typer.Typer(
    help="Recipes: how each model runs on each GPU, and which one fits.", no_args_is_help=True
)

_MODEL_PLACEHOLDER = "<model-id>"


@recipes_app.command("list")
def list_recipes(
    model: Annotated[
        str | None, typer.Option(help="Only recipes that can serve this model id.")
    ] = None,
    hardware: Annotated[
        str | None,
        typer.Option(help="Only recipes for this GPU: MI300X, MI325X, MI355X, CPU, auto."),
    ] = None,
) -> None:
    """List the recipes on the search path, in search order."""
    with user_errors():
        kind = resolve_hardware(hardware).kind if hardware else None
        recipes = load_catalog().matching(model, kind)
    if not recipes:
        typer.echo("no recipe matches")
        return
    console.print(_recipe_table(recipes))


@recipes_app.command("show")
def show_recipe(
    recipe_id: Annotated[str, typer.Argument(help="A recipe id, as `recipes list` prints it.")],
    gpus: Annotated[
        int | None, typer.Option(min=1, help="Only the profile for this GPU count.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="For a general recipe: the model to show it for.")
    ] = None,
) -> None:
    """Show a recipe file and the Ray Serve LLMConfig each of its profiles becomes."""
    with user_errors():
        recipe = load_catalog().get(recipe_id)
        bound = recipe.for_model(model or _MODEL_PLACEHOLDER)
        counts = [gpus] if gpus else recipe.gpu_counts
        configs = {count: bound.llm_config(count) for count in counts}
    console.print(f"[bold]{recipe.id}[/bold] ({TIER_LABELS[recipe.tier]}, {recipe.path})")
    if recipe.path:
        typer.echo(Path(recipe.path).read_text())
    for count, config in configs.items():
        console.print(f"[bold]LLMConfig for {size(recipe.hardware, count)}:[/bold]")
        typer.echo(yaml.safe_dump(config, sort_keys=False))


@recipes_app.command("select")
def select(
    model: Annotated[str, typer.Option(help="The model id to serve, e.g. Qwen/Qwen3-32B.")],
    hardware: Annotated[
        str, typer.Option(help="MI300X, MI325X, MI355X, CPU, or auto to detect.")
    ] = "auto",
    gpus: Annotated[
        int | None, typer.Option(min=1, help="Use exactly this many GPUs a replica.")
    ] = None,
    precision: Annotated[
        str, typer.Option(help="auto (lowest available), or bf16, fp16, fp8, int8, int4, ...")
    ] = "auto",
    metric: Annotated[str | None, typer.Option(help="latency or throughput.")] = None,
    mcp: Annotated[
        bool, typer.Option("--mcp", help="Prefer recipes that can serve MCP (tool calling).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Choose the recipe and GPU count for a model, and explain the choice."""
    with user_errors():
        found = resolve_hardware(hardware)
        selection = select_recipe(
            model, found, gpu_count=gpus, precision=precision, metric=metric, mcp=mcp
        )
        config = selection.llm_config()
    if as_json:
        typer.echo(json.dumps(_selection_json(selection, config), indent=2, ensure_ascii=False))
        return
    recipe = selection.recipe
    console.print(
        f"[bold]{recipe.id}[/bold] on {size(recipe.hardware, selection.gpu_count)} "
        f"({TIER_LABELS[recipe.tier]}, {recipe.path})"
    )
    for reason in selection.reasons:
        console.print(f"  - {reason}", highlight=False, markup=False)
    console.print("[bold]LLMConfig:[/bold]")
    typer.echo(yaml.safe_dump(config, sort_keys=False))


def _recipe_table(recipes: list[Recipe]) -> Table:
    # Fold, not ellipsize, long ids: the id is what `recipes show` needs.
    short = {"no_wrap": True}
    table = Table(
        Column("id", overflow="fold", ratio=2),
        Column("model", overflow="fold", ratio=1),
        Column("hardware", **short),
        Column("precision", **short),
        Column("GPUs", **short),
        Column("metric", **short),
        Column("maturity", **short),
        Column("tier", **short),
    )
    for recipe in recipes:
        table.add_row(
            recipe.id,
            "any" if recipe.is_general else recipe.model_id,
            recipe.hardware,
            recipe.precision,
            "/".join(map(str, recipe.gpu_counts)),
            recipe.metric or "any",
            recipe.maturity,
            recipe.tier,
        )
    return table


def _selection_json(selection: Selection, config: dict[str, Any]) -> dict[str, Any]:
    recipe = selection.recipe
    return {
        "recipe": recipe.id,
        "tier": recipe.tier,
        "path": recipe.path,
        "model_id": recipe.model_id,
        "gpu_count": selection.gpu_count,
        "hardware": selection.hardware.model_dump(),
        "reasons": selection.reasons,
        "llm_config": config,
    }
