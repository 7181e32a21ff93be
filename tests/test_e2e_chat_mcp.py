"""End to end: MCP-aware chat completions through the ``openai`` client.

Context from the real PostgreSQL provider, the calculator run server-side by the tool
deployment, client tools returned as ``tool_calls``, streaming with the side channel.
"""

from __future__ import annotations

import json

import openai
import pytest
from conftest import WEATHER_TOOL

pytestmark = pytest.mark.slow

CALCULATOR = {"type": "function", "function": {"name": "calculator"}}
FORCE_CALCULATOR = {"type": "function", "function": {"name": "calculator"}}


def chat(app, **kwargs):
    return app.openai().chat.completions.create(
        model=app.model, temperature=0, max_tokens=60, **kwargs
    )


def mcp_of(response) -> dict:
    return response.to_dict()["mcp"]


def ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def test_context_from_postgres_is_injected_and_reported(app):
    response = chat(
        app,
        messages=ask("What is a young cat called?"),
        extra_body={"mcp_context": {"providers": ["docs_db"], "query": "kitten"}},
    )
    context = mcp_of(response)["context"]
    assert context["query"] == "kitten"
    [item] = context["items"]
    assert item["provider"] == "docs_db"
    assert "kitten" in item["content"]
    assert 0 < item["tokens"] <= context["tokens"]
    assert [p["status"] for p in context["providers"]] == ["ok"]
    assert response.choices[0].message.content


def test_context_query_defaults_to_the_last_user_message(app):
    response = chat(
        app,
        messages=ask("puppy"),
        extra_body={"mcp_context": {"providers": ["docs_db", "files"]}},
    )
    context = mcp_of(response)["context"]
    assert context["query"] == "puppy"
    assert {i["provider"] for i in context["items"]} == {"docs_db", "files"}
    assert all("puppy" in i["content"] for i in context["items"])


def test_a_failing_provider_degrades_the_answer_but_not_the_request(app):
    response = chat(
        app,
        messages=ask("Tell me about hardware revenue."),
        extra_body={"mcp_context": {"providers": ["docs_db", "down_db"], "query": "revenue"}},
    )
    context = mcp_of(response)["context"]
    statuses = {p["provider"]: p["status"] for p in context["providers"]}
    assert statuses["docs_db"] == "ok"
    assert statuses["down_db"] != "ok"
    assert context["degraded"] is True
    assert [i["provider"] for i in context["items"]] == ["docs_db"]
    assert response.choices[0].message.content


def test_repeated_query_is_served_from_the_cache(app):
    body = {"mcp_context": {"providers": ["api"], "query": "MI300X memory"}}
    chat(app, messages=ask("How much memory?"), extra_body=body)
    again = chat(app, messages=ask("How much memory?"), extra_body=body)
    [outcome] = mcp_of(again)["context"]["providers"]
    assert outcome["cached"] is True


def test_context_is_cut_to_the_token_budget(app):
    response = chat(
        app,
        messages=ask("Everything about animals"),
        extra_body={"mcp_context": {"providers": ["vectors", "files"], "limit": 4}},
    )
    context = mcp_of(response)["context"]
    assert context["tokens"] <= 512  # context.max_length of the session app
    assert sum(i["tokens"] for i in context["items"]) == context["tokens"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"providers": ["nope"]}, "unknown context provider"),
        ({"providers": "docs_db"}, "mcp_context.providers"),
        ({"colour": "red"}, "mcp_context.colour"),
    ],
)
def test_bad_mcp_context_is_a_400(app, body, needle):
    with pytest.raises(openai.BadRequestError) as caught:
        chat(app, messages=ask("hi"), extra_body={"mcp_context": body})
    assert needle in caught.value.message


