"""The MCP chat loop's logic, against a scripted engine and the real ToolService.

The end-to-end tests (``test_e2e_chat_mcp.py``) drive it through the running app with
the real model; a 135M model cannot be made to call a tool round after round, name two
tools at once or send broken arguments on cue, so those paths are checked here.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import WEATHER_TOOL

from aim_ray.config.gateway import ChatSettings
from aim_ray.config.mcp import MCPConfig
from aim_ray.mcp.chat.loop import MCPChat
from aim_ray.mcp.protocol import ContextItem, ContextResult, ProviderOutcome
from aim_ray.mcp.tools.service import ToolService
from aim_ray.serving.ray_internals import OpenAIHTTPException

MODEL = "m"
CALCULATOR = {"type": "function", "function": {"name": "calculator"}}


class Handle:
    """A plain object's async methods behind ``.method.remote(...)``, as a Serve handle."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)

        class Method:
            @staticmethod
            async def remote(*args: Any, **kwargs: Any) -> Any:
                return await method(*args, **kwargs)

        return Method


class ScriptedEngine:
    """Answers with the given assistant messages in turn; keeps every request."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.script = list(messages)
        self.requests: list[dict[str, Any]] = []

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(json.loads(json.dumps(payload)))
        message = {"role": "assistant", "content": None, **self.script.pop(0)}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": payload["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }

    async def stream(self, payload: dict[str, Any]):
        raise AssertionError("not streamed in these tests")

    async def count_tokens(self, model: str, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]


class Context:
    """A context service that returns fixed items and knows two providers."""

    def __init__(self, *items: ContextItem) -> None:
        self.items = list(items)

    async def provider_names(self) -> list[str]:
        return ["docs", "wiki"]

    async def retrieve(self, providers: list[str], query: str, limit: int | None, *, fit: bool):
        assert not fit, "the chat fits context itself, with the model's tokenizer"
        outcomes = [ProviderOutcome(provider=p, status="ok", items=1) for p in providers]
        return ContextResult(query=query, items=self.items, providers=outcomes)


def call(name: str, arguments: str, call_id: str = "c1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class Chat:
    """The chat loop bound to one engine, as the gateway runs it for one request."""

    def __init__(self, loop: MCPChat, engine: ScriptedEngine) -> None:
        self._loop = loop
        self._engine = engine

    async def handle(self, payload: dict[str, Any]) -> Any:
        return await self._loop.handle(payload, self._engine)


def chat(engine, *, context=None, max_context_tokens=100, iterations=5) -> Chat:
    tools = ToolService(MCPConfig.model_validate({"tools": [{"name": "calculator"}]}))
    loop = MCPChat(
        tools,
        Handle(context) if context else None,
        max_context_tokens=max_context_tokens,
        settings=ChatSettings(max_tool_iterations=iterations),
    )
    return Chat(loop, engine)


def request(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}


async def test_a_plain_chat_is_left_to_the_engine():
    assert await chat(ScriptedEngine()).handle(request()) is None
    assert await chat(ScriptedEngine()).handle(request(tools=[WEATHER_TOOL])) is None


async def test_registry_tool_schema_is_filled_in_and_its_calls_run_server_side():
    engine = ScriptedEngine(
        {"tool_calls": [call("calculator", '{"expression": "6*7"}')]},
        {"content": "42"},
    )
    outcome = await chat(engine).handle(request(tools=[CALCULATOR]))
    assert engine.requests[0]["tools"][0]["function"]["parameters"]["type"] == "object"
    assert outcome.response["choices"][0]["message"]["content"] == "42"
    [record] = outcome.report.tool_calls
    assert (record.name, record.status, record.content) == ("calculator", "ok", "42")
    # The second round sees the call and its result.
    assert engine.requests[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": "42",
    }
    assert outcome.report.iterations == 2


async def test_the_iteration_limit_makes_the_last_round_answer():
    again = {"tool_calls": [call("calculator", '{"expression": "1+1"}')]}
    engine = ScriptedEngine(again, again, {"content": "done"})
    outcome = await chat(engine, iterations=3).handle(request(tools=[CALCULATOR]))
    assert len(engine.requests) == 3
    assert [r.get("tool_choice") for r in engine.requests] == [None, None, "none"]
    assert outcome.report.iterations == 3
    assert len(outcome.report.tool_calls) == 2
    assert outcome.response["choices"][0]["message"]["content"] == "done"


async def test_mixed_calls_run_ours_and_return_the_clients():
    engine = ScriptedEngine(
        {
            "tool_calls": [
                call("calculator", '{"expression": "2+2"}', "c1"),
                call("get_weather", '{"city": "Paris"}', "c2"),
            ]
        }
    )
    outcome = await chat(engine).handle(request(tools=[CALCULATOR, WEATHER_TOOL]))
    choice = outcome.response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in choice["message"]["tool_calls"]] == ["get_weather"]
    assert [r.name for r in outcome.report.tool_calls] == ["calculator"]


@pytest.mark.parametrize(
    ("arguments", "why"),
    [("not json", "not JSON"), ("[1, 2]", "must be an object")],
)
async def test_broken_arguments_are_a_failed_call_not_a_crash(arguments, why):
    engine = ScriptedEngine({"tool_calls": [call("calculator", arguments)]}, {"content": "sorry"})
    outcome = await chat(engine).handle(request(tools=[CALCULATOR]))
    [record] = outcome.report.tool_calls
    assert record.status == "error" and why in record.content
    assert outcome.response["choices"][0]["message"]["content"] == "sorry"


async def test_required_with_one_tool_is_forced_through_a_json_schema():
    engine = ScriptedEngine({"content": '{"expression": "3*3"}'}, {"content": "9"})
    outcome = await chat(engine).handle(request(tools=[CALCULATOR], tool_choice="required"))
    forced = engine.requests[0]
    assert forced["response_format"]["type"] == "json_schema"
    assert "tools" not in forced and "tool_choice" not in forced
    assert engine.requests[1]["tool_choice"] == "none"
    assert outcome.report.tool_calls[0].content == "9"


async def test_tool_choice_naming_an_absent_tool_is_a_400():
    choice = {"type": "function", "function": {"name": "launch"}}
    with pytest.raises(OpenAIHTTPException) as caught:
        await chat(ScriptedEngine()).handle(request(tools=[CALCULATOR], tool_choice=choice))
    assert caught.value.status_code == 400


async def test_context_is_fitted_to_the_token_budget_and_merged_into_the_system_message():
    items = [
        ContextItem(provider="docs", id="1", content="one two three"),
        ContextItem(provider="wiki", id="2", content="four five six seven eight nine"),
        ContextItem(provider="docs", id="3", content="ten"),
    ]
    engine = ScriptedEngine({"content": "ok"})
    payload = request(mcp_context={"query": "numbers"})
    payload["messages"].insert(0, {"role": "system", "content": "Be brief."})
    outcome = await chat(engine, context=Context(*items), max_context_tokens=6).handle(payload)
    report = outcome.report.context
    # "[docs:1] one two three" is 4 words, "[wiki:2] ..." 7 (over), "[docs:3] ten" 2.
    assert [i.id for i in report.items] == ["1", "3"]
    assert report.tokens == 6 and report.truncated
    [system, user] = engine.requests[0]["messages"]
    assert system["content"].startswith("Be brief.\n\n") and "[docs:3] ten" in system["content"]
    assert user == {"role": "user", "content": "hi"}


async def test_unknown_context_provider_is_a_400_naming_the_known_ones():
    payload = request(mcp_context={"providers": ["nope"]})
    with pytest.raises(OpenAIHTTPException) as caught:
        await chat(ScriptedEngine(), context=Context()).handle(payload)
    assert caught.value.status_code == 400
    assert "known: docs, wiki" in caught.value.message


class StreamingEngine(ScriptedEngine):
    """Streams the final round as two content chunks and the engine's own ``[DONE]``."""

    async def stream(self, payload: dict[str, Any]):
        self.requests.append(json.loads(json.dumps(payload)))

        async def chunks():
            for text in ("4", "2"):
                delta = {"choices": [{"index": 0, "delta": {"content": text}}]}
                yield f"data: {json.dumps(delta)}\n\n"
            yield "data: [DONE]\n\n"

        return chunks()


