"""The gateway's routes and middleware, without Ray: fake engine and tool handles.

Every model round of an MCP-aware chat reaches the engine as Ray's own chat route sends a
plain chat, the client's session header included; the answer carries the ``mcp`` report.
The host/origin policy, CORS, request limits, the per-client cap, the message check and
the scrubbing of 5xx bodies are checked here on the gateway's own app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from ray.serve.llm.openai_api_models import ChatCompletionResponse
from test_mcp_chat import CALCULATOR, Handle

from aim_ray.config.mcp import MCPConfig
from aim_ray.mcp.tools.service import ToolService
from aim_ray.serving.gateway import Gateway, GatewaySettings
from aim_ray.serving.limits import ClientConcurrency, LimitExceeded, apply_limits
from aim_ray.serving.messages import message_problems


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
    config = MCPConfig.model_validate({"tools": [{"name": "calculator"}]})
    gateway = Gateway(
        {"m": engine},
        {"m": object()},
        settings=GatewaySettings(),
        tools=Handle(ToolService(config)),
        mcp=config,
    )
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


class FailingEngine(Engine):
    """An engine whose chat call raises with internals in the message."""

    @property
    def chat(self) -> Any:
        class Method:
            @staticmethod
            async def remote(body: Any, raw_request_info: Any) -> AsyncIterator[Any]:
                raise RuntimeError('Traceback: File "/work/secret/engine.py", line 1')
                yield

        return Method


HI = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


async def post(
    settings: GatewaySettings,
    path: str = "/v1/chat/completions",
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    engine: Engine | None = None,
    method: str = "POST",
) -> tuple[httpx.Response, Engine]:
    engine = engine or Engine(response("hello"))
    gateway = Gateway({"m": engine}, {"m": object()}, settings=settings)
    transport = httpx.ASGITransport(app=gateway.__serve_build_asgi_app__())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        reply = await client.request(method, path, json=body, headers=headers)
    return reply, engine


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Host": "evil.com"}, 421, "host_not_allowed"),
        ({"Host": "127.0.0.1.evil.com:8000"}, 421, "host_not_allowed"),
        ({"Origin": "http://evil.com"}, 403, "origin_not_allowed"),
        ({"Origin": "null"}, 403, "origin_not_allowed"),
    ],
)
async def test_foreign_hosts_and_origins_are_refused_before_the_engine(headers, status, code):
    reply, engine = await post(GatewaySettings(), body=HI, headers=headers)
    assert reply.status_code == status
    assert reply.json()["error"]["code"] == code
    assert engine.calls == []


async def test_a_listed_host_and_origin_are_served_and_health_is_open_to_any_host():
    settings = GatewaySettings(
        allowed_hosts=["aim-ray.example.com"], allowed_origins=["https://app.example.com"]
    )
    headers = {"Host": "aim-ray.example.com", "Origin": "https://app.example.com"}
    reply, _ = await post(settings, body=HI, headers=headers)
    assert reply.status_code == 200
    health, _ = await post(settings, "/health", method="GET", headers={"Host": "10.0.0.7:8000"})
    # Past the guard: the handler answers (the fake engine has no health check).
    assert health.json()["models"] == {"m": "unhealthy"}


async def test_cors_is_closed_by_default_and_never_a_wildcard_with_credentials():
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    closed, _ = await post(GatewaySettings(), method="OPTIONS", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    settings = GatewaySettings(cors={"allow_origins": ["https://app.example.com"]})
    headers = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    opened, _ = await post(settings, method="OPTIONS", headers=headers)
    assert opened.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-credentials" not in opened.headers
    with pytest.raises(ValidationError, match="exact origins"):
        GatewaySettings(cors={"allow_origins": ["*"], "allow_credentials": True})


def test_the_old_transport_lists_still_configure_the_one_policy():
    old = GatewaySettings(mcp_transport={"allowed_hosts": ["ai.example.com:*"]})
    assert old.allowed_hosts == old.transport_guard().allowed_hosts == ["ai.example.com:*"]
    new = GatewaySettings(allowed_origins=["https://app.example.com"])
    assert new.transport_guard().allowed_origins == ["https://app.example.com"]
    with pytest.raises(ValidationError, match="set only gateway.allowed_hosts"):
        GatewaySettings(allowed_hosts=["a"], mcp_transport={"allowed_hosts": ["b"]})


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 5}, "n"),
        ({"best_of": 9}, "best_of"),
        ({"max_tokens": 4097}, "max_tokens"),
        ({"max_completion_tokens": 4097}, "max_completion_tokens"),
        ({"n": 4, "max_tokens": 2049}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x" * 2 * 1024 * 1024}]}, "messages"),
        ({"prompt": "x" * 2 * 1024 * 1024, "messages": None}, "prompt"),
    ],
)
def test_limits_name_the_parameter(fields, param):
    body = {**HI, "max_tokens": None, **fields}
    if body["messages"] is None:
        del body["messages"]
    with pytest.raises(LimitExceeded) as caught:
        apply_limits(body, GatewaySettings().limits)
    assert caught.value.param == param


async def test_a_request_over_a_limit_is_an_openai_400_and_no_cap_gets_the_default():
    reply, engine = await post(GatewaySettings(), body={**HI, "n": 64})
    assert reply.status_code == 400
    assert reply.json()["error"] | {"message": ""} == {
        "message": "",
        "type": "invalid_request_error",
        "param": "n",
        "code": "limit_exceeded",
    }
    assert engine.calls == []
    uncapped = {k: v for k, v in HI.items() if k != "max_tokens"}
    reply, engine = await post(GatewaySettings(limits={"default_max_tokens": 77}), body=uncapped)
    assert reply.status_code == 200
    assert engine.calls[0][0].max_completion_tokens in (None, 77)
    assert engine.calls[0][0].model_dump()["max_tokens"] == 77


async def test_a_malformed_message_is_a_400_before_the_engine():
    body = {**HI, "messages": [{"role": "tool", "content": "42"}]}
    reply, engine = await post(GatewaySettings(), body=body)
    assert reply.status_code == 400
    assert "messages.0.tool_call_id" in reply.json()["error"]["message"]
    assert engine.calls == []


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "file:///x"}}],
                }
            ],
            "messages.0.content.0.image_url.url: media must be sent inline",
        ),
        ([{"role": "user", "content": {"a": 1}}], "messages.0.content: must be a string"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages.0.content.0.text"),
        ([{"role": "robot", "content": "x"}], "messages.0: Input tag 'robot'"),
    ],
)
def test_message_problems_are_located(messages, needle):
    assert needle in message_problems(messages)


def test_well_formed_messages_pass():
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": None, "tool_calls": [call_of("f")]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
    ]
    assert message_problems(messages) is None


def call_of(name: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}}


async def test_an_engine_failure_is_a_generic_500_with_the_request_id():
    reply, _ = await post(GatewaySettings(), body=HI, engine=FailingEngine())
    assert reply.status_code == 500
    request_id = reply.headers["x-request-id"]
    assert reply.json()["error"]["message"] == f"Internal error (request id {request_id})"
    assert "secret" not in reply.text and "Traceback" not in reply.text


async def test_one_client_has_at_most_its_share_in_flight():
    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    paths = frozenset({"/v1/chat/completions"})
    transport = httpx.ASGITransport(app=ClientConcurrency(slow_app, limit=2, paths=paths))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:

        def send(key: str):
            headers = {"Authorization": f"Bearer {key}"}
            return asyncio.ensure_future(client.post("/v1/chat/completions", headers=headers))

        held = [send("a"), send("a")]
        await asyncio.sleep(0.05)
        refused, other = await send("a"), send("b")
        release.set()
        assert [(await r).status_code for r in [*held, other]] == [200, 200, 200]
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert (await send("a")).status_code == 200
