"""The ``mcp:`` section in a file of its own: ``mcp_config_file`` in the app args (relative
to the serve config), ``aim-ray mcp validate``, ``config validate`` locating problems in
the file, and ``serve-config render --mcp-config``. The session app of the end-to-end
tests runs from such a file (``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aim_ray.cli.main import app as cli
from aim_ray.config.app import InvalidAppArgs, parse_app_args
from aim_ray.deploy.serve_config import validate_serve_config

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner(env={"COLUMNS": "200"})
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def split_default(folder: Path, **context) -> tuple[Path, Path]:
    """The default serve config with its mcp: section moved to configs/mcp/tools.yaml."""
    config = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    args = config["applications"][0]["args"]
    mcp = args.pop("mcp")
    mcp["context"].update(context)
    args["mcp_config_file"] = "mcp/tools.yaml"
    (folder / "configs" / "mcp").mkdir(parents=True)
    serve, tools = folder / "configs" / "serve.yaml", folder / "configs" / "mcp" / "tools.yaml"
    serve.write_text(yaml.safe_dump(config, sort_keys=False))
    tools.write_text(yaml.safe_dump({"mcp": mcp}, sort_keys=False))
    return serve, tools


def test_the_file_is_read_relative_to_the_serve_config(tmp_path: Path) -> None:
    serve, _ = split_default(tmp_path)
    args = yaml.safe_load(serve.read_text())["applications"][0]["args"]
    parsed = parse_app_args(args, base_dir=serve.parent)
    assert parsed.mcp_config_file is None  # read in: the replicas get the section itself
    assert [t.name for t in parsed.mcp.tools] == ["calculator", "file_reader", "vector_search"]
    assert validate_serve_config(serve) == []


def test_inline_and_file_together_is_an_error(tmp_path: Path) -> None:
    args = {"models": [{"model_id": MODEL}], "mcp": {}, "mcp_config_file": "x.yaml"}
    with pytest.raises(InvalidAppArgs, match="set `mcp` or `mcp_config_file`, not both"):
        parse_app_args(args, base_dir=tmp_path)


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    args = {"models": [{"model_id": MODEL}], "mcp_config_file": "nope.yaml"}
    with pytest.raises(InvalidAppArgs, match="invalid MCP config in nope.yaml"):
        parse_app_args(args, base_dir=tmp_path)
    (tmp_path / "bad.yaml").write_text("mcp:\n  tools:\n  - name: calculator\n    rate: 3\n")
    args["mcp_config_file"] = "bad.yaml"
    with pytest.raises(InvalidAppArgs, match=r"mcp\.tools\[0\]\.rate"):
        parse_app_args(args, base_dir=tmp_path)


def test_config_validate_locates_problems_in_the_mcp_file(tmp_path: Path) -> None:
    serve, tools = split_default(tmp_path, max_length=1900)
    (problem,) = validate_serve_config(serve)
    assert problem.location == "mcp/tools.yaml: mcp.context.max_length"
    lines = tools.read_text().splitlines()
    assert lines[problem.line - 1].strip() == "max_length: 1900"
    result = runner.invoke(cli, ["config", "validate", str(serve)])
    assert result.exit_code == 1 and "mcp/tools.yaml: mcp.context.max_length" in result.stderr


def test_mcp_validate_command(tmp_path: Path) -> None:
    _, tools = split_default(tmp_path)
    good = runner.invoke(cli, ["mcp", "validate", str(tools)])
    assert good.exit_code == 0 and good.stdout.strip().endswith("valid")
    tools.write_text(tools.read_text().replace("collection: aim-ray-docs", "collection: x"))
    bad = runner.invoke(cli, ["mcp", "validate", str(tools)])
    assert bad.exit_code == 1
    assert "mcp.providers[0].config.collection (line " in bad.stderr
    missing = runner.invoke(cli, ["mcp", "validate", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 1 and "No such file" in missing.stderr


def test_render_with_an_mcp_file(tmp_path: Path) -> None:
    _, tools = split_default(tmp_path)
    out = tmp_path / "rendered" / "serve.yaml"
    out.parent.mkdir()
    args = ["serve-config", "render", "--model", MODEL, "--hardware", "CPU"]
    result = runner.invoke(cli, [*args, "--mcp-config", str(tools), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rendered = yaml.safe_load(out.read_text())["applications"][0]["args"]
    assert rendered["mcp_config_file"] == "../configs/mcp/tools.yaml"
    assert validate_serve_config(out) == []

    tools.write_text(tools.read_text().replace("max_length: 700", "max_length: 1900"))
    refused = runner.invoke(cli, [*args, "--mcp-config", str(tools), "-o", str(out)])
    assert refused.exit_code == 2
    assert "context.max_length: 1900 context tokens" in refused.stderr
