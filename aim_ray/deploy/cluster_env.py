"""The environment a Ray cluster running aim-ray starts with: Ray Serve's fast paths.

Ray reads these in its own processes (Serve controller, proxies, replicas) when they
start, so they must be in the environment of whatever starts the cluster: ``aim-ray serve
run`` (a local ``serve run``), the head and worker pods of a rendered ``RayService``, the
test suite's cluster and the benchmarks. A variable already set wins. What each one buys
on a 2-core CPU box is measured in ``benchmarks/README.md``.

- ``RAY_SERVE_ENABLE_HA_PROXY``: HAProxy on the HTTP port forwards straight to the
  gateway replica's own HTTP server, so no proxy actor relays every chunk.
- ``RAY_SERVE_THROUGHPUT_OPTIMIZED``: replica code and the handle router on the replica's
  main event loop (no thread hop a call), gRPC between deployments, buffered request logs.
- ``RAY_SERVE_HAPROXY_NBTHREAD``: HAProxy's threads, at most half the machine's cores
  (Ray's default, 4, would outnumber a small box's cores).
"""

from __future__ import annotations

from collections.abc import Mapping

FAST_PATH_ENV: dict[str, str] = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
}


def cluster_env(cores: int | None = None) -> dict[str, str]:
    """The variables for a cluster whose nodes have ``cores`` cores (unknown: Ray's threads)."""
    env = dict(FAST_PATH_ENV)
    if cores is not None:
        env["RAY_SERVE_HAPROXY_NBTHREAD"] = str(max(1, min(4, cores // 2)))
    return env


def with_cluster_env(environ: Mapping[str, str], cores: int | None = None) -> dict[str, str]:
    """``environ`` with the cluster variables it does not set already."""
    return {**cluster_env(cores), **environ}
