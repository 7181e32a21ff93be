"""``aim-ray serve run``: Ray's ``serve run`` with the Ray environment aim-ray is built for.

``serve run CONFIG`` starts a local Ray cluster in its own process, so the cluster's
environment is the command's. This command sets what ``aim_ray.deploy.cluster_env`` lists
(unless already set) and hands over to ``serve run`` with every argument unchanged, so it is
``serve run`` in all but speed. A cluster that is already running keeps the environment it
was started with.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from aim_ray.cli.output import console
from aim_ray.deploy.cluster_env import cluster_env, with_cluster_env

serve_app = typer.Typer(
    help="Run a serve config on a local Ray cluster with aim-ray's Ray settings.",
    no_args_is_help=True,
)


@serve_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(
    ctx: typer.Context,
    config: Annotated[str, typer.Argument(help="The serve config, e.g. serve_configs/local.yaml.")],
) -> None:
    """Ray's `serve run CONFIG [OPTIONS]`, with the Ray fast paths switched on."""
    serve = _serve_executable()
    cores = os.cpu_count()
    added = {k: v for k, v in cluster_env(cores).items() if k not in os.environ}
    if added:
        settings = " ".join(f"{k}={v}" for k, v in added.items())
        console.print(f"aim-ray: serve run with {settings}", highlight=False)
    env = with_cluster_env(os.environ, cores)
    os.execve(serve, [serve, "run", config, *ctx.args], env)


def _serve_executable() -> str:
    # The one installed beside this Python first: the venv's, matching this aim-ray.
    beside = Path(sys.executable).with_name("serve")
    found = str(beside) if beside.exists() else shutil.which("serve")
    if found is None:
        console.print("[bold red]error:[/] Ray's `serve` command is not installed here")
        raise typer.Exit(2)
    return found
