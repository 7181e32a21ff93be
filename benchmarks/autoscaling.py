"""Autoscaling proof: the MCP tool deployment scales out under load, then back in.

The ``ToolService`` deployment is built the way ``aim_ray.serving.app`` builds it
(``SERVICE_DEFAULTS`` merged with the config's ``mcp.deployments.tools``), from an MCP
config of one ``web_fetch`` tool pointed at a slow loopback HTTP server: every fetch
waits ``--delay`` seconds, like a tool waiting on a remote API. Its ``autoscaling_config``
is small (min 1, max 3, target 2 ongoing requests a replica, delays of seconds).

A fixed number of tool calls goes through a deployment handle from this driver,
``--concurrency`` at a time, which keeps far more than 2 requests ongoing; then the load
stops. ``serve.status()`` is sampled every ``--sample`` seconds and the replica counts are
printed as a timeline. The run ends once the deployment is back at its minimum, or at
``--time-limit``. Loopback only; bounded request count and time.

It starts a Ray cluster of its own (``ray.init(address="local")`` in a private temp dir,
no dashboard, no HTTP proxy) and shuts it down at the end.

    .venv/bin/python benchmarks/autoscaling.py
    .venv/bin/python benchmarks/autoscaling.py --requests 600 --json   # + a JSON summary
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import ray
from pydantic import BaseModel, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from aim_ray.config.mcp import MCPConfig
from aim_ray.mcp.tools.service import ToolService
from aim_ray.serving.app import build_service

APP_NAME = "autoscaling-proof"
DEPLOYMENT = "ToolService"
SUMMARY_PREFIX = "AUTOSCALING-SUMMARY "


class Autoscaling(BaseModel):
    """The tool deployment's ``autoscaling_config``: small and quick, to see it move."""

    min_replicas: int = 1
    max_replicas: int = 3
    target_ongoing_requests: float = 2
    upscale_delay_s: float = 1
    downscale_delay_s: float = 5
    look_back_period_s: float = 2
    # How often handles and replicas push their load to the controller (default 10 s).
    # Ray 2.60 marks it deprecated for RAY_SERVE_*_AUTOSCALING_METRIC_PUSH_INTERVAL_S env
    # vars that it does not read yet (serve/_private/router.py uses this field).
    metrics_interval_s: float = 1


class LoadPlan(BaseModel):
    requests: int = Field(480, ge=1)
    concurrency: int = Field(12, ge=1)
    delay_s: float = Field(0.5, gt=0, description="How long each fetch waits at the server.")
    sample_s: float = Field(1.0, gt=0)
    time_limit_s: float = Field(100, gt=0, description="The whole run, load and cool-down.")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)


class Sample(BaseModel):
    t: float = Field(description="Seconds since the load started.")
    running: int
    starting: int
    stopping: int
    load_on: bool


class Summary(BaseModel):
    requests: int
    ok: int
    statuses: dict[str, int]
    load_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    max_running: int
    final_running: int
    first_scale_up_s: float | None = Field(description="First sample with > min running.")
    back_to_min_s: float | None = Field(description="First sample at min after scaling out.")
    timeline: list[Sample]


def parse_args(argv: list[str] | None = None) -> tuple[LoadPlan, bool]:
    """The load plan (``LoadPlan``'s defaults for what is not given), and whether to print
    the JSON summary line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, help="Tool calls in all (480).")
    parser.add_argument("--concurrency", type=int, help="Calls in flight at once (12).")
    parser.add_argument("--delay", dest="delay_s", type=float, help="Seconds a fetch takes.")
    parser.add_argument("--sample", dest="sample_s", type=float, help="Seconds between samples.")
    parser.add_argument("--time-limit", dest="time_limit_s", type=float, help="Run cap (100 s).")
    parser.add_argument("--json", action="store_true", help="Also print a JSON summary line.")
    args = vars(parser.parse_args(argv))
    as_json = args.pop("json")
    return LoadPlan(**{key: value for key, value in args.items() if value is not None}), as_json


# -- the slow loopback server ---------------------------------------------------------------


@contextmanager
def slow_server(delay_s: float) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every GET after ``delay_s``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            time.sleep(delay_s)
            body = b"<html><title>slow</title><body>done</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass  # one line per request would bury the timeline

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page"
    finally:
        server.shutdown()
        server.server_close()


# -- the deployment -------------------------------------------------------------------------


def tool_app(plan: LoadPlan) -> Any:
    """ToolService as app.py builds it: one web_fetch tool, loopback allowed."""
    mcp = MCPConfig.model_validate(
        {
            "tools": [{"name": "web_fetch", "timeout_s": 30, "config": {"allow_private": True}}],
            "deployments": {"tools": {"autoscaling_config": plan.autoscaling.model_dump()}},
        }
    )
    return build_service(DEPLOYMENT, ToolService, mcp.deployments.tools, mcp)


def replica_counts() -> tuple[int, int, int]:
    """RUNNING, STARTING and STOPPING replicas of the tool deployment."""
    states = serve.status().applications[APP_NAME].deployments[DEPLOYMENT].replica_states
    return states.get("RUNNING", 0), states.get("STARTING", 0), states.get("STOPPING", 0)


# -- the run --------------------------------------------------------------------------------


async def drive_load(
    handle: DeploymentHandle, url: str, plan: LoadPlan, deadline: float
) -> tuple[list[float], dict[str, int]]:
    """``plan.requests`` calls, ``plan.concurrency`` at a time; latencies and statuses."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    remaining = iter(range(plan.requests))

    async def caller() -> None:
        for _ in remaining:
            if time.monotonic() > deadline:
                return
            start = time.perf_counter()
            result = await handle.call_tool.remote("web_fetch", {"url": url})
            latencies.append(time.perf_counter() - start)
            statuses[result.status] = statuses.get(result.status, 0) + 1

    await asyncio.gather(*(caller() for _ in range(plan.concurrency)))
    return latencies, statuses


