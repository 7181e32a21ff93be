"""Autoscaling proof: the tool deployment scales out past its target load, then back in.

Runs ``benchmarks/autoscaling.py`` (its docstring has the set-up: ToolService as
``aim_ray.serving.app`` builds it, one ``web_fetch`` tool against a slow loopback server, min 1 /
max 3 replicas, target 2 ongoing requests) in a process of its own, because it starts a
local Ray cluster and the test session may already be connected to another one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from autoscaling import SUMMARY_PREFIX, LoadPlan, Summary  # noqa: E402

RUN_TIMEOUT_S = 240


def run_benchmark() -> Summary:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "autoscaling.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
    )
    print(done.stdout)  # the replica timeline, shown by pytest on failure
    lines = [line for line in done.stdout.splitlines() if line.startswith(SUMMARY_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"autoscaling run failed ({done.returncode}):\n{done.stderr[-5000:]}")
    return Summary.model_validate_json(lines[-1].removeprefix(SUMMARY_PREFIX))


@pytest.mark.slow
def test_tool_service_scales_out_under_load_and_back_in_after() -> None:
    plan = LoadPlan()
    summary = run_benchmark()
    assert summary.ok == summary.requests == plan.requests, summary.statuses
    # Out to max_replicas while the load is on ...
    assert summary.max_running == plan.autoscaling.max_replicas
    assert summary.first_scale_up_s is not None and summary.first_scale_up_s < summary.load_s
    at_max = [s.t for s in summary.timeline if s.running == plan.autoscaling.max_replicas]
    assert at_max[0] < summary.load_s
    # ... and back to min_replicas once it stops, before the time limit.
    assert summary.back_to_min_s is not None and summary.back_to_min_s > summary.load_s
    assert summary.final_running == plan.autoscaling.min_replicas
    assert summary.timeline[-1].t < plan.time_limit_s