def test_named_registry_tool_runs_server_side(app):
    response = chat(
        app,
        messages=ask("What is 17 * 23?"),
        tools=[CALCULATOR],
        tool_choice=FORCE_CALCULATOR,
    )
    message = response.choices[0].message
    assert message.role == "assistant"
    assert not message.tool_calls
    assert response.choices[0].finish_reason in {"stop", "length"}
    [call] = mcp_of(response)["tool_calls"]
    assert call["name"] == "calculator"
    assert call["status"] == "ok", call
    assert isinstance(call["arguments"], dict) and "expression" in call["arguments"]
    assert float(call["content"]) == pytest.approx(eval_arithmetic(call["arguments"]))
    assert call["latency_ms"] > 0


def test_a_python_tool_runs_through_chat(app):
    convert = {"type": "function", "function": {"name": "convert_length"}}
    response = chat(
        app,
        messages=ask("How many kilometres are 10 miles?"),
        tools=[convert],
        tool_choice=convert,
    )
    [call] = mcp_of(response)["tool_calls"]
    assert call["name"] == "convert_length"
    # The arguments were held to the function's schema: whatever the model chose, it ran.
    assert call["status"] == "ok", call
    assert call["arguments"].get("unit", "km") in {"km", "mi"}
    assert set(json.loads(call["content"])) <= {"km", "mi"}


def eval_arithmetic(arguments: dict) -> float:
    from aim_ray.mcp.tools.calculator import Calculator

    return float(Calculator(max_exponent=1000).evaluate(arguments["expression"]))


def test_client_tool_comes_back_as_tool_calls(app):
    response = chat(
        app,
        messages=ask("What is the weather in Paris?"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_mixed_request_returns_the_client_call_to_the_client(app):
    response = chat(
        app,
        messages=ask("What is the weather in Paris?"),
        tools=[CALCULATOR, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls] == ["get_weather"]
    assert mcp_of(response)["tool_calls"] == []


def stream_events(app, **kwargs) -> tuple[str, list[str], list[dict]]:
    stream = app.openai().chat.completions.create(
        model=app.model, temperature=0, max_tokens=60, stream=True, **kwargs
    )
    text, finish_reasons, events = "", [], []
    for chunk in stream:
        data = chunk.to_dict()
        if "mcp" in data:
            assert data["choices"] == []
            events.append(data["mcp"])
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    return text, finish_reasons, events


def test_streamed_server_tool_round_has_one_message_and_a_side_channel(app):
    text, finish_reasons, events = stream_events(
        app, messages=ask("What is 17 * 23?"), tools=[CALCULATOR], tool_choice=FORCE_CALCULATOR
    )
    assert text
    assert len(finish_reasons) == 1
    assert [e["event"] for e in events] == ["tool_call", "summary"]
    assert events[0]["name"] == "calculator" and events[0]["status"] == "ok"
    assert events[1]["tool_calls"][0]["id"] == events[0]["id"]


def test_streamed_chat_with_context_reports_it_first(app):
    text, finish_reasons, events = stream_events(
        app,
        messages=ask("What is a young dog called?"),
        extra_body={"mcp_context": {"providers": ["docs_db"], "query": "puppy"}},
    )
    assert text and len(finish_reasons) == 1
    assert [e["event"] for e in events] == ["context", "summary"]
    assert "puppy" in events[0]["items"][0]["content"]


def test_plain_chat_has_no_mcp_object(app):
    response = chat(app, messages=ask("What is the capital of France?"))
    assert "mcp" not in response.to_dict()
    assert "Paris" in response.choices[0].message.content


def test_a_forced_tool_round_is_two_model_calls_over_plain_http(app):
    """Without the openai client: the raw JSON has the ``mcp`` report of both rounds (that
    the second round sees the result is checked in ``test_mcp_chat.py``)."""
    with app.http() as client:
        body = {
            "model": app.model,
            "messages": ask("What is 6 * 7? Answer with the number."),
            "tools": [CALCULATOR],
            "tool_choice": FORCE_CALCULATOR,
            "temperature": 0,
            "max_tokens": 30,
        }
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["mcp"]["iterations"] == 2
    assert data["mcp"]["tool_calls"][0]["content"] == "42"
