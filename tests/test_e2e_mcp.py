"""End to end: a real MCP SDK client against ``/mcp`` of the running application.

The session app (tests/conftest.py) serves every tool type and provider type against
real PostgreSQL, Chroma, a loopback HTTP server and a remote MCP server, through two
gateway replicas, with one provider down on purpose.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from conftest import TEST_API_KEY
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_fixtures import REMOTE_MCP_KEY, REST_TOKEN

pytestmark = pytest.mark.slow

EXPECTED_TOOLS = {
    "calculator",
    "file_reader",
    "sql_query",
    "sql_superuser",
    "sql_reader",
    "vector_search",
    "web_fetch",
    "web_search",
    "kb__add",
    "kb__echo",
    "kb__fail",
    "kb__nap",
    "convert_length",
}


@asynccontextmanager
async def mcp_client(app, api_key: str = TEST_API_KEY, timeout_s: float = 60):
    """An MCP SDK session with the session app's ``/mcp`` (shared by the e2e files)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout_s) as http,
        Client(streamable_http_client(app.mcp_url, http_client=http)) as client,
    ):
        yield client


async def call(app, name: str, arguments: dict):
    async with mcp_client(app) as client:
        result = await client.call_tool(name, arguments)
    return result.is_error, result.content[0].text


async def test_lists_every_enabled_tool_with_its_schema(app):
    async with mcp_client(app) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == EXPECTED_TOOLS
    assert tools["calculator"].input_schema["required"] == ["expression"]
    assert tools["kb__add"].input_schema["required"] == ["a", "b"]


async def test_a_python_function_is_a_tool_with_its_derived_schema(app):
    async with mcp_client(app) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("convert_length", {"value": 5, "unit": "mi"})
        refused = await client.call_tool("convert_length", {"value": "far"})
    tool = tools["convert_length"]
    assert tool.description == "Convert a length between kilometres and miles."
    schema = tool.input_schema
    assert schema["required"] == ["value"] and schema["additionalProperties"] is False
    assert schema["properties"]["unit"]["enum"] == ["km", "mi"]
    assert schema["properties"]["value"]["description"] == "The length to convert."
    assert not result.is_error and json.loads(result.content[0].text) == {"km": 8.047}
    assert refused.is_error and "value" in refused.content[0].text


async def test_prompts_are_listed_and_filled(app):
    from mcp.shared.exceptions import MCPError

    async with mcp_client(app) as client:
        (prompt,) = (await client.list_prompts()).prompts
        filled = await client.get_prompt(
            "summarize_doc", {"path": "docs/security.md", "audience": "operators"}
        )
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("summarize_doc", {"audience": "operators"})
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("nope", {})
    assert prompt.name == "summarize_doc"
    assert [(a.name, a.required) for a in prompt.arguments] == [
        ("path", True),
        ("audience", False),
    ]
    (message,) = filled.messages
    assert message.role == "user"
    assert message.content.text == "Summarize the file docs/security.md for operators."
    assert missing.value.error.code == -32602 and "path" in missing.value.error.message
    assert unknown.value.error.code == -32602


async def test_every_tool_gives_its_real_result(app):
    services = app.services
    page = f"{services.http.url}/page.html"
    cases = {
        "calculator": ({"expression": "17 * 23"}, "391"),
        "file_reader": ({"path": "cats.md"}, "a young cat is called a kitten"),
        "sql_query": (
            {"query": f"SELECT title FROM {services.pg.schema}.docs ORDER BY id"},
            "Revenue",
        ),
        "vector_search": ({"query": "puppies"}, "a young dog is called a puppy"),
        "web_fetch": ({"url": page}, "Hello MCP"),
        "web_search": ({"query": "mi300x"}, "Result 1 for mi300x"),
        "kb__add": ({"a": 2, "b": 40}, "42"),
    }
    for name, (arguments, expected) in cases.items():
        is_error, text = await call(app, name, arguments)
        assert not is_error, f"{name}: {text}"
        assert expected in text, f"{name}: {text}"


