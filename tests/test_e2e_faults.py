"""End to end: faults injected into the running application, and what clients see.

A ToolService replica killed while calls run, the PostgreSQL behind a context provider
stopped and started again, a remote MCP server that is down when the app starts. Each is
driven through ``/mcp`` (and chat where it applies); the app must answer cleanly during
the fault and recover without a restart. The faults touch only what the session app
keeps for them (``fault_db`` on a throwaway cluster, the ``late`` remote server), and each
test leaves the app as it found it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from mcp import MCPError
from mcp_fixtures import unavailable
from test_e2e_mcp import mcp_client

from aim_ray.mcp.chat.loop import REGISTRY_TTL_S
from aim_ray.mcp.tools.remote import root_cause

pytestmark = pytest.mark.slow

FORCE_CALCULATOR = {"type": "function", "function": {"name": "calculator"}}
CALCULATOR = {"type": "function", "function": {"name": "calculator"}}
TOOL_REPLICA_PREFIX = "SERVE_REPLICA::aim-ray#ToolService#"
# What a leaked traceback or internal detail looks like in a body.
LEAKS = re.compile(
    r"Traceback|File \"|/site-packages/|ray::|ActorDiedError|RayActorError|actor died|actor_id"
    r"|class_name|\bpid[:=]|\bip:"
)


def assert_clean(text: str) -> None:
    assert not LEAKS.search(text), text


async def wait_for(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 90) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s:g}s")
        await asyncio.sleep(0.5)


async def mcp_call(app, name: str, arguments: dict) -> tuple[bool, str]:
    """(is_error, text) of one call in a fresh session; a protocol error is an error too."""
    try:
        async with mcp_client(app) as client:
            result = await client.call_tool(name, arguments)
    except Exception as error:  # the SDK's task groups wrap a protocol error
        root = root_cause(error)
        if not isinstance(root, MCPError):
            raise
        return True, root.message
    return result.is_error, result.content[0].text


async def tool_names(app) -> set[str]:
    async with mcp_client(app) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def mcp_health(app) -> dict:
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.get(f"{app.base_url}/mcp/health")
    assert response.status_code == 200, response.text
    return response.json()["mcp"]


async def chat(app, **body: Any) -> httpx.Response:
    payload = {"model": app.model, "temperature": 0, "max_tokens": 60, **body}
    headers = {"Authorization": f"Bearer {app.api_key}"}
    async with httpx.AsyncClient(timeout=300) as http:
        return await http.post(f"{app.base_url}/v1/chat/completions", json=payload, headers=headers)


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


# -- a remote MCP server that comes up after the app ---------------------------------------
# First in this file: the late server must not have been up yet.


async def has_late_tool(app, name: str) -> bool:
    return name in await tool_names(app)


async def late_gone(app) -> bool:
    # Gone again, so other tests see the registry as the app started with it.
    return not any(name.startswith("late__") for name in await tool_names(app))


async def test_remote_server_down_at_start_appears_without_a_restart(app):
    late = app.services.late_remote
    assert await late_gone(app)
    assert (await mcp_health(app))["remote_servers"]["late"]["status"] == "down"

    late.start()
    try:
        await wait_for(lambda: has_late_tool(app, "late__add"), "late__add in tools/list", 60)
        assert await mcp_call(app, "late__add", {"a": 40, "b": 2}) == (False, "42")

        async def healthy() -> bool:
            return (await mcp_health(app))["remote_servers"]["late"]["status"] == "up"

        await wait_for(healthy, "the late server up in /mcp/health", timeout_s=60)
    finally:
        late.stop()
    await wait_for(lambda: late_gone(app), "the stopped late server's tools leaving tools/list")


# -- a ToolService replica killed mid-call ---------------------------------------------------


def tool_replicas() -> set[str]:
    import ray

    return {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(TOOL_REPLICA_PREFIX)
    }


async def replaced(killed: str) -> bool:
    from ray import serve

    tools = serve.status().applications["aim-ray"].deployments["ToolService"]
    fresh = tool_replicas() - {killed}
    return bool(fresh) and tools.status == "HEALTHY" and tools.replica_states == {"RUNNING": 1}


async def calculator_chat(app) -> httpx.Response:
    return await chat(
        app, messages=ask("What is 6 * 7?"), tools=[CALCULATOR], tool_choice=FORCE_CALCULATOR
    )


async def hold_chat(app) -> httpx.Response:
    hold = {"type": "function", "function": {"name": "late__hold"}}
    return await chat(app, messages=ask("Hold on."), tools=[hold], tool_choice=hold)


async def entered(late, count: int) -> None:
    for _ in range(count):
        assert await asyncio.to_thread(late.entered.acquire, timeout=60), "a call never came"


async def test_killed_tool_replica_fails_cleanly_and_comes_back(app):
    import ray

    late = app.services.late_remote
    [victim] = tool_replicas()
    late.start()
    try:
        await wait_for(lambda: has_late_tool(app, "late__hold"), "late__hold in tools/list")
        # Every gateway replica's tool registry is now at most this old, so chats see it.
        await asyncio.sleep(REGISTRY_TTL_S)
        in_flight_mcp = [asyncio.create_task(mcp_call(app, "late__hold", {})) for _ in range(3)]
        in_flight_chat = [asyncio.create_task(hold_chat(app)) for _ in range(2)]
        await entered(late, 5)
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)

        for is_error, text in await asyncio.gather(*in_flight_mcp):
            assert is_error
            assert_clean(text)
        for response in await asyncio.gather(*in_flight_chat):
            assert_clean(response.text)
            # The call the kill cut short is a failed tool call inside a normal answer.
            assert response.status_code == 200, response.text
            [call] = response.json()["mcp"]["tool_calls"]
            assert (call["name"], call["status"]) == ("late__hold", "error"), call
            assert "tool service is unavailable" in call["content"]
    finally:
        late.stop()
    await wait_for(lambda: late_gone(app), "the stopped late server's tools leaving tools/list")

    await wait_for(lambda: replaced(victim), "a new ToolService replica", timeout_s=180)
    results = await asyncio.gather(
        *(mcp_call(app, "calculator", {"expression": f"{n} * 3"}) for n in range(10))
    )
    assert results == [(False, str(n * 3)) for n in range(10)]
    for response in await asyncio.gather(*(calculator_chat(app) for _ in range(2))):
        assert response.status_code == 200, response.text
        [call] = response.json()["mcp"]["tool_calls"]
        assert call["status"] == "ok", call


# -- PostgreSQL stopped under a context provider ------------------------------------------


async def context_chat(app, query: str) -> dict:
    response = await chat(
        app,
        messages=ask(f"Tell me about {query}."),
        mcp_context={"providers": ["fault_db"], "query": query},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"]
    return body["mcp"]["context"]


async def read_context(app, query: str) -> str:
    async with mcp_client(app) as client:
        read = await client.read_resource(f"context://fault_db?q={query}&limit=2")
    return read.contents[0].text


async def fault_db_status(app) -> str:
    return (await mcp_health(app))["providers"]["fault_db"]["status"]


async def test_stopped_postgres_degrades_context_and_recovers(app):
    stoppable = app.services.fault_pg
    if stoppable is None:
        unavailable("no throwaway PostgreSQL cluster for the fault tests (needs root and PG 15)")
    before = await context_chat(app, "kitten")
    assert before["degraded"] is False
    assert "kitten" in before["items"][0]["content"]

    stoppable.stop()
    try:
        # Queries never asked before: a cached answer must not hide the outage.
        for query in ("revenue", "memory"):
            during = await context_chat(app, query)
            assert during["degraded"] is True
            [outcome] = during["providers"]
            assert outcome["status"] in {"error", "timeout"}
            assert_clean(outcome.get("error") or "")
            assert during["items"] == []
        text = await read_context(app, "accelerator")
        assert '"status": "error"' in text or '"status": "timeout"' in text
        assert_clean(text)
        health = await mcp_health(app)
        assert health["status"] == "degraded"
        assert health["providers"]["fault_db"]["status"] == "down"
        assert stoppable.pg.password not in str(health)
    finally:
        stoppable.start()

    async def up() -> bool:
        return await fault_db_status(app) == "up"

    await wait_for(up, "fault_db up again in /mcp/health")
    after = await context_chat(app, "puppy")
    assert after["degraded"] is False
    assert "puppy" in after["items"][0]["content"]
    assert "hardware" in await read_context(app, "hardware")