def events(chunks: list[str]) -> list[dict[str, Any]]:
    return [json.loads(c.removeprefix("data: ")) for c in chunks if c.strip() != "data: [DONE]"]


async def test_a_stream_sends_events_beside_the_final_rounds_own_chunks():
    engine = StreamingEngine({"content": '{"expression": "6*7"}'})
    answer = await chat(engine).handle(
        request(tools=[CALCULATOR], tool_choice="required", stream=True)
    )
    chunks = [chunk async for chunk in answer.chunks]
    assert engine.requests[-1]["stream"] and engine.requests[-1]["tool_choice"] == "none"
    [call, first, second, summary] = events(chunks)
    assert call["choices"] == [] and call["mcp"]["event"] == "tool_call"
    assert [c["choices"][0]["delta"]["content"] for c in (first, second)] == ["4", "2"]
    assert summary["choices"] == [] and summary["mcp"]["event"] == "summary"
    assert summary["mcp"]["iterations"] == 2
    assert chunks[-1] == "data: [DONE]\n\n"


async def test_a_stream_whose_answer_came_whole_sends_it_as_chunks():
    engine = StreamingEngine(
        {"tool_calls": [call("calculator", '{"expression": "6*7"}')]}, {"content": "42"}
    )
    answer = await chat(engine).handle(request(tools=[CALCULATOR], stream=True))
    [tool_call, first, last, summary] = events([chunk async for chunk in answer.chunks])
    assert tool_call["mcp"]["content"] == "42"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "42"}
    assert last["choices"][0]["finish_reason"] == "stop"
    assert summary["mcp"]["tool_calls"][0]["name"] == "calculator"


