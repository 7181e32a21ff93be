"""The Grafana dashboard is importable as is and charts the metrics aim-ray records.

That every charted metric is really exported is checked end to end in
``test_e2e_metrics.py``; here the file's own shape is checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[1] / "kuberay/grafana/aim-ray-dashboard.json"
RECORDED = {
    "ray_mcp_context_retrieval_duration_seconds_bucket",
    "ray_mcp_context_requests_total",
    "ray_mcp_context_cache_hits_total",
    "ray_mcp_tool_execution_total",
    "ray_mcp_tool_execution_duration_seconds_bucket",
    "ray_aim_ray_gateway_requests_total",
    "ray_aim_ray_gateway_request_duration_seconds_bucket",
}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def charts(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def charted_metrics(dashboard: dict) -> set[str]:
    """The Ray metric names the dashboard's queries use."""
    exprs = " ".join(t["expr"] for p in charts(dashboard) for t in p["targets"])
    return set(re.findall(r"\b(ray_[a-z_]+)", exprs))


def test_has_what_grafana_import_needs(dashboard):
    assert dashboard["title"] and dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_chart_queries_the_chosen_prometheus(dashboard):
    for panel in charts(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")"), expr
            assert expr.count("{") == expr.count("}"), expr


def test_panels_fit_the_grid_without_overlapping(dashboard):
    taken = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_charts_the_seed_panels_and_every_recorded_metric(dashboard):
    titles = " | ".join(p["title"].lower() for p in charts(dashboard))
    for seed_panel in ("context retrieval latency", "tool success rate", "cache hit rate"):
        assert seed_panel in titles
    assert "engine throughput" in titles
    charted = charted_metrics(dashboard)
    assert charted >= RECORDED, f"not charted: {sorted(RECORDED - charted)}"
