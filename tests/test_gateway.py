"""The gateway's chat route on the MCP path, without Ray: fake engine and tool handles.

Every model round of an MCP-aware chat reaches the engine as Ray's own chat route sends a
plain chat, the client's session header included; the answer carries the ``mcp`` report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from ray.serve.llm.openai_api_models import ChatCompletionResponse
from test_mcp_chat import CALCULATOR, Handle

from aim_ray.config.mcp import MCPConfig
from aim_ray.mcp.tools.service import ToolService
from aim_ray.serving.gateway import Gateway, GatewaySettings


def response(content: str) -> ChatCompletionResponse:
    return ChatCompletionResponse.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )


class Engine:
    """An engine deployment's handle answering each chat call with the next response."""

    def __init__(self, *answers: ChatCompletionResponse) -> None:
        self.answers = list(answers)
        self.options_seen: list[dict[str, Any]] = []
        self.calls: list[tuple[Any, Any]] = []

    def options(self, **options: Any) -> Engine:
        self.options_seen.append(options)
        return self

    @property
    def chat(self) -> Any:
        engine = self

        class Method:
            @staticmethod
            async def remote(body: Any, raw_request_info: Any) -> AsyncIterator[Any]:
                engine.calls.append((body, raw_request_info))
                yield engine.answers.pop(0)

        return Method


async def test_every_mcp_round_carries_the_clients_session_and_the_answer_its_report():
    engine = Engine(response('{"expression": "6*7"}'), response("42"))
    tools = Handle(ToolService(MCPConfig.model_validate({"tools": [{"name": "calculator"}]})))
    gateway = Gateway({"m": engine}, {"m": object()}, settings=GatewaySettings(), tools=tools)
    transport = httpx.ASGITransport(app=gateway.__serve_build_asgi_app__())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as client:
        reply = await client.post(
            "/v1/chat/completions",
            headers={"x-session-id": "session-1"},
            json={
                "model": "m",
                "messages": [{"role": "user", "content": "6*7?"}],
                "tools": [CALCULATOR],
                "tool_choice": "required",
            },
        )
    assert reply.status_code == 200
    body = reply.json()
    assert body["choices"][0]["message"]["content"] == "42"
    assert [c["content"] for c in body["mcp"]["tool_calls"]] == ["42"]
    assert len(engine.calls) == 2
    assert engine.options_seen.count({"session_id": "session-1"}) == 2
    assert all(info.headers["x-session-id"] == "session-1" for _, info in engine.calls)
