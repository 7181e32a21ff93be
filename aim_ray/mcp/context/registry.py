"""Which provider class serves which ``providers:`` entry type."""

from __future__ import annotations

from aim_ray.config.mcp_providers import (
    ChromaProviderConfig,
    FilesystemProviderConfig,
    PostgresProviderConfig,
    ProviderConfig,
    RestProviderConfig,
)
from aim_ray.mcp.context.base import ContextProvider
from aim_ray.mcp.context.chroma import ChromaProvider
from aim_ray.mcp.context.filesystem import FilesystemProvider
from aim_ray.mcp.context.postgres import PostgresProvider
from aim_ray.mcp.context.rest import RestProvider


def build_provider(entry: ProviderConfig) -> ContextProvider:
    if isinstance(entry, PostgresProviderConfig):
        return PostgresProvider(entry.name, entry.config, entry.timeout_s, entry.description)
    if isinstance(entry, ChromaProviderConfig):
        return ChromaProvider(entry.name, entry.config, entry.timeout_s, entry.description)
    if isinstance(entry, RestProviderConfig):
        return RestProvider(entry.name, entry.config, entry.timeout_s, entry.description)
    if isinstance(entry, FilesystemProviderConfig):
        return FilesystemProvider(entry.name, entry.config, entry.timeout_s, entry.description)
    raise TypeError(f"unknown provider config {type(entry).__name__}")
