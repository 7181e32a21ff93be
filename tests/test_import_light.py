"""The config layer and the renderers stay import-light: no Ray for the config, and no vLLM,
torch, vector store, database driver or Ray Serve LLM for choosing a recipe, rendering and
validating. Each check runs in a fresh interpreter, since this one has imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("vllm", "chromadb", "asyncpg", "sentence_transformers", "torch", "ray.llm")


def imported_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env, cwd=REPO
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_config_layer_imports_no_ray() -> None:
    code = "import aim_ray.config.app, aim_ray.config.gateway, aim_ray.config.mcp"
    assert imported_after(code, ("ray", "httpx", "mcp", "aim_ray.mcp", "aim_ray.serving")) == []


def test_choosing_rendering_and_validating_import_no_engine() -> None:
    code = """
from pathlib import Path
from aim_ray.config.app import AppArgs, ModelSpec
from aim_ray.deploy.options import RayServiceOptions
from aim_ray.deploy.rayservice import render_rayservice
from aim_ray.deploy.serve_config import render_serve_config, validate_serve_config
from aim_ray.recipes.selection import select_recipe

assert validate_serve_config(Path("serve_configs/local.yaml")) == []
select_recipe("Qwen/Qwen3-32B", "MI300X", gpu_count=1)
spec = ModelSpec(model_id="Qwen/Qwen3-32B", hardware="MI300X", gpus=1)
render_serve_config(AppArgs(models=[spec]))
render_rayservice(spec, RayServiceOptions())
"""
    assert imported_after(code, HEAVY) == []


def test_the_cli_commands_that_validate_and_render_import_no_engine(tmp_path: Path) -> None:
    # Through the CLI, as a user runs them: each command must succeed and leave vLLM,
    # torch and the stores unloaded.
    out = tmp_path / "rendered.yaml"
    commands = [
        ["config", "validate", "serve_configs/local.yaml"],
        ["recipes", "list"],
        ["recipes", "show", "Qwen/Qwen3-32B/vllm-mi300x-bf16-latency"],
        ["recipes", "select", "--model", "Qwen/Qwen3-32B", "--hardware", "MI300X"],
        ["serve-config", "render", "--model", "Qwen/Qwen3-32B", "--hardware", "MI300X"],
        [
            "render",
            "rayservice",
            "--model",
            "Qwen/Qwen3-32B",
            "--hardware",
            "MI300X",
            "-o",
            str(out),
        ],
    ]
    code = f"""
from typer.testing import CliRunner
from aim_ray.cli.main import app
for args in {commands!r}:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
"""
    assert imported_after(code, HEAVY) == []
    assert "kind: RayService" in out.read_text()
