"""What the chat loop does when its ToolService replica dies under a call.

The end-to-end fault test (``test_e2e_faults.py``) kills a real replica, but whether a
135M model's tool call is in flight at that moment is up to timing; here the handle
fails on cue, the way a Serve handle fails when its replica is gone.
"""

from __future__ import annotations

from typing import Any

from ray.exceptions import ActorDiedError
from test_mcp_chat import CALCULATOR, ScriptedEngine, call, request

from aim_ray.config.gateway import ChatSettings
from aim_ray.config.mcp import MCPConfig
from aim_ray.mcp.chat.loop import MCPChat
from aim_ray.mcp.tools.service import ToolService


class DyingTools:
    """A ToolService whose replica dies under every call (listing still works)."""

    def __init__(self) -> None:
        self._service = ToolService(MCPConfig.model_validate({"tools": [{"name": "calculator"}]}))

    async def list_tools(self) -> Any:
        return await self._service.list_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        raise ActorDiedError()


async def test_a_lost_tool_replica_is_a_failed_call_not_an_error_response():
    engine = ScriptedEngine(
        {"tool_calls": [call("calculator", '{"expression": "6*7"}')]},
        {"content": "The tool is unavailable."},
    )
    loop = MCPChat(DyingTools(), None, max_context_tokens=100, settings=ChatSettings())
    outcome = await loop.handle(request(tools=[CALCULATOR]), engine)
    [record] = outcome.report.tool_calls
    assert (record.name, record.status) == ("calculator", "error")
    assert "tool service is unavailable" in record.content
    # The model saw the failure and answered; Ray's error text went nowhere.
    assert engine.requests[1]["messages"][-1]["content"] == record.content
    assert outcome.response["choices"][0]["message"]["content"] == "The tool is unavailable."
    assert "actor" not in str(outcome.body).lower()