async def test_vector_search_ranks_by_meaning(app):
    _, text = await call(app, "vector_search", {"query": "small furry pets that purr"})
    assert text.index("kitten") < text.index("puppy")


@pytest.mark.parametrize(
    ("name", "arguments", "needle"),
    [
        ("calculator", {"expr": "1"}, "invalid arguments"),
        ("calculator", {"expression": "__import__('os')"}, "invalid arguments"),
        ("file_reader", {"path": "../../etc/passwd"}, ""),
        ("file_reader", {"path": "/etc/passwd"}, ""),
        ("sql_query", {"query": "DROP TABLE docs"}, ""),
        ("web_fetch", {"url": "http://169.254.169.254/latest/meta-data/"}, ""),
        ("kb__fail", {}, "Error executing tool fail"),
    ],
)
async def test_bad_calls_come_back_as_tool_errors(app, name, arguments, needle):
    is_error, text = await call(app, name, arguments)
    assert is_error, text
    assert needle in text
    assert "Traceback" not in text


async def test_redirect_to_a_private_address_is_refused(app):
    url = f"{app.services.http.url}/redirect?to=http://10.0.0.1/"
    is_error, text = await call(app, "web_fetch", {"url": url})
    assert is_error, text
    assert "10.0.0.1" in text


async def test_providers_are_resources(app):
    async with mcp_client(app) as client:
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        read = await client.read_resource("context://docs_db?q=kitten&limit=2")
    assert {"context://docs_db", "context://vectors", "context://api", "context://files"} <= (
        resources
    )
    assert "kitten" in read.contents[0].text


async def test_mcp_health_is_degraded_by_the_down_provider_only(app):
    response = httpx.get(f"{app.base_url}/mcp/health", timeout=60)
    assert response.status_code == 200
    mcp = response.json()["mcp"]
    assert mcp["status"] == "degraded"
    assert mcp["providers"]["down_db"]["status"] == "down"
    up = {"docs_db", "vectors", "api", "files", "ingested_db"}
    up |= {"fault_db"} if app.services.fault_pg else set()
    # ingested_vectors is down until test_e2e_ingest creates its collection.
    providers = {name: p for name, p in mcp["providers"].items() if name != "ingested_vectors"}
    assert {name for name, p in providers.items() if p["status"] == "up"} == up
    assert mcp["remote_servers"]["knowledge"]["status"] == "up"
    assert REMOTE_MCP_KEY not in response.text
    assert REST_TOKEN not in response.text


async def test_calls_succeed_across_both_gateway_replicas(app):
    from ray import serve

    gateway = serve.status().applications["aim-ray"].deployments["Gateway"]
    assert gateway.replica_states.get("RUNNING") == 2
    results = await asyncio.gather(
        *(call(app, "calculator", {"expression": f"{n} + 1"}) for n in range(20))
    )
    assert results == [(False, str(n + 1)) for n in range(20)]


def test_mcp_needs_the_api_key(app):
    response = httpx.post(
        app.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
        timeout=30,
    )
    assert response.status_code == 401


def test_foreign_host_header_is_refused(app):
    response = httpx.post(
        app.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={
            "Authorization": f"Bearer {TEST_API_KEY}",
            "Accept": "application/json, text/event-stream",
            "Host": "evil.example.com",
        },
        timeout=30,
    )
    assert response.status_code == 421


def test_tool_arguments_are_json_objects_only(app):
    # A raw JSON-RPC call with arguments that are not an object is a protocol error.
    response = httpx.post(
        app.mcp_url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "calculator", "arguments": "1+1"},
        },
        headers={
            "Authorization": f"Bearer {TEST_API_KEY}",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )
    body = response.json()
    assert "error" in body or body["result"]["isError"], json.dumps(body)
