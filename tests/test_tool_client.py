"""The gateway's tool client: light tools run in the gateway, the rest in ToolService."""

from __future__ import annotations

from typing import Any

from aim_ray.config.mcp import MCPConfig
from aim_ray.mcp.protocol import ToolResult
from aim_ray.mcp.tools.client import ToolClient

CONFIG = {"tools": [{"name": "calculator"}, {"name": "web_fetch"}]}


class RecordingHandle:
    """A ToolService handle that records what reached the deployment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        handle = self

        class CallTool:
            @staticmethod
            async def remote(name: str, arguments: Any) -> ToolResult:
                handle.calls.append((name, arguments))
                return ToolResult(
                    tool=name, status="ok", content="remote", is_error=False, latency_ms=1
                )

        self.call_tool = CallTool


async def test_the_calculator_runs_in_the_gateway_and_other_tools_in_the_deployment():
    handle = RecordingHandle()
    client = ToolClient(handle, MCPConfig.model_validate(CONFIG))
    local = await client.call_tool("calculator", {"expression": "6*7"})
    assert (local.status, local.content) == ("ok", "42")
    assert handle.calls == []
    remote = await client.call_tool("web_fetch", {"url": "https://example.com"})
    assert remote.content == "remote"
    assert handle.calls == [("web_fetch", {"url": "https://example.com"})]


async def test_in_gateway_tools_keep_validation_and_rate_limits():
    config = MCPConfig.model_validate(
        {"tools": [{"name": "calculator", "rate_limit": {"requests": 1, "window": "1m"}}]}
    )
    client = ToolClient(RecordingHandle(), config)
    refused = await client.call_tool("calculator", {"expr": "1"})
    assert refused.status == "error" and "expression" in refused.content
    limited = await client.call_tool("calculator", {"expression": "1+1"})
    assert limited.status == "rate_limited"


async def test_the_switch_sends_every_call_to_the_deployment():
    handle = RecordingHandle()
    config = MCPConfig.model_validate({**CONFIG, "deployments": {"light_tools_in_gateway": False}})
    await ToolClient(handle, config).call_tool("calculator", {"expression": "1"})
    assert handle.calls == [("calculator", {"expression": "1"})]
