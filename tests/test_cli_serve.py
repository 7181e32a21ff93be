"""``aim-ray serve run``: a real ``serve run``, however it ends, leaves its port free.

With the HAProxy ingress, HAProxy is a child of a Ray worker. When ``serve run`` does not
shut Serve down itself (killed, or its cluster's processes all stopped at once) HAProxy
outlives the cluster and the next run fails to bind the Serve port. The command must stop
it; Ctrl-C, where Serve shuts down on its own, must leave nothing either.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from aim_ray.deploy.cluster_env import HAPROXY_BINARY

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 300
EXIT_TIMEOUT_S = 90
HELLO_APP = """
from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Hello:
    async def __call__(self, request) -> str:
        return "hello"


app = Hello.bind()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _haproxy_pids() -> set[int]:
    pids = set()
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0].endswith(HAPROXY_BINARY):
            pids.add(process.pid)
    return pids


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _own_cluster_env() -> dict[str, str]:
    """The suite's environment without what ties it to the session's cluster."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RAY_SERVE_HAPROXY_") and k != "RAY_ADDRESS"
    }


def _wait_until_serving(url: str, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert child.poll() is None, f"aim-ray serve run exited early with {child.returncode}"
        try:
            if httpx.get(url, timeout=5).text == "hello":
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(1)
    pytest.fail(f"{url} did not answer within {READY_TIMEOUT_S}s")


def _ctrl_c(wrapper: subprocess.Popen[bytes]) -> None:
    os.killpg(wrapper.pid, signal.SIGINT)  # the terminal's whole foreground group


def _serve_run_killed(wrapper: subprocess.Popen[bytes]) -> None:
    (serve_run,) = psutil.Process(wrapper.pid).children()
    serve_run.kill()  # no shutdown of its own: what an OOM kill or a crash leaves


@pytest.mark.parametrize("stop", [_ctrl_c, _serve_run_killed], ids=["ctrl-c", "killed"])
def test_an_ended_run_leaves_no_haproxy_and_a_free_port(stop, tmp_path: Path) -> None:
    (tmp_path / "hello_app.py").write_text(HELLO_APP)
    port = _free_port()
    config = tmp_path / "hello.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "http_options": {"host": "127.0.0.1", "port": port},
                "applications": [
                    {
                        "name": "hello",
                        "route_prefix": "/",
                        "import_path": "hello_app:app",
                        "runtime_env": {"working_dir": f"local://{tmp_path}"},
                    }
                ],
            }
        )
    )
    before = _haproxy_pids()
    aim_ray = Path(sys.executable).with_name("aim-ray")
    child = subprocess.Popen(
        [str(aim_ray), "serve", "run", str(config)],
        cwd=tmp_path,
        env=_own_cluster_env(),
        start_new_session=True,  # a process group of its own, as in a terminal
    )
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}/", child)
        ours = _haproxy_pids() - before
        assert ours, "the run served without an HAProxy: the fast path is off"

        stop(child)
        child.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    assert not [pid for pid in ours if _alive(pid)], "HAProxy outlived the run"
    assert _port_is_free(port)
