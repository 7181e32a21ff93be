"""``aim-ray models prepare``: turn the packaged embedded model into a servable folder."""

from __future__ import annotations

from typing import Annotated

import typer

from aim_ray.cli.output import console, user_errors
from aim_ray.engine.models import DEFAULT_EMBEDDED, prepare_embedded

models_app = typer.Typer(help="Prepare and locate model weights.", no_args_is_help=True)


@models_app.command("prepare")
def prepare_model(
    name: Annotated[str, typer.Argument(help="The embedded model to prepare.")] = DEFAULT_EMBEDDED,
) -> None:
    """Turn the packaged GGUF into a cached Hugging Face folder (once; atomic)."""
    with user_errors(), console.status(f"preparing {name}") as status:
        folder = prepare_embedded(name, progress=lambda message: status.update(message))
    console.print(f"[green]ready[/green] {folder}", highlight=False)
