"""End to end: the MCP and gateway metrics on Ray's metrics endpoint, and the dashboard.

Replicas push their metrics to the node's agent every few seconds, so each check polls
the endpoint until the expected sample shows up.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_dashboard import DASHBOARD, charted_metrics

pytestmark = pytest.mark.slow

EXPORT_WAIT_S = 90


def samples(app) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(app.metrics_url, timeout=30).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(found: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, tags), v in found.items() if n == name and wanted <= tags)


def wait_for(app, predicate, what: str) -> dict:
    deadline = time.monotonic() + EXPORT_WAIT_S
    while True:
        found = samples(app)
        if predicate(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not on {app.metrics_url} after {EXPORT_WAIT_S}s")
        time.sleep(2)


class Exercised:
    """Samples before and after the exercise; other tests share the app, so only the
    difference between the two belongs to this module's requests."""

    def __init__(self, before: dict, after: dict) -> None:
        self.before, self.after = before, after

    def rise(self, name: str, **labels: str) -> float:
        return total(self.after, name, **labels) - total(self.before, name, **labels)


def context_chat(app, query: str) -> None:
    app.openai().chat.completions.create(
        model=app.model,
        messages=[{"role": "user", "content": "Answer briefly."}],
        max_tokens=5,
        extra_body={"mcp_context": {"providers": ["docs_db", "down_db"], "query": query}},
    )


def calculator_chat(app) -> None:
    app.openai().chat.completions.create(
        model=app.model,
        messages=[{"role": "user", "content": "What is 6 times 7?"}],
        max_tokens=20,
        tools=[{"type": "function", "function": {"name": "calculator"}}],
        tool_choice={"type": "function", "function": {"name": "calculator"}},
    )


EXPECTED_RISES = [
    ("ray_mcp_context_requests_total", {"provider": "docs_db", "status": "ok"}, 2),
    ("ray_mcp_context_requests_total", {"provider": "down_db"}, 2),
    ("ray_mcp_context_retrieval_duration_seconds_count", {"provider": "docs_db"}, 2),
    ("ray_mcp_context_cache_hits_total", {"provider": "docs_db"}, 1),
    ("ray_mcp_tool_execution_total", {"tool": "calculator", "status": "ok"}, 1),
    ("ray_mcp_tool_execution_duration_seconds_count", {"tool": "calculator"}, 1),
    ("ray_aim_ray_gateway_requests_total", {"route": "/v1/models", "status": "401"}, 1),
    ("ray_aim_ray_gateway_requests_total", {"route": "/v1/chat/completions"}, 3),
]


@pytest.fixture(scope="module")
def exercised(app) -> Exercised:
    """The endpoint after MCP chats, a tool call and a refused request.

    Waits until every expected rise is exported (replicas push on their own schedule)
    but returns what it saw on timeout, so each test reports its own shortfall.
    """
    before = samples(app)
    query = f"kitten {time.time_ns()}"  # unique, so the second lookup is the first hit
    context_chat(app, query)
    context_chat(app, query)
    calculator_chat(app)
    assert httpx.get(f"{app.base_url}/v1/models").status_code == 401
    deadline = time.monotonic() + EXPORT_WAIT_S
    while True:
        seen = Exercised(before, samples(app))
        exported = all(seen.rise(n, **tags) >= least for n, tags, least in EXPECTED_RISES)
        if exported or time.monotonic() > deadline:
            return seen
        time.sleep(2)


def test_context_metrics_count_lookups_by_provider_and_status(exercised):
    assert exercised.rise("ray_mcp_context_requests_total", provider="docs_db", status="ok") >= 2
    assert exercised.rise("ray_mcp_context_requests_total", provider="down_db", status="ok") == 0
    assert exercised.rise("ray_mcp_context_requests_total", provider="down_db") >= 2
    count = "ray_mcp_context_retrieval_duration_seconds_count"
    assert exercised.rise(count, provider="docs_db") >= 2


def test_tool_metrics_record_the_server_side_calculator(exercised):
    assert exercised.rise("ray_mcp_tool_execution_total", tool="calculator", status="ok") >= 1
    count = "ray_mcp_tool_execution_duration_seconds_count"
    assert exercised.rise(count, tool="calculator") >= 1


def test_gateway_metrics_have_route_method_and_status(exercised):
    chats = exercised.rise(
        "ray_aim_ray_gateway_requests_total",
        route="/v1/chat/completions",
        method="POST",
        status="200",
    )
    assert chats >= 3
    refused = exercised.rise("ray_aim_ray_gateway_requests_total", route="/v1/models", status="401")
    assert refused >= 1
    count = "ray_aim_ray_gateway_request_duration_seconds_count"
    assert exercised.rise(count, route="/v1/chat/completions") >= 3


def test_cache_hit_counter_rises_on_a_repeated_query(app, exercised):
    assert exercised.rise("ray_mcp_context_cache_hits_total", provider="docs_db") >= 1
    query = f"puppy {time.time_ns()}"
    context_chat(app, query)
    before = total(samples(app), "ray_mcp_context_cache_hits_total", provider="docs_db")
    context_chat(app, query)
    wait_for(
        app,
        lambda f: total(f, "ray_mcp_context_cache_hits_total", provider="docs_db") > before,
        "a higher cache-hit count",
    )


def test_every_metric_the_dashboard_charts_is_exported(exercised):
    names = {name for name, _ in exercised.after}
    charted = charted_metrics(json.loads(DASHBOARD.read_text()))
    missing = sorted(n for n in charted if n not in names)
    assert charted and not missing, f"charted but not exported: {missing}"
