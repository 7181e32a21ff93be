"""End to end: the gateway's hardening, through the running app (openai client and httpx).

One Host/Origin policy on every route that can run tools, CORS closed by default, client
output constraints kept out of the server's tool rounds, per-request limits and the
per-client concurrency cap, malformed messages as 400s, and no internals in any error.
"""

from __future__ import annotations

import concurrent.futures
import re

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

HELLO = [{"role": "user", "content": "Say hello."}]
TOOL_ROUTES = ["/v1/chat/completions", "/v1/completions", "/mcp"]
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}
LEAKS = re.compile(r"Traceback|File \"/|site-packages|/work/|/etc/passwd|\.py\b")


def tool_route_body(app, route: str) -> dict:
    if route == "/mcp":
        return {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    if route == "/v1/completions":
        return {"model": app.model, "prompt": "Hello", "max_tokens": 2}
    return {"model": app.model, "messages": HELLO, "max_tokens": 2}


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and not LEAKS.search(response.text)
    return error


@pytest.mark.parametrize("route", TOOL_ROUTES)
def test_a_foreign_host_is_421_on_every_tool_route(app, route):
    with app.http() as client:
        response = client.post(
            route, json=tool_route_body(app, route), headers={"Host": "evil.com", **MCP_HEADERS}
        )
    assert_openai_error(response, 421, "host_not_allowed")


@pytest.mark.parametrize("route", TOOL_ROUTES)
def test_a_foreign_origin_is_403_on_every_tool_route(app, route):
    with app.http() as client:
        response = client.post(
            route,
            json=tool_route_body(app, route),
            headers={"Origin": "http://evil.com", **MCP_HEADERS},
        )
    assert_openai_error(response, 403, "origin_not_allowed")


def test_a_loopback_origin_and_no_origin_are_served(app):
    with app.http() as client:
        for headers in ({"Origin": "http://localhost:3000"}, {}):
            response = client.post(
                "/v1/chat/completions", json=tool_route_body(app, ""), headers=headers
            )
            assert response.status_code == 200, response.text


def test_cors_is_closed_by_default(app):
    with app.http() as client:
        preflight = client.options(
            "/v1/chat/completions",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        answer = client.get("/v1/models", headers={"Origin": "http://localhost:3000"})
        foreign = client.get("/v1/models", headers={"Origin": "http://evil.com"})
    assert answer.status_code == 200
    for response in (preflight, answer, foreign):
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers


def test_client_structured_outputs_do_not_drive_the_servers_tool_rounds(app):
    # The client's regex writes exactly the <tool_call> block the hermes parser reads; were
    # it applied to tool rounds, every round would run this call.
    forced = (
        r'<tool_call>\{"name": "calculator", "arguments": \{"expression": "1\+1"\}\}</tool_call>'
    )
    with app.http() as client:
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": app.model,
                "messages": HELLO,
                "tools": [{"type": "function", "function": {"name": "calculator"}}],
                "tool_choice": "auto",
                "structured_outputs": {"regex": forced},
                "temperature": 0,
                "max_tokens": 40,
            },
        )
    assert response.status_code == 200, response.text
    calls = response.json()["mcp"]["tool_calls"]
    dictated = [c for c in calls if c["arguments"] == {"expression": "1+1"}]
    assert len(dictated) <= 1, calls


def test_a_forced_call_with_a_client_response_format_runs_once(app):
    with app.http() as client:
        response = client.post(
            "/v1/chat/completions",
            json={
                "model": app.model,
                "messages": [{"role": "user", "content": "What is 6 * 7?"}],
                "tools": [{"type": "function", "function": {"name": "calculator"}}],
                "tool_choice": {"type": "function", "function": {"name": "calculator"}},
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "answer",
                        "schema": {
                            "type": "object",
                            "properties": {"answer": {"type": "integer"}},
                            "required": ["answer"],
                        },
                    },
                },
                "temperature": 0,
                "max_tokens": 40,
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    [call] = body["mcp"]["tool_calls"]
    assert call["name"] == "calculator" and "expression" in call["arguments"]
    # The answering round keeps the client's format.
    assert '"answer"' in body["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("route", "extra", "param"),
    [
        ("/v1/chat/completions", {"n": 64, "max_tokens": 8}, "n"),
        ("/v1/completions", {"n": 64, "max_tokens": 8}, "n"),
        ("/v1/chat/completions", {"max_tokens": 5000}, "max_tokens"),
        ("/v1/chat/completions", {"max_completion_tokens": 5000}, "max_completion_tokens"),
        ("/v1/chat/completions", {"n": 3, "max_tokens": 4000}, "max_tokens"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x" * (1024 * 1024 + 1)}]},
            "messages",
        ),
        ("/v1/completions", {"prompt": "x" * (1024 * 1024 + 1), "max_tokens": 2}, "prompt"),
    ],
)
def test_requests_over_a_limit_are_400_naming_it(app, route, extra, param):
    with app.http() as client:
        response = client.post(route, json={**tool_route_body(app, route), **extra})
    error = assert_openai_error(response, 400, "limit_exceeded")
    assert error["param"] == param
    assert param in error["message"]


def test_a_request_without_max_tokens_gets_the_default_cap(app):
    reply = app.openai().chat.completions.create(
        model=app.model,
        messages=[{"role": "user", "content": "Count from one to ten thousand in words."}],
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert reply.usage.completion_tokens == 1024
    assert reply.choices[0].finish_reason == "length"


def test_one_client_cannot_hold_more_than_its_share_of_the_engine(app):
    # Two gateway replicas, eight requests each: at least one of seventeen is refused.
    def one(_: int) -> httpx.Response:
        with app.http() as client:
            return client.post(
                "/v1/chat/completions",
                json={
                    "model": app.model,
                    "messages": HELLO,
                    "max_tokens": 96,
                    "ignore_eos": True,
                },
            )

    with concurrent.futures.ThreadPoolExecutor(17) as pool:
        responses = list(pool.map(one, range(17)))
    refused = [r for r in responses if r.status_code == 429]
    assert refused, [r.status_code for r in responses]
    assert all(r.status_code in {200, 429} for r in responses)
    assert refused[0].headers["retry-after"] == "1"
    assert refused[0].json()["error"]["code"] == "too_many_concurrent_requests"
    # The slots come back when the requests end.
    assert one(0).status_code == 200


@pytest.mark.parametrize(
    "messages",
    [
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
            }
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "http://127.0.0.1:1/x.png"}}
                ],
            }
        ],
        [{"role": "tool", "content": "42"}],
        [{"role": "user", "content": [{"type": "text"}]}],
        [{"role": "user", "content": {"text": "hi"}}],
    ],
)
def test_malformed_messages_are_400_without_internals(app, messages):
    with app.http() as client:
        response = client.post(
            "/v1/chat/completions", json={"model": app.model, "messages": messages, "max_tokens": 2}
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "messages" in error["message"]
    assert not LEAKS.search(response.text)


def test_an_inline_image_for_a_text_only_model_is_refused_without_internals(app):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with app.http() as client:
        response = client.post(
            "/v1/chat/completions",
            json={"model": app.model, "messages": [{"role": "user", "content": [image]}]},
        )
    assert response.status_code == 400, response.text
    assert "not a multimodal model" in response.json()["error"]["message"]
    assert not LEAKS.search(response.text)


def test_openai_client_sees_the_limit_as_bad_request(app):
    with pytest.raises(openai.BadRequestError, match="n is 64"):
        app.openai().chat.completions.create(model=app.model, messages=HELLO, n=64, max_tokens=2)
