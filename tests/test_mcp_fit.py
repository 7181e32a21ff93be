"""Recipes and MCP know each other: an ``mcp:`` section that cannot work on the chosen
recipe is refused by ``aim-ray config validate`` (with its line) and by ``build_app``; an
unset context budget is fitted to the model's window."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aim_ray.cli.main import app as cli
from aim_ray.config.app import InvalidAppArgs, parse_app_args
from aim_ray.deploy.serve_config import validate_serve_config
from aim_ray.engine.llm_config import choose_recipe
from aim_ray.engine.mcp_fit import ANSWER_RESERVE_TOKENS, fit_mcp

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner(env={"COLUMNS": "200"})
WINDOW = 2048  # SmolLM2's max_model_len in its CPU recipes


def default_config() -> dict:
    return yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())


def written(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_default_config_fits() -> None:
    assert validate_serve_config(REPO / "serve_configs" / "local.yaml") == []


def test_a_context_budget_over_the_window_is_refused_at_its_line(tmp_path: Path) -> None:
    config = default_config()
    config["applications"][0]["args"]["mcp"]["context"]["max_length"] = 1800
    path = written(tmp_path, config)
    (problem,) = validate_serve_config(path)
    assert problem.location == "applications[0].args.mcp.context.max_length"
    assert problem.line == line_of(path, "max_length: 1800")
    assert f"window of {WINDOW} tokens" in problem.message
    assert f"set at most {WINDOW - ANSWER_RESERVE_TOKENS}" in problem.message

    result = runner.invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code == 1
    assert f"line {problem.line}" in result.output and "max_length" in result.output


def test_registry_tools_on_a_model_that_cannot_call_tools(tmp_path: Path) -> None:
    config = default_config()
    args = config["applications"][0]["args"]
    args["models"][0]["engine_kwargs"] = {"enable_auto_tool_choice": False}
    path = written(tmp_path, config)
    (problem,) = validate_serve_config(path)
    assert problem.location == "applications[0].args.mcp.tools"
    assert problem.line == line_of(path, "- name: calculator")  # the list's first line
    assert "cannot call the registry tools" in problem.message
    assert "aim-ray recipes select --mcp" in problem.message

    args["mcp"]["tools"] = []  # context alone needs no tool calling
    assert validate_serve_config(written(tmp_path, config)) == []


def test_a_tool_naming_an_undefined_provider(tmp_path: Path) -> None:
    config = default_config()
    config["applications"][0]["args"]["mcp"]["tools"][2]["config"]["provider"] = "nowhere"
    (problem,) = validate_serve_config(written(tmp_path, config))
    assert "tool 'vector_search': config.provider 'nowhere' is not defined" in problem.message
    assert "(providers: docs, files)" in problem.message


def test_build_app_refuses_before_anything_starts() -> None:
    from aim_ray.serving.app import build_app

    args = default_config()["applications"][0]["args"]
    args["mcp"]["context"]["max_length"] = 4096
    with pytest.raises(InvalidAppArgs, match=r"args\.mcp\.context\.max_length: 4096 context"):
        build_app(args)


def test_an_unset_budget_is_fitted_to_the_window() -> None:
    raw = default_config()["applications"][0]["args"]
    del raw["mcp"]["context"]["max_length"]
    args = parse_app_args(raw)
    assert args.mcp.context.max_length == 4096  # the schema's default, larger than the window
    fitted = fit_mcp(args, [choose_recipe(spec) for spec in args.models])
    assert fitted.mcp.context.max_length == WINDOW - ANSWER_RESERVE_TOKENS
