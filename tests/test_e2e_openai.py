"""End to end: the ``openai`` client against the running gateway and the real CPU vLLM engine."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest
from conftest import WEATHER_TOOL

WEATHER_TOOL_SCHEMA = WEATHER_TOOL["function"]["parameters"]

pytestmark = pytest.mark.slow

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_lists_the_served_model(app):
    models = app.openai().models.list()
    assert [m.id for m in models.data] == [app.model]
    assert app.openai().models.retrieve(app.model).id == app.model


def test_chat_answers_paris(app):
    reply = app.openai().chat.completions.create(
        model=app.model, messages=FRANCE, temperature=0, max_tokens=30
    )
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason in {"stop", "length"}
    assert reply.usage.completion_tokens > 0


def test_streamed_chat_answers_paris_with_one_finish_reason(app):
    stream = app.openai().chat.completions.create(
        model=app.model, messages=FRANCE, temperature=0, max_tokens=30, stream=True
    )
    chunks = [c for c in stream if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    finish_reasons = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    assert "Paris" in text
    assert len(chunks) > 1
    assert len(finish_reasons) == 1


def test_completions_endpoint(app):
    reply = app.openai().completions.create(
        model=app.model, prompt="The capital of France is", temperature=0, max_tokens=5
    )
    assert reply.choices[0].text.strip()


def forced_weather_call(app, tool):
    return app.openai().chat.completions.create(
        model=app.model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
        max_tokens=60,
    )


def test_named_tool_choice_reaches_vllm(app):
    reply = forced_weather_call(app, WEATHER_TOOL)
    calls = reply.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    # The gateway holds the arguments to the tool's schema (vLLM alone did not, docs/
    # architecture.md). The schema allows extra keys, so which ones a model adds depends on
    # the machine's numerics: assert what the schema guarantees, not one greedy path.
    jsonschema.validate(json.loads(calls[0].function.arguments), WEATHER_TOOL_SCHEMA)
    assert reply.choices[0].finish_reason == "tool_calls"


def test_named_tool_choice_with_a_closed_schema_gives_exactly_its_keys(app):
    closed = {**WEATHER_TOOL_SCHEMA, "additionalProperties": False}
    tool = {"type": "function", "function": {**WEATHER_TOOL["function"], "parameters": closed}}
    reply = forced_weather_call(app, tool)
    arguments = json.loads(reply.choices[0].message.tool_calls[0].function.arguments)
    assert arguments.keys() == {"city"}
    assert isinstance(arguments["city"], str)


def test_tool_choice_naming_a_missing_tool_is_400(app):
    with pytest.raises(openai.BadRequestError, match="tool_choice") as caught:
        app.openai().chat.completions.create(
            model=app.model,
            messages=FRANCE,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "launch_rockets"}},
        )
    assert "Internal exception" not in caught.value.message


def test_auto_tool_choice_is_accepted(app):
    reply = app.openai().chat.completions.create(
        model=app.model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        temperature=0,
        max_tokens=60,
    )
    message = reply.choices[0].message
    assert message.content or message.tool_calls


def test_missing_api_key_is_401_in_openai_shape(app):
    response = httpx.get(f"{app.base_url}/v1/models", timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{app.base_url}/v1", api_key="wrong", max_retries=0).models.list()


def test_unknown_model_is_404(app):
    with pytest.raises(openai.NotFoundError) as caught:
        app.openai().chat.completions.create(model="no-such-model", messages=FRANCE)
    assert "no-such-model" in caught.value.message


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        # Every body bounds its own work: an unbounded answer runs to the model window,
        # minutes at a slow box's token rate.
        ({"messages": FRANCE, "max_tokens": 5}, None),
        ({"model": "MODEL"}, "messages"),
        ({"model": "MODEL", "messages": FRANCE, "max_tokens": 10**6}, "max_tokens"),
        ({"model": "MODEL", "messages": FRANCE, "temperature": "hot"}, "temperature"),
    ],
)
def test_bad_requests_are_openai_shaped_4xx(app, body, needle):
    body = {k: (app.model if v == "MODEL" else v) for k, v in body.items()}
    with app.http() as client:
        response = client.post("/v1/chat/completions", json=body)
    if needle is None:  # no model: the only configured model is used
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]
    assert "Traceback" not in response.text


def test_malformed_json_is_400(app):
    with app.http() as client:
        response = client.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_route_is_openai_shaped_404(app):
    with app.http() as client:
        response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_health_reports_the_engine_and_sums_up_mcp(app):
    response = httpx.get(f"{app.base_url}/health", timeout=30)
    # The session's MCP config has a provider that is down on purpose: MCP is degraded,
    # the app still serves (200), and the status says so.
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "models": {app.model: "healthy"},
        "mcp": "degraded",
    }
