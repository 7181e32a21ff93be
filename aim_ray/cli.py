"""The ``aim-ray`` command line: one tool for recipes, configs, rendering and MCP.

Owns the typer app, its sub-apps and how errors reach the user: an ``AimRayError`` prints
one line and exits with code 2, never a traceback. Commands stay thin; the logic lives in
the modules they call (``aim_ray.recipe``, ``aim_ray.hardware``, ...). Add a sub-app with
``app.add_typer(<name>_app, name="<name>")`` and wrap its work in ``user_errors()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Column, Table

from aim_ray.errors import AimRayError
from aim_ray.hardware import resolve_hardware
from aim_ray.models import DEFAULT_EMBEDDED, prepare_embedded
from aim_ray.recipe import TIER_LABELS, Recipe, Selection, load_catalog, select_recipe

app = typer.Typer(
    help="LLM inference for AMD Instinct GPUs as a Ray Serve application.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
recipes_app = typer.Typer(
    help="Recipes: how each model runs on each GPU, and which one fits.", no_args_is_help=True
)
app.add_typer(recipes_app, name="recipes")

console = Console()

_MODEL_PLACEHOLDER = "<model-id>"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an ``AimRayError`` into a one-line message on stderr and exit code 2."""
    try:
        yield
    except AimRayError as exc:
        # typer.echo, not rich: rich would wrap a long message onto several lines.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


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
        console.print(f"[bold]LLMConfig for {_size(recipe.hardware, count)}:[/bold]")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Choose the recipe and GPU count for a model, and explain the choice."""
    with user_errors():
        found = resolve_hardware(hardware)
        selection = select_recipe(model, found, gpu_count=gpus, precision=precision, metric=metric)
        config = selection.llm_config()
    if as_json:
        typer.echo(json.dumps(_selection_json(selection, config), indent=2, ensure_ascii=False))
        return
    recipe = selection.recipe
    console.print(
        f"[bold]{recipe.id}[/bold] on {_size(recipe.hardware, selection.gpu_count)} "
        f"({TIER_LABELS[recipe.tier]}, {recipe.path})"
    )
    for reason in selection.reasons:
        console.print(f"  - {reason}", highlight=False, markup=False)
    console.print("[bold]LLMConfig:[/bold]")
    typer.echo(yaml.safe_dump(config, sort_keys=False))


# ------------------------------------------------------------ models, config, serve-config

models_app = typer.Typer(help="Prepare and locate model weights.", no_args_is_help=True)
config_app = typer.Typer(help="Check Serve configs before a deploy.", no_args_is_help=True)
serve_config_app = typer.Typer(help="Write Serve configs from recipes.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.add_typer(serve_config_app, name="serve-config")


@models_app.command("prepare")
def prepare_model(
    name: Annotated[str, typer.Argument(help="The embedded model to prepare.")] = DEFAULT_EMBEDDED,
) -> None:
    """Turn the packaged GGUF into a cached Hugging Face folder (once; atomic)."""
    with user_errors(), console.status(f"preparing {name}") as status:
        folder = prepare_embedded(name, progress=lambda message: status.update(message))
    console.print(f"[green]ready[/green] {folder}", highlight=False)


@config_app.command("validate")
def validate_config(
    path: Annotated[Path, typer.Argument(help="A Serve config (serve run / serveConfigV2).")],
) -> None:
    """Report every problem in a Serve config with its location; exit 1 if there are any."""
    # Imported here: these pull in ray.serve.llm and vLLM (~10 s), which --help need not pay.
    from aim_ray.config import validate_serve_config

    with user_errors():
        problems = validate_serve_config(path)
    for problem in problems:
        typer.echo(f"{path}: {problem}", err=True)
    if problems:
        raise typer.Exit(code=1)
    typer.echo(f"{path}: valid")


@serve_config_app.command("render")
def render_config(
    model: Annotated[str, typer.Option(help="The model id to serve, as in the recipes.")],
    hardware: Annotated[str, typer.Option(help="MI300X, MI325X, MI355X, CPU or auto.")] = "auto",
    gpus: Annotated[int | None, typer.Option(min=1, help="GPUs a replica (default: fit).")] = None,
    precision: Annotated[str, typer.Option(help="auto, bf16, fp8, ...")] = "auto",
    metric: Annotated[str | None, typer.Option(help="latency or throughput.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Weights: embedded:<name>, a folder or a hub id.")
    ] = None,
    served_name: Annotated[str | None, typer.Option(help="The id clients send.")] = None,
    host: Annotated[str, typer.Option(help="Serve proxy host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Serve proxy port.")] = 8000,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Write a Serve config that runs aim-ray with the recipe chosen for MODEL."""
    from aim_ray.app import AppArgs
    from aim_ray.config import dump_yaml, render_serve_config
    from aim_ray.engine import ModelSpec, choose_recipe

    with user_errors():
        spec = ModelSpec(
            model_id=model,
            source=source,
            served_name=served_name,
            hardware=hardware,
            gpus=gpus,
            precision=precision,
            metric=metric,
        )
        selection = choose_recipe(spec)
    # Pin what was chosen, so the file deploys the same way wherever it is run.
    pinned = spec.model_copy(
        update={
            "hardware": selection.hardware.kind,
            "gpus": selection.gpu_count if selection.hardware.is_gpu else None,
        }
    )
    config = render_serve_config(AppArgs(models=[pinned]), host=host, port=port)
    text = dump_yaml(
        config, f"# Written by `aim-ray serve-config render` ({selection.recipe.id}).\n"
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    typer.echo(
        f"wrote {output} ({selection.recipe.id}, {_size(pinned.hardware, selection.gpu_count)})"
    )


def main() -> None:
    """Console-script entry point (``aim-ray``)."""
    app()


def _size(hardware: str, gpu_count: int) -> str:
    return "the CPU" if hardware == "CPU" else f"{gpu_count} x {hardware}"


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
