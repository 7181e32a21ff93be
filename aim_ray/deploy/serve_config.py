"""Serve configs: writing them from a model choice and checking them before a deploy.

``render_serve_config`` is the one place that writes a Serve config for aim-ray (the files
in ``serve_configs/`` come from it). ``validate_serve_config`` checks a file the way a
deploy would use it (YAML, Serve's own schema, aim-ray's application args, and that a
recipe fits each model) and reports every problem with its location in the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from aim_ray.config import SERVE_IMPORT_PATH
from aim_ray.config.app import AppArgs, ModelSpec, mcp_file_path
from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_providers import PROVIDER_TYPES
from aim_ray.config.mcp_tools import TOOL_TYPES
from aim_ray.engine.llm_config import choose_recipe
from aim_ray.engine.mcp_fit import mcp_mismatches
from aim_ray.errors import AimRayError, dotted_location
from aim_ray.recipes.selection import Selection

APP_NAME = "aim-ray"
_UNION_TAGS = frozenset(PROVIDER_TYPES) | frozenset(TOOL_TYPES)


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
            problems += _check_app_args(app.get("args") or {}, prefix, node, path.parent)
    return problems


def _check_app_args(
    args: dict[str, Any], prefix: tuple, node: yaml.Node, config_dir: Path
) -> list[Problem]:
    try:
        app_args = AppArgs.model_validate(args)
    except ValidationError as exc:
        return _located(exc, prefix, node)
    # Where the mcp: section is: inline, or a file of its own with its own lines.
    mcp_at: tuple[tuple, yaml.Node, str] = ((*prefix, "mcp"), node, "")
    if app_args.mcp_config_file is not None:
        name = app_args.mcp_config_file
        file_problems, mcp, mcp_at = _mcp_file(mcp_file_path(name, config_dir), name)
        if mcp is None:
            return file_problems
        app_args = app_args.model_copy(update={"mcp": mcp})
    problems, selections = [], []
    for index, spec in enumerate(app_args.models):
        try:
            selections.append(choose_recipe(spec))
        except AimRayError as exc:
            problems.append(_problem((*prefix, "models", index), node, str(exc)))
    if not problems:
        section_loc, section_node, label = mcp_at
        problems += [
            _problem((*section_loc, *mismatch.loc[1:]), section_node, mismatch.message, label)
            for mismatch in mcp_mismatches(app_args, selections)
        ]
    return problems


def mcp_file_reference(path: Path, args: AppArgs, selection: Selection, output: Path | None) -> str:
    """How a serve config written to ``output`` names the MCP file ``path``, once the file
    is valid and fits the model; ``AimRayError`` listing the problems otherwise."""
    problems, mcp, _ = _mcp_file(path, str(path))
    if mcp is not None:
        with_mcp = args.model_copy(update={"mcp": mcp})
        problems = [
            Problem(location=f"{path}: mcp.{'.'.join(map(str, m.loc[1:]))}", message=m.message)
            for m in mcp_mismatches(with_mcp, [selection])
        ]
    if problems:
        raise AimRayError("; ".join(map(str, problems)))
    base = (output.parent if output else Path.cwd()).resolve()
    return os.path.relpath(path.resolve(), base)


def validate_mcp_file(path: Path) -> list[Problem]:
    """Every problem in a standalone ``mcp:`` file (the section, or a mapping with ``mcp``)."""
    problems, _, _ = _mcp_file(path, "")
    return problems


def _mcp_file(path: Path, label: str) -> tuple[list[Problem], MCPConfig | None, tuple]:
    """The file's problems, its config when valid, and where its section is (loc, node,
    label), each problem located by the file's own lines and named ``label: ...``."""
    try:
        text = path.read_text()
        node, data = yaml.compose(text), yaml.safe_load(text)
    except OSError as exc:
        return [Problem(location=label or str(path), message=exc.strerror or str(exc))], None, ()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = Problem(location=label or str(path), line=line, message=f"invalid YAML: {exc}")
        return [problem], None, ()
    loc = ("mcp",) if isinstance(data, dict) and "mcp" in data else ()
    section = data.get("mcp") if loc else data
    try:
        return [], MCPConfig.model_validate(section or {}), (loc, node, label)
    except ValidationError as exc:
        problems = [
            _problem((*loc, *error["loc"]), node, error["msg"], label) for error in exc.errors()
        ]
        return problems, None, (loc, node, label)


def _problem(loc: tuple, node: yaml.Node, message: str, label: str = "") -> Problem:
    # A discriminated union puts its chosen tag in the location: a key nobody wrote.
    loc = tuple(part for i, part in enumerate(loc) if not _is_tag(loc, i))
    where = dotted_location(loc) or "(top level)"
    return Problem(
        location=f"{label}: {where}" if label else where,
        line=_line_of(node, loc),
        message=message,
    )


def _located(exc: ValidationError, prefix: tuple, node: yaml.Node) -> list[Problem]:
    return [_problem((*prefix, *error["loc"]), node, error["msg"]) for error in exc.errors()]


def _is_tag(loc: tuple, index: int) -> bool:
    return index > 0 and isinstance(loc[index - 1], int) and loc[index] in _UNION_TAGS


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
