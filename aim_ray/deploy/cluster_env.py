"""The environment a Ray cluster running aim-ray starts with: Ray Serve's fast paths.

Ray reads these in its own processes (Serve controller, proxies, replicas) when they
start, so they must be in the environment of whatever starts the cluster: ``aim-ray serve
run`` (a local ``serve run``), the head and worker pods of a rendered ``RayService``, the
test suite's cluster and the benchmarks. A variable already set wins. What each one buys
on a 2-core CPU box is measured in ``benchmarks/README.md``.

- ``RAY_SERVE_ENABLE_HA_PROXY``: HAProxy on the HTTP port forwards straight to the
  gateway replica's own HTTP server, so no proxy actor relays every chunk.
- ``RAY_SERVE_THROUGHPUT_OPTIMIZED``: replica code and the handle router on the replica's
  main event loop (no thread hop a call), gRPC between deployments, buffered request logs
  (Serve's own logs then go to the log files only, not to the console).
- ``RAY_SERVE_HAPROXY_NBTHREAD``: HAProxy's threads, at most half the machine's cores
  (Ray's default, 4, would outnumber a small box's cores).

A cluster on a shared machine needs more (``local_cluster_env``): Ray 2.60's HAProxy always
binds a stats page and a metrics endpoint on fixed ports (8404, 9101) of every interface, so
a second cluster on the same machine would fail to start, and its files must not be shared
either. So each local cluster gets free ports and a folder of its own for HAProxy's files
(``new_haproxy_dir``: short, as HAProxy's socket paths must be).

A driver that calls deployment handles from synchronous code (``handle.m.remote().result()``
outside an event loop) cannot use the throughput-optimized router, which runs in the
caller's loop: such a driver adds ``SYNC_DRIVER_ENV`` to its own environment only.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path

FAST_PATH_ENV: dict[str, str] = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
}
SYNC_DRIVER_ENV: dict[str, str] = {"RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1"}


def cluster_env(cores: int | None = None) -> dict[str, str]:
    """The variables for a cluster whose nodes have ``cores`` cores (unknown: Ray's threads)."""
    env = dict(FAST_PATH_ENV)
    if cores is not None:
        env["RAY_SERVE_HAPROXY_NBTHREAD"] = str(max(1, min(4, cores // 2)))
    return env


def new_haproxy_dir() -> Path:
    """A new folder for one local cluster's HAProxy files."""
    return Path(tempfile.mkdtemp(prefix="arh-"))


def local_cluster_env(
    environ: Mapping[str, str], cores: int | None, haproxy: Path
) -> dict[str, str]:
    """``environ`` plus what a cluster on this machine needs that it does not set already:
    ``cluster_env``, free ports for HAProxy's stats and metrics, its files in ``haproxy``."""
    local = {
        **cluster_env(cores),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(haproxy / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(haproxy / "admin.sock"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(haproxy / "metrics.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(haproxy),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(haproxy / "server-state"),
    }
    return {**local, **environ}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]
