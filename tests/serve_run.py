"""``aim-ray serve run`` as a user runs it, for the tests that start their own cluster:
its environment without the session cluster's ties, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

EXIT_TIMEOUT_S = 90


def own_cluster_env() -> dict[str, str]:
    """The suite's environment without what ties it to the session's cluster."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RAY_SERVE_HAPROXY_") and k != "RAY_ADDRESS"
    }


def start(
    config: Path, cwd: Path, output: IO[bytes] | None = None, *, background: bool = False
) -> subprocess.Popen[bytes]:
    """``background``: started the way a shell starts a job with ``&``, SIGINT ignored."""
    aim_ray = Path(sys.executable).with_name("aim-ray")
    return subprocess.Popen(
        [str(aim_ray), "serve", "run", str(config)],
        cwd=cwd,
        env=own_cluster_env(),
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        start_new_session=True,  # a process group of its own, as in a terminal
        preexec_fn=_ignore_sigint if background else None,
    )


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ctrl_c(child: subprocess.Popen[bytes]) -> None:
    os.killpg(child.pid, signal.SIGINT)  # what the terminal does: the foreground group


def stop(child: subprocess.Popen[bytes]) -> None:
    """End a run that is still going, as a user would: Ctrl-C, then harder."""
    if child.poll() is not None:
        return
    ctrl_c(child)
    try:
        child.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.terminate()
        try:
            child.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
