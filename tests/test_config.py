"""Application args, Serve config rendering and validation, and their CLI commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aim_ray.cli.main import app as cli
from aim_ray.config.app import AppArgs, InvalidAppArgs, ModelSpec, parse_app_args
from aim_ray.config.gateway import AuthSettings
from aim_ray.config.mcp import MCPConfig
from aim_ray.deploy.serve_config import render_serve_config, validate_serve_config
from aim_ray.serving.app import build_llm_config
from aim_ray.serving.auth import load_api_keys

REPO = Path(__file__).resolve().parent.parent
SERVE_CONFIGS = sorted((REPO / "serve_configs").glob("*.yaml"))
runner = CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    return path


def test_app_args_report_every_problem_with_its_path():
    with pytest.raises(InvalidAppArgs) as caught:
        parse_app_args({"models": [{"model_id": "x", "gpus": 0, "colour": "red"}], "extra": 1})
    message = str(caught.value)
    assert "args.models[0].gpus" in message
    assert "args.models[0].colour" in message
    assert "args.extra" in message


def test_app_args_need_a_model():
    with pytest.raises(InvalidAppArgs, match="args.models"):
        parse_app_args({"models": []})


def test_llm_config_follows_the_recipe_and_overrides(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"w")
    spec = ModelSpec(
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        source=str(folder),
        hardware="CPU",
        engine_kwargs={"max_model_len": 1024},
    )
    config = build_llm_config(spec)
    assert config.model_id == "smollm2-135m-instruct"
    assert config.model_loading_config.model_source == str(folder.resolve())
    assert config.engine_kwargs["max_model_len"] == 1024
    assert config.engine_kwargs["tool_call_parser"] == "hermes"
    assert config.accelerator_config.kind == "cpu"


def test_gpu_llm_config_asks_ray_for_amd_gpus():
    spec = ModelSpec(model_id="Qwen/Qwen3-32B", hardware="MI300X", gpus=4)
    config = build_llm_config(spec, prepare_model=False)
    assert config.accelerator_type == "AMD-Instinct-MI300X-OAM"
    assert config.engine_kwargs["tensor_parallel_size"] == 4
    assert config.placement_group_config["bundle_per_worker"]["GPU"] == 1
    assert "ROCR_VISIBLE_DEVICES" not in config.runtime_env["env_vars"]


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_shipped_serve_configs_are_valid(path):
    assert validate_serve_config(path) == []


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_shipped_serve_configs_are_what_render_writes(path):
    config = yaml.safe_load(path.read_text())
    args = AppArgs.model_validate(config["applications"][0]["args"])
    http = config["http_options"]
    rendered = render_serve_config(args, host=http["host"], port=http["port"])
    # The mcp: section is written by hand (with comments); it must read back the same.
    shipped_mcp = config["applications"][0]["args"].pop("mcp", None)
    rendered_mcp = rendered["applications"][0]["args"].pop("mcp", None)
    assert rendered == config
    if shipped_mcp is not None:
        assert MCPConfig.model_validate(rendered_mcp) == MCPConfig.model_validate(shipped_mcp)


def test_validate_locates_each_problem_by_path_and_line(tmp_path):
    path = write(
        tmp_path,
        """\
applications:
- name: aim-ray
  import_path: aim_ray.app:build_app
  args:
    models:
    - model_id: HuggingFaceTB/SmolLM2-135M-Instruct
      gpus: 0
      colour: red
""",
    )
    problems = {p.location: p for p in validate_serve_config(path)}
    assert problems["applications[0].args.models[0].gpus"].line == 7
    assert problems["applications[0].args.models[0].colour"].line == 8


def test_validate_reports_a_model_without_a_recipe(tmp_path):
    path = write(
        tmp_path,
        """\
applications:
- name: aim-ray
  import_path: aim_ray.app:build_app
  args:
    models:
    - model_id: acme/unknown-model
      hardware: CPU
""",
    )
    [problem] = validate_serve_config(path)
    assert problem.location == "applications[0].args.models[0]"
    assert problem.line == 6
    assert "acme/unknown-model" in problem.message


def test_validate_reports_serve_schema_and_yaml_errors(tmp_path):
    path = write(tmp_path, "applications:\n- name: x\n  import_path: 12\n")
    [problem] = validate_serve_config(path)
    assert (problem.location, problem.line) == ("applications[0].import_path", 3)
    bad_yaml = write(tmp_path, "applications: [\n")
    [problem] = validate_serve_config(bad_yaml)
    assert "invalid YAML" in problem.message


def test_cli_validate_exit_codes(tmp_path):
    good = runner.invoke(cli, ["config", "validate", str(REPO / "serve_configs/local.yaml")])
    assert good.exit_code == 0, good.output
    path = write(tmp_path, "applications:\n- import_path: aim_ray.app:build_app\n  args: {}\n")
    bad = runner.invoke(cli, ["config", "validate", str(path)])
    assert bad.exit_code == 1
    assert "args.models" in bad.output


def test_cli_render_writes_a_config_that_validates(tmp_path):
    out = tmp_path / "qwen.yaml"
    result = runner.invoke(
        cli,
        [
            "serve-config",
            "render",
            "--model",
            "Qwen/Qwen3-32B",
            "--hardware",
            "MI300X",
            "--gpus",
            "2",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    args = yaml.safe_load(out.read_text())["applications"][0]["args"]
    assert args["models"] == [{"model_id": "Qwen/Qwen3-32B", "hardware": "MI300X", "gpus": 2}]
    assert validate_serve_config(out) == []


def test_cli_render_without_a_recipe_is_a_one_line_error():
    result = runner.invoke(
        cli, ["serve-config", "render", "--model", "acme/unknown", "--hardware", "CPU"]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.startswith("error:")


def test_api_keys_come_from_env_and_file(tmp_path, monkeypatch):
    keys = tmp_path / "keys"
    keys.write_text("from-file\n\n")
    monkeypatch.setenv("MY_KEYS", "a, b")
    auth = AuthSettings(enabled=True, api_keys_env="MY_KEYS", api_keys_file=keys)
    assert load_api_keys(auth) == {"a", "b", "from-file"}
    assert load_api_keys(AuthSettings()) == frozenset()


def test_enabled_auth_without_keys_is_an_error(monkeypatch):
    monkeypatch.delenv("AIM_RAY_API_KEYS", raising=False)
    from aim_ray.errors import AimRayError

    with pytest.raises(AimRayError, match="no API keys"):
        load_api_keys(AuthSettings(enabled=True))
