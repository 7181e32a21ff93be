"""Serve configs: writing them from a model choice and checking them before a deploy.

``render_serve_config`` is the one place that writes a Serve config for aim-ray (the files
in ``serve_configs/`` come from it). ``validate_serve_config`` checks a file the way a
deploy would use it (YAML, Serve's own schema, aim-ray's application args, and that a
recipe fits each model) and reports every problem with its location in the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from aim_ray.config import SERVE_IMPORT_PATH
from aim_ray.config.app import AppArgs, ModelSpec
from aim_ray.engine.llm_config import choose_recipe
from aim_ray.errors import AimRayError, dotted_location
from aim_ray.recipes.selection import Selection

APP_NAME = "aim-ray"


class Problem(BaseModel):
    """One thing wrong with a config file, where it is and what is wrong."""

    location: str
    line: int | None = None
    message: str

    def __str__(self) -> str:
        where = f"{self.location} (line {self.line})" if self.line else self.location
        return f"{where}: {self.message}"


def render_serve_config(
    args: AppArgs,
    *,
    name: str = APP_NAME,
    route_prefix: str = "/",
    host: str = "127.0.0.1",
    port: int = 8000,
) -> dict[str, Any]:
    """A Serve config (``serve run`` / ``serveConfigV2``) that runs aim-ray with ``args``."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": port},
        "applications": [
            {
                "name": name,
                "route_prefix": route_prefix,
                "import_path": SERVE_IMPORT_PATH,
                "args": args.model_dump(mode="json", exclude_defaults=True),
            }
        ],
    }


def pin_model(spec: ModelSpec) -> tuple[ModelSpec, Selection]:
    """The entry with the chosen hardware and GPU count written in, so a rendered file
    deploys the same way wherever it runs; and the selection that chose them."""
    selection = choose_recipe(spec)
    pinned = spec.model_copy(
        update={
            "hardware": selection.hardware.kind,
            "gpus": selection.gpu_count if selection.hardware.is_gpu else None,
        }
    )
    return pinned, selection


def dump_yaml(data: dict[str, Any], header: str = "") -> str:
    return header + yaml.safe_dump(data, sort_keys=False)


def validate_serve_config(path: Path) -> list[Problem]:
    """Every problem in a Serve config file; an empty list means it would deploy."""
    # Serve's own schema is the check a deploy makes; importing it starts no cluster and no
    # engine, but it is Ray, which rendering and the config layer do without.
    from ray.serve.schema import ServeDeploySchema

    try:
        text = path.read_text()
    except OSError as exc:
        return [Problem(location=str(path), message=exc.strerror or str(exc))]
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return [Problem(location=str(path), line=line, message=f"invalid YAML: {exc}")]
    if not isinstance(data, dict):
        return [Problem(location="(top level)", message="expected a mapping with applications")]
    try:
        ServeDeploySchema.model_validate(data)
    except ValidationError as exc:
        return _located(exc, (), node)
    problems: list[Problem] = []
    for index, app in enumerate(data.get("applications", [])):
        if app.get("import_path") == SERVE_IMPORT_PATH:
            prefix = ("applications", index, "args")
            problems += _check_app_args(app.get("args") or {}, prefix, node)
    return problems


def _check_app_args(args: dict[str, Any], prefix: tuple, node: yaml.Node) -> list[Problem]:
    try:
        app_args = AppArgs.model_validate(args)
    except ValidationError as exc:
        return _located(exc, prefix, node)
    problems = []
    for index, spec in enumerate(app_args.models):
        problem = _recipe_problem(spec)
        if problem:
            loc = (*prefix, "models", index)
            problems.append(
                Problem(location=dotted_location(loc), line=_line_of(node, loc), message=problem)
            )
    return problems


def _recipe_problem(spec: ModelSpec) -> str | None:
    try:
        choose_recipe(spec)
    except AimRayError as exc:
        return str(exc)
    return None


def _located(exc: ValidationError, prefix: tuple, node: yaml.Node) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = (*prefix, *error["loc"])
        problems.append(
            Problem(location=dotted_location(loc), line=_line_of(node, loc), message=error["msg"])
        )
    return problems


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        node = _child(node, key)
    return node.start_mark.line + 1 if node is not None else line


def _child(node: yaml.Node, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None
