"""``aim-ray test-endpoint`` against the running application, and its pure helpers."""

from __future__ import annotations

import json

import pytest
from conftest import free_port
from typer.testing import CliRunner

from aim_ray.cli.chat_check import _merge_call_delta, api_base
from aim_ray.cli.main import app as cli

runner = CliRunner()


def run(app, *args: str):
    env = {"AIM_RAY_API_KEY": app.api_key}
    return runner.invoke(cli, ["test-endpoint", app.base_url, *args], env=env)


@pytest.mark.parametrize("url", ["http://h:8000", "http://h:8000/", "http://h:8000/v1/"])
def test_api_base_accepts_the_root_or_v1(url):
    assert api_base(url) == "http://h:8000/v1"


def test_streamed_tool_call_fragments_are_joined():
    call: dict = {}
    _merge_call_delta(call, {"id": "c1", "function": {"name": "f", "arguments": '{"a"'}})
    _merge_call_delta(call, {"id": None, "function": {"name": None, "arguments": ": 1}"}})
    assert call == {"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}}


def test_unreachable_endpoint_is_one_clear_line():
    result = runner.invoke(
        cli, ["test-endpoint", f"http://127.0.0.1:{free_port()}", "--query", "hi"]
    )
    assert result.exit_code == 2
    assert "cannot reach http://127.0.0.1:" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_reports_context_and_server_side_tool_calls_as_json(app):
    result = run(
        app,
        "--query",
        "What is 12 times 12?",
        "--context-providers",
        "docs_db",
        "--context-query",
        "kitten",
        "--tools",
        "calculator",
        "--tool-choice",
        "calculator",
        "--json",
    )
    assert result.exit_code == 0, result.output
    # Ray echoes replica logs into this process's stdout, so read the first JSON value.
    check, _ = json.JSONDecoder().raw_decode(result.stdout, result.stdout.index("{\n"))
    assert check["model"] == app.model
    assert check["answer"]
    items = check["mcp"]["context"]["items"]
    assert items and {i["provider"] for i in items} == {"docs_db"}
    assert all("kitten" in i["content"] for i in items)
    [call] = check["mcp"]["tool_calls"]
    assert call["name"] == "calculator" and call["status"] == "ok"
    assert check["seconds_total"] > 0


@pytest.mark.slow
def test_streamed_run_prints_answer_context_and_events(app):
    result = run(app, "--query", "puppy", "--context-providers", "docs_db,files", "--stream")
    assert result.exit_code == 0, result.output
    assert "context (" in result.output
    assert "[docs_db:" in result.output
    assert "first token:" in result.output
    assert "stream events: context, summary" in result.output


@pytest.mark.slow
def test_endpoint_errors_are_reported_with_the_servers_message(app):
    result = run(app, "--query", "hi", "--context-providers", "nope")
    assert result.exit_code == 2
    assert "the endpoint answered 400" in result.output
    assert "unknown context provider(s) nope" in result.output


@pytest.mark.slow
def test_missing_api_key_is_reported_as_401(app):
    result = runner.invoke(cli, ["test-endpoint", app.base_url, "--query", "hi"], env={})
    assert result.exit_code == 2
    assert "the endpoint answered 401" in result.output
