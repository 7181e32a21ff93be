"""The ``/mcp`` protocol surface without a cluster: the SDK server and its transport over
fake deployment handles, driven through Starlette's test client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from aim_ray.config.gateway import MCPTransportSettings
from aim_ray.errors import AimRayError
from aim_ray.mcp.protocol import ResourceContent, ResourceSpec, ToolResult, ToolSpec
from aim_ray.mcp.server import RESOURCE_NOT_FOUND, MCPEndpoint, build_mcp_server

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
HOST_PATH = "/srv/secret/root/cats.md"


class Method:
    """What a ``DeploymentHandle`` method looks like to the server: ``.remote(...)``."""

    def __init__(self, fn) -> None:
        self._fn = fn

    async def remote(self, *args):
        return self._fn(*args)


class FakeTools:
    @staticmethod
    async def list_tools() -> list[ToolSpec]:
        return [ToolSpec(name="calculator", description="c", input_schema={})]

    @staticmethod
    async def call_tool(name: str, arguments: dict) -> ToolResult:
        if name != "calculator":
            return ToolResult(
                tool=name, status="error", content="unknown", is_error=True, latency_ms=1
            )
        if "expression" not in arguments:
            content = "invalid arguments: expression is required"
            return ToolResult(
                tool=name, status="error", content=content, is_error=True, latency_ms=1
            )
        return ToolResult(tool=name, status="ok", content="2", is_error=False, latency_ms=1)


class FakeContext:
    def __init__(self) -> None:
        self.list_resources = Method(
            lambda: [ResourceSpec(uri="context://files", name="files", description="f")]
        )
        self.read_resource = Method(self._read)

    @staticmethod
    def _read(uri: str) -> ResourceContent:
        if "boom" in uri:
            raise OSError(f"[Errno 13] Permission denied: '{HOST_PATH}'")
        if "safe" in uri:
            raise AimRayError("the provider is misconfigured")
        return ResourceContent(uri=uri, text="kitten")


@pytest.fixture
def client() -> Iterator[TestClient]:
    endpoint = MCPEndpoint(build_mcp_server(FakeTools(), FakeContext()), MCPTransportSettings())

    @asynccontextmanager
    async def lifespan(app):
        yield

    app = Starlette(routes=[endpoint.route()], lifespan=endpoint.wrap_lifespan(lifespan))
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def rpc(client: TestClient, method: str, params: dict | None = None) -> dict:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}
    response = client.post("/mcp", content=json.dumps(body), headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def test_unknown_resource_is_resource_not_found(client):
    answer = rpc(client, "resources/read", {"uri": "context://nope?q=x"})
    assert answer["error"] == {
        "code": RESOURCE_NOT_FOUND,
        "message": "resource not found",
        "data": {"uri": "context://nope?q=x"},
    }


def test_a_known_resource_is_read(client):
    answer = rpc(client, "resources/read", {"uri": "context://files?q=kitten"})
    assert answer["result"]["contents"][0]["text"] == "kitten"


def test_unexpected_failure_is_internal_error_with_a_request_id(client, caplog):
    answer = rpc(client, "resources/read", {"uri": "context://files?q=boom"})
    error = answer["error"]
    request_id = error["data"]["request_id"]
    assert error["code"] == -32603
    assert error["message"] == f"internal error (request id {request_id})"
    # The detail is in the server's log under the id the client saw.
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and HOST_PATH in str(logged[0].exc_info[1])


def test_an_aimray_error_keeps_its_safe_message(client):
    error = rpc(client, "resources/read", {"uri": "context://files?q=safe"})["error"]
    assert error["code"] == -32603
    assert error["message"].startswith("the provider is misconfigured (request id ")


def test_unknown_tool_is_invalid_params(client):
    answer = rpc(client, "tools/call", {"name": "nope", "arguments": {}})
    assert answer["error"] == {"code": -32602, "message": "unknown tool: 'nope'"}


def test_invalid_arguments_are_a_tool_error_result(client):
    result = rpc(client, "tools/call", {"name": "calculator", "arguments": {}})["result"]
    assert result["isError"] is True
    assert "invalid arguments" in result["content"][0]["text"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ('[{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]', -32600, "batches"),
        ('{"foo": 1}', -32600, "not a JSON-RPC 2.0 message"),
        ('"tools/list"', -32600, "not a JSON-RPC 2.0 message"),
        ("{bad", -32700, "not JSON"),
    ],
)
def test_malformed_bodies_get_a_short_jsonrpc_error(client, body, code, message):
    response = client.post("/mcp", content=body, headers=HEADERS)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and message in error["message"]
    assert "validation error" not in response.text.lower()


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_only_post_is_served(client, method):
    response = client.request(method, "/mcp", headers={"Accept": "text/event-stream"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_host_guard_runs_before_everything(client):
    response = client.get("/mcp", headers={"Host": "evil.example.com"})
    assert response.status_code == 421
