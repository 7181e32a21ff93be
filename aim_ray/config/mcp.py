"""The ``mcp:`` section of an aim-ray config: the section itself, loading and error reporting.

Its entries live beside it: shared pieces in ``mcp_base``, providers in ``mcp_providers``,
tools in ``mcp_tools``, prompts in ``mcp_prompts``.

Shape (keys accept snake_case or the seed's camelCase; unknown keys are errors)::

    mcp:
      enabled: true
      providers:                       # context providers, discriminated on `type`
        - name: database
          type: postgresql             # postgresql | chroma | rest | filesystem
          timeout_s: 5
          config: {host: localhost, port: 5432, database: ai_context,
                   credentials: {secret_name: db-credentials},      # key defaults to "password"
                   table: docs, columns: [title, body]}             # or query: "... $1 ... $2"
      tools:                           # `type` defaults to `name` (the seed's shape)
        - name: file_reader
          rate_limit: {requests: 100, window: 1m}
          config: {allowedPaths: [/workspace/data]}
        - name: docs_mcp
          type: remote_mcp             # remote tools are served as `<prefix>__<tool>`
          config: {url: "http://docs:8080/mcp"}
      context: {max_length: 8192, retrieval_strategy: semantic_search,
                cache: {enabled: true, ttl_seconds: 1h}}            # or cacheEnabled/cacheTTL

Secrets are only ever named here (see ``mcp.backends.secrets``), so a config is safe to log and
to pickle into Ray Serve deployments.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from aim_ray.config.mcp_base import Duration, MCPModel
from aim_ray.config.mcp_prompts import PromptConfig
from aim_ray.config.mcp_providers import PROVIDER_TYPES, ProviderConfig
from aim_ray.config.mcp_tools import (
    TOOL_TYPES,
    RemoteMCPToolConfig,
    SqlQueryToolConfig,
    ToolConfig,
    VectorSearchToolConfig,
)
from aim_ray.errors import AimRayError
from aim_ray.errors import validation_problems as located_problems

# Discriminated unions put the chosen tag in an error's location; users never wrote it.
_TAGS = frozenset(PROVIDER_TYPES) | frozenset(TOOL_TYPES)


class MCPConfigError(AimRayError, ValueError):
    """The ``mcp:`` section is invalid; ``problems`` lists every problem with its location."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid MCP config:\n  " + "\n  ".join(problems))


class CacheSettings(MCPModel):
    enabled: bool = True
    ttl_seconds: Duration = 300.0
    max_entries: int = Field(1024, ge=1, le=1_000_000)


class ContextSettings(MCPModel):
    """How ContextService merges results: ``max_length`` is a token budget (estimated at
    4 characters a token) and ``retrieval_strategy`` orders items across providers:
    ``semantic_search`` re-ranks by embedding similarity to the query, ``keyword`` by query
    term overlap, ``round_robin`` interleaves providers in their own order.
    """

    max_length: int = Field(4096, ge=64, le=1_000_000)
    retrieval_strategy: Literal["semantic_search", "keyword", "round_robin"] = "semantic_search"
    cache: CacheSettings = Field(default_factory=CacheSettings)
    default_limit: int = Field(5, ge=1, le=100)

    @model_validator(mode="before")
    @classmethod
    def _seed_cache_keys(cls, data: Any) -> Any:
        # The seed writes `cacheEnabled: true` / `cacheTTL: "1h"` flat.
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        flat = {
            "enabled": [data.pop(k) for k in ("cacheEnabled", "cache_enabled") if k in data],
            "ttl_seconds": [data.pop(k) for k in ("cacheTTL", "cache_ttl") if k in data],
        }
        flat = {k: v[-1] for k, v in flat.items() if v}
        if flat:
            cache = data.get("cache")
            data["cache"] = {**cache, **flat} if isinstance(cache, Mapping) else flat
        return data


