"""Reading and editing the MCP config inside a YAML file: a standalone ``mcp:`` file or a
Serve config.

Owns finding the mapping that holds ``providers``/``tools`` (top level, under ``mcp:``, or in
the aim-ray application's ``args.mcp``), adding one validated entry to it, and writing the
file back atomically with its leading comment block kept. Only PyYAML, pydantic and the
standard library are imported, so a command that edits a file never loads Ray or vLLM.
Problems are ``AimRayError``s; their wording names the CLI's options (``--app``) because
``aim-ray mcp create-provider/create-tool --config`` is the caller.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from aim_ray.config import SERVE_IMPORT_PATH
from aim_ray.errors import AimRayError

if TYPE_CHECKING:
    from aim_ray.config.mcp import MCPConfig


@dataclass(frozen=True)
class AddedEntry:
    """Where an entry went, and whether comments below the leading block were lost."""

    where: str
    dropped_comments: bool


def dump_yaml(data: Any) -> str:
    """YAML as the files are written: keys in their order, non-ASCII text as is."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def read_mcp_config(path: Path, app_name: str | None) -> MCPConfig:
    """The validated MCP config of the file (a Serve config's aim-ray application, or a
    standalone ``mcp:`` file); ``app_name`` picks among several applications."""
    from aim_ray.config.mcp import MCPConfig, validation_problems

    _, data = _read_yaml(path) if path.exists() else ("", None)
    if data is None:
        raise AimRayError(f"{path}: no such file, or empty")
    mcp, where = _mcp_block(path, data, app_name)
    problems = _relocated(validation_problems(mcp), where)
    if problems:
        raise AimRayError(f"{path}: invalid MCP config: {problems}")
    return MCPConfig.model_validate(mcp)


def _read_yaml(path: Path, target: Path | None = None) -> tuple[str, Any]:
    """The file's text and data (None when empty); errors name ``path`` as the user gave it."""
    try:
        text = (target or path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AimRayError(f"cannot read {path}: {error}") from None
    try:
        return text, (yaml.safe_load(text) if text.strip() else None)
    except yaml.YAMLError as error:
        raise AimRayError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None


def add_entry(path: Path, section: str, entry: dict[str, Any], app_name: str | None) -> AddedEntry:
    """Append ``entry`` to the ``section`` list of the file's MCP config, atomically; the
    whole MCP config must validate afterwards. ``app_name`` picks the application in a
    Serve config with several aim-ray ones."""
    # Imported here: the schema pulls in httpx and the network guard, which reading or
    # dumping YAML does not need.
    from aim_ray.config.mcp import validation_problems

    target = path.resolve()
    text, data = _read_yaml(path, target) if target.exists() else ("", None)
    data = {} if data is None else data
    mcp, where = _mcp_block(path, data, app_name)
    entries = mcp.get(section)
    if entries is None:
        entries = mcp[section] = []
    if not isinstance(entries, list):
        raise AimRayError(f"{path}: {where}.{section} is not a list")
    kind = section[:-1]
    for index, existing in enumerate(entries):
        if isinstance(existing, dict) and existing.get("name") == entry["name"]:
            raise AimRayError(
                f"{kind} {entry['name']!r} already exists in {path} ({where}.{section}[{index}])"
            )
    before = _relocated(validation_problems(mcp), where)
    if before:
        raise AimRayError(f"{path}: the MCP config is already invalid, fix it first: {before}")
    entries.append(entry)
    after = _relocated(validation_problems(mcp), where)
    if after:
        raise AimRayError(f"cannot add {kind} {entry['name']!r} to {path}: {after}")
    new_text = _leading_comments(text) + dump_yaml(data)
    if yaml.safe_load(new_text) != data:  # a guard: never write what does not read back
        raise AimRayError(f"{path}: the YAML would not read back the same; nothing written")
    try:
        _write_atomically(target, new_text)
    except OSError as error:
        raise AimRayError(f"cannot write {path}: {error.strerror or error}") from None
    return AddedEntry(where=where, dropped_comments=_has_other_comments(text))


def _relocated(problems: list[str], where: str) -> str:
    """``validation_problems`` say ``mcp.tools[0]...``; say where that is in the file."""
    prefix = "" if where == "(top level)" else where
    return "; ".join((prefix + p.removeprefix("mcp")).lstrip(".") for p in problems)


def _mcp_block(path: Path, data: Any, app_name: str | None) -> tuple[dict[str, Any], str]:
    """The mapping that holds ``providers``/``tools`` (created if missing), and its place."""
    if not isinstance(data, dict):
        raise AimRayError(f"{path}: expected a YAML mapping (an `mcp:` config or a Serve config)")
    if "applications" in data:
        return _serve_mcp_block(path, data, app_name)
    if app_name is not None:
        raise AimRayError(f"--app: {path} is not a Serve config (no `applications:`)")
    if {"providers", "tools"} & data.keys() and "mcp" not in data:
        return data, "(top level)"  # the section itself, as load_mcp_config also accepts
    if data and "mcp" not in data:
        raise AimRayError(f"{path}: neither an `mcp:` config nor a Serve config (applications:)")
    if data.get("mcp") is None:
        data["mcp"] = {}
    if not isinstance(data["mcp"], dict):
        raise AimRayError(f"{path}: mcp is not a mapping")
    return data["mcp"], "mcp"


def aim_ray_application(
    path: Path, data: dict[str, Any], app_name: str | None
) -> tuple[int, dict[str, Any]]:
    """The serve config's one aim-ray application (``app_name`` picks among several), and
    its index in ``applications``."""
    apps = data.get("applications")
    if not isinstance(apps, list):
        raise AimRayError(f"{path}: applications is not a list")
    found = [
        (index, item)
        for index, item in enumerate(apps)
        if isinstance(item, dict) and item.get("import_path") == SERVE_IMPORT_PATH
    ]
    if app_name is not None:
        found = [(index, item) for index, item in found if item.get("name") == app_name]
    if not found:
        named = f" named {app_name!r}" if app_name else ""
        raise AimRayError(f"{path}: no application{named} with import_path {SERVE_IMPORT_PATH}")
    if len(found) > 1:
        names = ", ".join(repr(item.get("name")) for _, item in found)
        raise AimRayError(f"{path}: several aim-ray applications ({names}); choose with --app")
    return found[0]


def _serve_mcp_block(path: Path, data: dict[str, Any], app_name: str | None) -> tuple[dict, str]:
    index, application = aim_ray_application(path, data, app_name)
    where = f"applications[{index}].args"
    if application.get("args") is None:
        application["args"] = {}
    args = application["args"]
    if not isinstance(args, dict):
        raise AimRayError(f"{path}: {where} is not a mapping")
    if args.get("mcp") is None:
        args["mcp"] = {}
    if not isinstance(args["mcp"], dict):
        raise AimRayError(f"{path}: {where}.mcp is not a mapping")
    return args["mcp"], f"{where}.mcp"


def _leading_comments(text: str) -> str:
    """The comment (and blank) lines a file starts with: the part PyYAML can keep."""
    lines = text.splitlines(keepends=True)
    header = []
    for line in lines:
        if not line.lstrip().startswith("#") and line.strip():
            break
        header.append(line)
    kept = "".join(header)
    return kept if not kept or kept.endswith("\n") else kept + "\n"


def _has_other_comments(text: str) -> bool:
    """Whether ``text`` has comments after its leading block (a rewrite loses them)."""
    body = text[len(_leading_comments(text)) :]
    return any(re.search(r"(^|\s)#", line) for line in body.splitlines())


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a failure leaves the old file whole."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            shutil.copymode(path, temp)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
