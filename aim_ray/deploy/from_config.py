"""A serve config as the source of a cluster deployment (``render rayservice --from``):
its aim-ray application's args, and what in them the pods will read from their own disk.

The args are validated as ``aim-ray config validate`` does (recipes and the MCP fit
included) and an ``mcp_config_file`` is read in relative to the config, so the rendered
``serveConfigV2`` is self-contained. Paths in the config are not: a filesystem root, an
embedded Chroma folder or a python tool's module must exist in the image, which
``local_paths`` lists for the user to check.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from aim_ray.config.app import AppArgs, parse_app_args
from aim_ray.config.edit import aim_ray_application
from aim_ray.config.mcp_providers import ChromaProviderConfig, FilesystemProviderConfig
from aim_ray.config.mcp_tools import FileReaderToolConfig, PythonToolConfig
from aim_ray.deploy.serve_config import validate_serve_config
from aim_ray.errors import AimRayError


def app_args_from(path: Path, app_name: str | None = None) -> AppArgs:
    """The validated args of the config's aim-ray application (``app_name`` picks one)."""
    problems = validate_serve_config(path)
    if problems:
        raise AimRayError(f"{path}: " + "; ".join(map(str, problems)))
    _, application = aim_ray_application(path, yaml.safe_load(path.read_text()), app_name)
    return parse_app_args(application.get("args") or {}, base_dir=path.parent)


def local_paths(args: AppArgs) -> list[str]:
    """What the app reads from the pods' disks or imports there, as the config names it."""
    found = []
    auth = args.gateway.auth
    if auth.enabled and auth.api_keys_file:
        found.append(f"gateway.auth.api_keys_file {auth.api_keys_file}")
    mcp = args.mcp
    for provider in mcp.providers if mcp else []:
        if isinstance(provider, FilesystemProviderConfig):
            found += [f"provider {provider.name!r}: root {root}" for root in provider.config.roots]
        if isinstance(provider, ChromaProviderConfig) and provider.config.mode == "embedded":
            found.append(f"provider {provider.name!r}: Chroma folder {provider.config.path}")
        ingest = getattr(provider.config, "ingest", None)
        if ingest is not None:
            found += [f"provider {provider.name!r}: ingest.on_start {p}" for p in ingest.on_start]
    for tool in mcp.tools if mcp else []:
        if isinstance(tool, FileReaderToolConfig):
            found += [f"tool {tool.name!r}: path {p}" for p in tool.config.allowed_paths]
        if isinstance(tool, PythonToolConfig):
            module = tool.config.import_path.split(":")[0]
            found.append(f"tool {tool.name!r}: module {module}")
    return found