class ServiceDeployments(MCPModel):
    """Ray Serve options of the context and tool deployments; each scales on its own.

    Merged key by key over the defaults (``aim_ray.serving.app.SERVICE_DEFAULTS``).
    """

    context: dict[str, Any] = Field(default_factory=dict)
    tools: dict[str, Any] = Field(default_factory=dict)
    light_tools_in_gateway: bool = Field(
        default=True,
        description="Run pure-computation tools (calculator) in the gateway replicas too, "
        "saving a hop between processes a call; false sends every call to the tool deployment.",
    )


class MCPConfig(MCPModel):
    enabled: bool = True
    providers: list[ProviderConfig] = Field(default_factory=list)
    tools: list[ToolConfig] = Field(default_factory=list)
    prompts: list[PromptConfig] = Field(default_factory=list)
    context: ContextSettings = Field(default_factory=ContextSettings)
    deployments: ServiceDeployments = Field(default_factory=ServiceDeployments)
    port: None = Field(None, exclude=True, repr=False)

    @field_validator("port", mode="before")
    @classmethod
    def _no_port(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(
                "not supported: MCP is served at /mcp on the Ray Serve HTTP port; remove it"
            )
        return None

    @model_validator(mode="after")
    def _cross_references(self) -> MCPConfig:
        problems = _duplicates("provider name", [p.name for p in self.providers])
        problems += _duplicates("tool name", [t.name for t in self.tools])
        problems += _duplicates("prompt name", [p.name for p in self.prompts])
        problems += _duplicates(
            "remote_mcp prefix",
            [t.prefix for t in self.tools if isinstance(t, RemoteMCPToolConfig)],
        )
        kinds = {p.name: p.type for p in self.providers}
        for tool in self.tools:
            wanted = {SqlQueryToolConfig: "postgresql", VectorSearchToolConfig: "chroma"}.get(
                type(tool)
            )
            ref = getattr(tool.config, "provider", None)
            if wanted and ref is not None and ref not in kinds:
                known = ", ".join(kinds) or "none"
                problems.append(
                    f"tool {tool.name!r}: config.provider {ref!r} is not defined "
                    f"(providers: {known})"
                )
            elif wanted and ref is not None and kinds[ref] != wanted:
                problems.append(
                    f"tool {tool.name!r}: config.provider {ref!r} is not a {wanted} provider"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def provider(self, name: str) -> ProviderConfig:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)


def _duplicates(what: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    dupes = sorted({n for n in names if n in seen or seen.add(n)})
    return [f"duplicate {what} {name!r}" for name in dupes]


# -- loading and reporting ----------------------------------------------------------------


def _problems(error: ValidationError) -> list[str]:
    return located_problems(error, root="mcp", skip_after_index=_TAGS)


def _mcp_section(data: Any) -> Any:
    if isinstance(data, Mapping) and "mcp" in data:
        return data["mcp"]
    return data


def validation_problems(data: Any) -> list[str]:
    """Every problem in an ``mcp:`` section (or a mapping holding one), each with its place."""
    try:
        MCPConfig.model_validate(_mcp_section(data))
    except ValidationError as error:
        return _problems(error)
    return []


def load_mcp_config(source: str | Path | Mapping[str, Any]) -> MCPConfig:
    """Validate a YAML/JSON file path or a mapping (``{"mcp": {...}}`` or the section itself)."""
    if isinstance(source, str | Path):
        try:
            data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise MCPConfigError([f"{source}: {error}"]) from None
    else:
        data = source
    try:
        return MCPConfig.model_validate(_mcp_section(data))
    except ValidationError as error:
        raise MCPConfigError(_problems(error)) from None


@functools.cache
def _entry_adapter(section: Literal["providers", "tools"]) -> TypeAdapter[Any]:
    return TypeAdapter(list[ProviderConfig] if section == "providers" else list[ToolConfig])


def entry_problems(section: Literal["providers", "tools"], entry: Mapping[str, Any]) -> list[str]:
    """Every problem in one provider or tool entry on its own, located inside the entry
    (``config.port: ...``). Duplicates and references to providers need the whole section:
    check those with ``validation_problems``."""
    try:
        _entry_adapter(section).validate_python([entry])
    except ValidationError as error:
        # The entry is validated as item 0 of a list; its place is what follows.
        return located_problems(error, skip_first=1, skip_after_index=_TAGS)
    return []
