"""``aim-ray serve run``: Ray's ``serve run`` with the Ray environment aim-ray is built for.

``serve run CONFIG`` starts a local Ray cluster in its own process, so the cluster's
environment is the command's. This command adds what ``aim_ray.deploy.cluster_env`` lists
for a local cluster (unless already set), runs ``serve run`` with every argument unchanged,
passes SIGTERM on to it (Ctrl-C reaches it directly), and once it has exited stops an
HAProxy that outlived it, so the Serve port is free for the next run. A cluster that is
already running keeps the environment it was started with.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from aim_ray.cli.output import console
from aim_ray.deploy.cluster_env import (
    FAST_PATH_ENV,
    local_cluster_env,
    new_haproxy_dir,
    stop_leftover_haproxy,
)

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
    haproxy = new_haproxy_dir()
    env = local_cluster_env(os.environ, os.cpu_count(), haproxy)
    added = {k: env[k] for k in FAST_PATH_ENV if k not in os.environ}
    if added:
        settings = " ".join(f"{k}={v}" for k, v in added.items())
        console.print(f"aim-ray: serve run with {settings}", highlight=False)
    child = subprocess.Popen([serve, "run", config, *ctx.args], env=env)
    # Ctrl-C goes to the whole foreground group, so serve run has it already.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        stop_leftover_haproxy(env, haproxy)
        shutil.rmtree(haproxy, ignore_errors=True)
    raise typer.Exit(code)


def _serve_executable() -> str:
    # The one installed beside this Python first: the venv's, matching this aim-ray.
    beside = Path(sys.executable).with_name("serve")
    found = str(beside) if beside.exists() else shutil.which("serve")
    if found is None:
        console.print("[bold red]error:[/] Ray's `serve` command is not installed here")
        raise typer.Exit(2)
    return found
