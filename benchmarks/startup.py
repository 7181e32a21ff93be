"""Start-up benchmark: seconds from the README's first command to ``/health`` 200.

Runs ``aim-ray serve run <config>`` (the README's first command, default config
``serve_configs/local.yaml``) as a user would, in a fresh process with its own Ray
cluster, and times it to the first ``GET /health`` that answers 200 (the engine serves)
and to the first that says ``healthy`` (MCP too: the default config's context deployment
is ready once its docs collection is filled); then stops it with SIGTERM, as Ctrl-C
would. Two ways, each ``--runs`` times:

- **warm**: the model already prepared in the cache (``aim-ray models prepare`` ran once),
  started from the repo's root like the README's command, so the docs collection under
  ``.aim-ray/`` is as earlier starts left it (filled after the first);
- **fresh cache**: ``AIM_RAY_CACHE_DIR`` pointed at an empty folder and the command started
  from an empty folder holding a copy of ``docs/``, so the embedded model is dequantised
  and the docs collection filled first, as on a user's first run.

Where the seconds go: the time each milestone first appears, from the command's own
output (Ray started, Serve started) and from the Serve controller's log in the run's own
Ray temp dir (the app's build, each deployment's replica up). The only change to the
config is the HTTP port (a free one), so the run does not collide with a server on 8000.
Not a test: nothing is asserted.

    .venv/bin/python benchmarks/startup.py --runs 2 --json-out /tmp/startup.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from rich.table import Table
from serving import REPO, console, fmt, free_port

DEFAULT_CONFIG = REPO / "serve_configs" / "local.yaml"

# Printed by the command itself: (label, what the line says).
CONSOLE_MILESTONES = (
    ("Ray cluster up", re.compile(r"Started a local Ray instance")),
    ("Serve started", re.compile(r"Started Serve in namespace")),
)
# Written by the Serve controller to its log file, with a timestamp.
CONTROLLER_MILESTONES = (
    ("app build started", re.compile(r"Importing and building app")),
    ("app built", re.compile(r"Imported and built app")),
)
REPLICA_STARTED = re.compile(r"Replica\(id='[^']+', deployment='([^']+)'.*started successfully")
LOG_TIME = re.compile(r"^\w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
STOP_TIMEOUT_S = 60


@dataclass
class Run:
    way: str
    seconds_to_health: float | None = None
    seconds_to_healthy: float | None = None
    milestones: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def config_on_port(config: Path, port: int, folder: Path) -> Path:
    data = yaml.safe_load(config.read_text())
    data.setdefault("http_options", {})["port"] = port
    copy = folder / config.name
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def watch_output(proc: subprocess.Popen, started: float, run: Run, log) -> None:
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace")
        log.write(line)
        for label, pattern in CONSOLE_MILESTONES:
            if label not in run.milestones and pattern.search(line):
                run.milestones[label] = time.monotonic() - started


def controller_milestones(ray_tmp: Path, started_wall: float) -> dict[str, float]:
    """Seconds from the command to each milestone the Serve controller logged."""
    found: dict[str, float] = {}
    # Ray puts its session under RAY_TMPDIR/ray (older releases: RAY_TMPDIR itself).
    logs = [ray_tmp / "ray" / "session_latest", ray_tmp / "session_latest"]
    for path in (p for d in logs for p in (d / "logs" / "serve").glob("controller_*.log")):
        for line in path.read_text(errors="replace").splitlines():
            stamp = LOG_TIME.match(line)
            if stamp is None:
                continue
            when = dt.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            labels = [label for label, pattern in CONTROLLER_MILESTONES if pattern.search(line)]
            if replica := REPLICA_STARTED.search(line):
                labels.append(f"replica up: {replica.group(1)}")
            for label in labels:
                found.setdefault(label, when - started_wall)
    return found


def start_once(
    way: str, config: Path, env: dict[str, str], timeout_s: float, log_path: Path, cwd: Path
) -> Run:
    run = Run(way)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="aim-ray-startup-"))
    command = [str(Path(sys.executable).with_name("aim-ray")), "serve", "run"]
    command.append(str(config_on_port(config, port, folder)))
    # A Ray temp dir of its own, so the controller's log is this run's (a short path: Ray's
    # sockets live there).
    ray_tmp = Path(tempfile.mkdtemp(prefix="ar-"))
    env = {**env, "RAY_TMPDIR": str(ray_tmp)}
    started, started_wall = time.monotonic(), time.time()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reader = threading.Thread(target=watch_output, args=(proc, started, run, log), daemon=True)
        reader.start()
        try:
            run.seconds_to_health, run.seconds_to_healthy = wait_health(
                f"http://127.0.0.1:{port}/health", proc, started, timeout_s
            )
            if run.seconds_to_health is None:
                run.error = f"no /health 200 within {timeout_s:.0f}s (exit code {proc.poll()})"
        finally:
            stop(proc)
            reader.join(timeout=10)
    run.milestones |= controller_milestones(ray_tmp, started_wall)
    run.milestones = dict(sorted(run.milestones.items(), key=lambda item: item[1]))
    return run


def wait_health(
    url: str, proc: subprocess.Popen, started: float, timeout_s: float
) -> tuple[float | None, float | None]:
    """Seconds to the first 200, and to the first ``"status": "healthy"``."""
    first_200 = None
    while time.monotonic() - started < timeout_s and proc.poll() is None:
        try:
            response = httpx.get(url, timeout=5)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 200:
            first_200 = first_200 or time.monotonic() - started
            if response.json().get("status") == "healthy":
                return first_200, time.monotonic() - started
        time.sleep(0.25)
    return first_200, None


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def table(runs: list[Run]) -> Table:
    result = Table(title="start-up: seconds from the command to each milestone")
    result.add_column("milestone")
    for number, run in enumerate(runs, 1):
        result.add_column(f"{run.way} #{number}", justify="right")
    labels = sorted(
        {label for run in runs for label in run.milestones},
        key=lambda label: min(r.milestones.get(label, float("inf")) for r in runs),
    )
    for label in labels:
        result.add_row(label, *(fmt(run.milestones.get(label)) for run in runs))
    result.add_row("/health 200", *(fmt(run.seconds_to_health) for run in runs))
    result.add_row("/health healthy", *(fmt(run.seconds_to_healthy) for run in runs))
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--runs", type=int, default=1, help="runs per way")
    parser.add_argument("--ways", default="warm,fresh", help="warm, fresh or both")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per start")
    parser.add_argument("--json-out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="aim-ray-startup-logs-"))
    base_env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    runs: list[Run] = []
    for way in [w for w in ("warm", "fresh") if w in args.ways.split(",")]:
        for number in range(1, args.runs + 1):
            env, cwd = dict(base_env), REPO
            if way == "fresh":
                env["AIM_RAY_CACHE_DIR"] = tempfile.mkdtemp(prefix="aim-ray-empty-cache-")
                cwd = Path(tempfile.mkdtemp(prefix="aim-ray-fresh-checkout-"))
                shutil.copytree(REPO / "docs", cwd / "docs")
            console.log(f"{way} start #{number}")
            log = logs / f"{way}-{number}.log"
            run = start_once(way, args.config.resolve(), env, args.timeout, log, cwd)
            console.log(
                f"{way} #{number}: {fmt(run.seconds_to_health)} s to /health 200 (log {log})"
            )
            runs.append(run)
    console.print(table(runs))
    if args.json_out:
        args.json_out.write_text(json.dumps([run.__dict__ for run in runs], indent=2) + "\n")
    return 0 if all(run.error is None for run in runs) else 1


if __name__ == "__main__":
    from serving import run_main

    run_main(main)
