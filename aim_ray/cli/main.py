"""The ``aim-ray`` command line: one tool for recipes, configs, rendering and MCP.

Owns the root typer app, the order its command groups are registered in (the order
``--help`` lists them), and the console-script entry point. Each group lives in its own
module and wraps its work in ``aim_ray.cli.output.user_errors``: an ``AimRayError`` prints one
line and exits with code 2, never a traceback. Commands stay thin; the logic lives in the
modules they call (``aim_ray.recipes``, ``aim_ray.engine``, ...), and anything that loads
Ray, vLLM or the MCP SDK is imported inside the command that needs it. Add a group as
``<name>_app`` in ``aim_ray/cli/<name>.py`` and register it here with ``app.add_typer``.
"""

from __future__ import annotations

import logging
import os

import typer

from aim_ray.cli.config import config_app, serve_config_app
from aim_ray.cli.endpoint import test_endpoint
from aim_ray.cli.mcp import mcp_app
from aim_ray.cli.models import models_app
from aim_ray.cli.recipes import recipes_app
from aim_ray.cli.render import render_app
from aim_ray.cli.serve import serve_app

app = typer.Typer(
    help="LLM inference for AMD Instinct GPUs as a Ray Serve application.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(recipes_app, name="recipes")
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.add_typer(serve_config_app, name="serve-config")
app.add_typer(render_app, name="render")
app.add_typer(mcp_app, name="mcp")
app.add_typer(serve_app, name="serve")
app.command("test-endpoint")(test_endpoint)

# Ray Serve LLM sends the root logger to stderr at INFO when imported, and vLLM's import
# then logs start-up notes (Triton missing, ...) that are noise before a CLI's answer.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
logging.getLogger("vllm").setLevel(logging.WARNING)


def main() -> None:
    """Console-script entry point (``aim-ray``)."""
    app()


if __name__ == "__main__":
    main()
