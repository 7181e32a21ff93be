"""``aim-ray config validate`` and ``aim-ray serve-config render``: Serve configs before a deploy.

Both use the import-light config layer and ``aim_ray.deploy.serve_config``: neither loads
vLLM; validation loads Ray Serve's own config schema, only when it runs. They are imported
inside the commands so that the CLI's start and ``--help`` do not load the schemas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aim_ray.cli.output import report_problems, size, user_errors

config_app = typer.Typer(help="Check Serve configs before a deploy.", no_args_is_help=True)
serve_config_app = typer.Typer(help="Write Serve configs from recipes.", no_args_is_help=True)


@config_app.command("validate")
def validate_config(
    path: Annotated[Path, typer.Argument(help="A Serve config (serve run / serveConfigV2).")],
) -> None:
    """Report every problem in a Serve config with its location; exit 1 if there are any."""
    from aim_ray.deploy.serve_config import validate_serve_config

    with user_errors():
        problems = validate_serve_config(path)
    report_problems(path, problems)


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
    mcp_config: Annotated[
        Path | None,
        typer.Option(
            help="An `mcp:` file, checked against the recipe and referenced as the app's "
            "mcp_config_file (relative to the written config)."
        ),
    ] = None,
) -> None:
    """Write a Serve config that runs aim-ray with the recipe chosen for MODEL."""
    from aim_ray.config.app import AppArgs, ModelSpec
    from aim_ray.deploy.serve_config import (
        dump_yaml,
        mcp_file_reference,
        pin_model,
        render_serve_config,
    )

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
        pinned, selection = pin_model(spec)
        args = AppArgs(models=[pinned])
        if mcp_config is not None:
            reference = mcp_file_reference(mcp_config, args, selection, output)
            args = args.model_copy(update={"mcp_config_file": reference})
    config = render_serve_config(args, host=host, port=port)
    text = dump_yaml(
        config, f"# Written by `aim-ray serve-config render` ({selection.recipe.id}).\n"
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    typer.echo(
        f"wrote {output} ({selection.recipe.id}, {size(pinned.hardware, selection.gpu_count)})"
    )