# -- client output constraints and the tool time budget ------------------------------------

REGEX = {"regex": "<tool_call>.*</tool_call>"}
FORMAT = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}


async def test_client_constraints_stay_out_of_tool_rounds_and_shape_the_answer():
    engine = ScriptedEngine(
        {"tool_calls": [call("calculator", '{"expression": "1+1"}')]},
        {"tool_calls": [call("calculator", '{"expression": "1+1"}', "c2")]},
        {"content": '{"answer": 2}'},
    )
    answer = await chat(engine, iterations=3).handle(
        request(tools=[CALCULATOR], structured_outputs=REGEX, guided_json={"type": "object"})
    )
    tool_rounds, final = engine.requests[:2], engine.requests[2]
    for sent in tool_rounds:
        assert "structured_outputs" not in sent and "guided_json" not in sent
    assert final["tool_choice"] == "none"
    assert final["structured_outputs"] == REGEX and final["guided_json"] == {"type": "object"}
    assert answer.body["choices"][0]["message"]["content"] == '{"answer": 2}'


async def test_a_forced_call_uses_its_own_format_and_runs_once():
    engine = ScriptedEngine({"content": '{"expression": "6*7"}'}, {"content": '{"answer": 42}'})
    answer = await chat(engine).handle(
        request(
            tools=[CALCULATOR],
            tool_choice={"type": "function", "function": {"name": "calculator"}},
            response_format=FORMAT,
            structured_outputs=REGEX,
        )
    )
    forced, final = engine.requests
    assert forced["response_format"]["json_schema"]["name"] == "calculator"
    assert "structured_outputs" not in forced
    assert final["tool_choice"] == "none"
    assert final["response_format"] == FORMAT and final["structured_outputs"] == REGEX
    assert [c.content for c in answer.report.tool_calls] == ["42"]


class SlowTools:
    """A tool service whose calls never finish within the test's budget."""

    async def list_tools(self):
        return await ToolService(
            MCPConfig.model_validate({"tools": [{"name": "calculator"}]})
        ).list_tools()

    async def call_tool(self, name: str, arguments: dict[str, Any]):
        await asyncio.sleep(3600)


async def test_tool_rounds_share_one_time_budget():
    engine = ScriptedEngine(
        {"tool_calls": [call("calculator", '{"expression": "1+1"}')]}, {"content": "done"}
    )
    loop = MCPChat(
        SlowTools(),
        None,
        max_context_tokens=100,
        settings=ChatSettings(),
        max_tool_time_s=0.05,
    )
    answer = await loop.handle(request(tools=[CALCULATOR]), engine)
    [record] = answer.report.tool_calls
    assert record.status == "timeout" and "0.05 s" in record.content
    # The spent budget ends the tool rounds: the model answers with tools off.
    assert engine.requests[1]["tool_choice"] == "none"
    assert answer.body["choices"][0]["message"]["content"] == "done"
