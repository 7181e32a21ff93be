"""``aim-ray serve run``: Ray's ``serve run`` with the Ray environment aim-ray is built for.

``serve run CONFIG`` starts a local Ray cluster in its own process, so the cluster's
environment is the command's. This command adds what ``aim_ray.deploy.cluster_env`` lists
for a local cluster (unless already set) and runs ``serve run`` with every argument
unchanged, in a process group of its own: Ray's processes stay in it. Ctrl-C and SIGTERM
go to ``serve run`` alone, which shuts Serve and Ray down in order. Once it has exited,
whatever is left in its group is stopped: a killed ``serve run`` leaves HAProxy holding the
Serve port and Ray's agents running, so the next run could not start. A cluster that is
already running keeps the environment it was started with.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import psutil
import typer

from aim_ray.cli.output import console
from aim_ray.config import SERVE_CONFIG_DIR_ENV
from aim_ray.deploy.cluster_env import FAST_PATH_ENV, local_cluster_env, new_haproxy_dir

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
    # An app's `mcp_config_file` is relative to its serve config; the cluster reads it there.
    env[SERVE_CONFIG_DIR_ENV] = str(Path(config).resolve().parent)
    added = {k: env[k] for k in FAST_PATH_ENV if k not in os.environ}
    if added:
        settings = " ".join(f"{k}={v}" for k, v in added.items())
        console.print(f"aim-ray: serve run with {settings}", highlight=False)
    started: list[subprocess.Popen[bytes]] = []
    # Installed before the start: a started process gets caught signals back at their
    # default, but inherits ignored ones, and a shell ignores SIGINT for a job it runs in
    # the background; `serve run` would then never see the Ctrl-C it is forwarded.
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: _forward(started, signum))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    child = subprocess.Popen([serve, "run", config, *ctx.args], env=env, process_group=0)
    started.append(child)
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        ours = env["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"].startswith(str(haproxy))
        stop_leftovers(child.pid, haproxy if ours else None)
        shutil.rmtree(haproxy, ignore_errors=True)
    raise typer.Exit(code)


def _forward(started: list[subprocess.Popen[bytes]], signum: int) -> None:
    for child in started:
        child.send_signal(signum)


def _serve_executable() -> str:
    # The one installed beside this Python first: the venv's, matching this aim-ray.
    beside = Path(sys.executable).with_name("serve")
    found = str(beside) if beside.exists() else shutil.which("serve")
    if found is None:
        console.print("[bold red]error:[/] Ray's `serve` command is not installed here")
        raise typer.Exit(2)
    return found


def stop_leftovers(serve_run: int, haproxy: Path | None, settle_s: float = 15.0) -> int:
    """Kill what the cluster ``serve run`` (a process group leader) started and left; how
    many processes that was.

    The cluster is ``serve run``'s process group (Ray's own processes and agents) plus the
    processes that carry ``haproxy``, its HAProxy folder, in their environment (Ray's
    workers lead groups of their own; HAProxy is their child). Pass ``None``
    for a folder the user chose: it may be shared. Processes still shutting down get up to
    ``settle_s`` to exit; those whose parent is gone already will not, and are killed at
    once."""
    folder = None if haproxy is None else str(haproxy) + os.sep
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        cluster = _cluster(serve_run, folder)
        if cluster == _orphans(cluster):
            break
        time.sleep(0.5)
    left = _cluster(serve_run, folder)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return len(left)


def _cluster(pgid: int, folder: str | None) -> set[psutil.Process]:
    members = set()
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(process.pid) == pgid or (folder and _carries(process, folder)):
                members.add(process)
    return members


def _carries(process: psutil.Process, folder: str) -> bool:
    """Whether ``folder`` is in the process's environment (HAProxy inherits its parent's)."""
    return any(f"{value}{os.sep}".startswith(folder) for value in process.environ().values())


def _orphans(processes: set[psutil.Process]) -> set[psutil.Process]:
    orphans = set()
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.ppid() == 1:
                orphans.add(process)
    return orphans