async def sample_until(
    plan: LoadPlan, start: float, load: asyncio.Task, deadline: float
) -> list[Sample]:
    """Replica counts every ``sample_s`` until the load is over and min replicas remain."""
    timeline: list[Sample] = []
    while time.monotonic() < deadline:
        running, starting, stopping = await asyncio.to_thread(replica_counts)
        sample = Sample(
            t=round(time.monotonic() - start, 1),
            running=running,
            starting=starting,
            stopping=stopping,
            load_on=not load.done(),
        )
        timeline.append(sample)
        print(
            f"t={sample.t:6.1f}s  running {running}  starting {starting}  "
            f"stopping {stopping}  {'load' if sample.load_on else 'idle'}",
            flush=True,
        )
        settled = running == plan.autoscaling.min_replicas and not (starting or stopping)
        if load.done() and settled:
            break
        await asyncio.sleep(plan.sample_s)
    return timeline


async def measure(handle: DeploymentHandle, url: str, plan: LoadPlan) -> Summary:
    start = time.monotonic()
    deadline = start + plan.time_limit_s
    load = asyncio.create_task(drive_load(handle, url, plan, deadline))
    timeline = await sample_until(plan, start, load, deadline)
    latencies, statuses = await load
    return summarize(plan, latencies, statuses, timeline)


def summarize(
    plan: LoadPlan, latencies: list[float], statuses: dict[str, int], timeline: list[Sample]
) -> Summary:
    minimum = plan.autoscaling.min_replicas
    load_end = next((s.t for s in timeline if not s.load_on), timeline[-1].t)
    scaled_up = [i for i, s in enumerate(timeline) if s.running > minimum]
    # Back at min: the first sample at min after the last one above it.
    after = timeline[scaled_up[-1] + 1 :] if scaled_up else []
    back = [s.t for s in after if s.running == minimum]
    ms = sorted(latency * 1000 for latency in latencies) or [0.0]
    return Summary(
        requests=plan.requests,
        ok=statuses.get("ok", 0),
        statuses=statuses,
        load_s=load_end,
        latency_p50_ms=round(statistics.median(ms), 1),
        latency_p95_ms=round(ms[int(0.95 * (len(ms) - 1))], 1),
        max_running=max(s.running for s in timeline),
        final_running=timeline[-1].running,
        first_scale_up_s=timeline[scaled_up[0]].t if scaled_up else None,
        back_to_min_s=back[0] if back else None,
        timeline=timeline,
    )


async def measure_then_shut_down(handle: DeploymentHandle, url: str, plan: LoadPlan) -> Summary:
    """Shut Serve down in the loop that measured: with the throughput-optimized
    router running in the caller's loop, a handle's router can only be stopped
    while that loop is alive."""
    try:
        return await measure(handle, url, plan)
    finally:
        await serve.shutdown_async()


@contextmanager
def local_ray() -> Iterator[None]:
    """A fresh local cluster in a temp dir of its own, so no other Ray is joined or
    recorded over (``/tmp/ray`` holds the address other drivers look for)."""
    temp_dir = tempfile.mkdtemp(prefix="aimray-as-", dir="/tmp")
    # This cluster is ours alone: no token auth to set up.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        address="local",
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        _temp_dir=temp_dir,
    )
    try:
        serve.start(proxy_location="Disabled")  # handles only, no HTTP port
        yield
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    plan, as_json = parse_args(argv)
    print(f"plan: {plan.model_dump_json()}", flush=True)
    with slow_server(plan.delay_s) as url, local_ray():
        handle = serve.run(tool_app(plan), name=APP_NAME, route_prefix=None)
        summary = asyncio.run(measure_then_shut_down(handle, url, plan))
    print(
        f"{summary.ok}/{summary.requests} ok in {summary.load_s:.1f}s "
        f"(p50 {summary.latency_p50_ms} ms, p95 {summary.latency_p95_ms} ms); replicas: "
        f"max {summary.max_running}, first above min at {summary.first_scale_up_s}s, "
        f"back to min at {summary.back_to_min_s}s, final {summary.final_running}"
    )
    if as_json:
        print(SUMMARY_PREFIX + summary.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
