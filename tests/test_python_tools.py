"""``type: python`` tools and MCP prompts, in process: the schema derived from a typed
function, calls through ``ToolService`` (validation, timeout, errors), a function that
cannot be a tool, and prompt templates. The running app serves both at ``/mcp``
(``test_e2e_mcp.py``)."""

from __future__ import annotations

import re

import pytest

from aim_ray.config.mcp import MCPConfig, validation_problems
from aim_ray.config.mcp_prompts import PromptArgumentsError
from aim_ray.mcp.tools.service import ToolService


def service(*tools: dict) -> ToolService:
    return ToolService(MCPConfig.model_validate({"tools": list(tools)}))


def python_tool(name: str, function: str, **extra) -> dict:
    return {"name": name, "type": "python", "import_path": f"python_tools:{function}", **extra}


async def test_the_schema_comes_from_the_signature() -> None:
    (spec,) = await service(python_tool("convert", "convert_length")).list_tools()
    assert spec.description == "Convert a length between kilometres and miles."
    assert spec.input_schema == {
        "type": "object",
        "properties": {
            "value": {"type": "number", "description": "The length to convert.", "minimum": 0},
            "unit": {
                "type": "string",
                "enum": ["km", "mi"],
                "description": "The unit of `value`.",
                "default": "km",
            },
        },
        "required": ["value"],
        "additionalProperties": False,
    }


async def test_calls_are_validated_and_return_structured_results() -> None:
    tools = service(python_tool("convert", "convert_length"), python_tool("pop", "city_population"))
    ok = await tools.call_tool("convert", {"value": 10, "unit": "mi"})
    assert (ok.status, ok.structured, ok.content) == ("ok", {"km": 16.093}, '{"km": 16.093}')
    bad = await tools.call_tool("convert", {"value": -1, "colour": "red"})
    assert bad.status == "error" and "value" in bad.content and "colour" in bad.content
    refused = await tools.call_tool("pop", {"city": "Atlantis"})
    assert (refused.status, refused.content) == ("error", "no figures for Atlantis")
    assert (await tools.call_tool("pop", {"city": "Lisbon"})).structured == 545_000


async def test_an_exception_is_reported_by_type_only() -> None:
    result = await service(python_tool("leaky", "leaky")).call_tool("leaky", {"path": "x"})
    assert result.status == "error" and result.content == "leaky raised ValueError"
    assert "hunter2" not in result.content and "/srv" not in result.content


async def test_an_async_function_runs_under_the_timeout() -> None:
    tools = service(python_tool("echo", "slow_echo", timeout_s=0.5))
    assert (await tools.call_tool("echo", {"text": "hi"})).content == "hi"
    late = await tools.call_tool("echo", {"text": "hi", "seconds": 5})
    assert late.status == "timeout"


@pytest.mark.parametrize(
    ("function", "why"),
    [
        ("unannotated", "argument 'value' has no type annotation"),
        ("nowhere", "'python_tools:nowhere' is not a function"),
    ],
)
async def test_a_function_that_cannot_be_a_tool_is_left_out(function: str, why: str) -> None:
    tools = service({"name": "calculator"}, python_tool("broken", function))
    assert [spec.name for spec in await tools.list_tools()] == ["calculator"]
    health = (await tools.health()).tools["broken"]
    assert health.status == "down" and why in health.detail
    call = await tools.call_tool("broken", {"value": 1})
    assert call.status == "error" and "tool 'broken' is unavailable" in call.content


async def test_a_module_that_does_not_import() -> None:
    entry = python_tool("gone", "x") | {"import_path": "no_such_module:f"}
    health = (await service(entry).health()).tools["gone"]
    assert health.status == "down"
    assert health.detail == (
        "no_such_module:f: cannot import 'no_such_module': "
        "ModuleNotFoundError: No module named 'no_such_module'"
    )


def test_import_path_is_checked_in_the_config() -> None:
    (problem,) = validation_problems({"tools": [python_tool("t", "x") | {"import_path": "a b"}]})
    assert problem.startswith("mcp.tools[0].config.import_path: String should match pattern")


# -- prompts ------------------------------------------------------------------------------


def prompt_config(**prompt) -> MCPConfig:
    return MCPConfig.model_validate({"prompts": [{"name": "summarize", **prompt}]})


def test_a_prompt_is_filled_in() -> None:
    config = prompt_config(
        arguments=[{"name": "path"}, {"name": "audience", "required": False}],
        messages=[
            {"role": "user", "content": "Summarize {path} for {audience}; keep {{braces}}."},
            {"role": "assistant", "content": "Reading {path}."},
        ],
    )
    messages = config.prompts[0].render({"path": "docs/security.md"})
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Summarize docs/security.md for ; keep {braces}."),
        ("assistant", "Reading docs/security.md."),
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [({}, "missing required argument(s) path"), ({"path": "a", "x": "b"}, "unknown argument")],
)
def test_prompt_arguments_that_do_not_fit(values: dict, message: str) -> None:
    prompt = prompt_config(arguments=[{"name": "path"}], template="Read {path}").prompts[0]
    with pytest.raises(PromptArgumentsError, match=re.escape(message)):
        prompt.render(values)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ({"template": "Hi {who}"}, "uses {who}, which is not a declared argument"),
        ({"arguments": [{"name": "a"}], "template": "{a.__class__}"}, "plain argument name"),
        ({"arguments": [{"name": "a"}], "template": "{a!r}"}, "plain argument name"),
        ({"template": "a { b"}, "write {{ and }} for braces"),
        ({"template": "x", "messages": [{"content": "y"}]}, "set `template`"),
    ],
)
def test_bad_templates_are_config_errors(prompt: dict, message: str) -> None:
    (problem,) = validation_problems({"prompts": [{"name": "p", **prompt}]})
    assert message in problem
