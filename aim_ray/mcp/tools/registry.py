"""Which tool class serves which local ``tools:`` entry type (``remote_mcp`` entries are
``RemoteMCPServer``s, built by the service)."""

from __future__ import annotations

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_tools import (
    CalculatorToolConfig,
    FileReaderToolConfig,
    PythonToolConfig,
    SqlQueryToolConfig,
    ToolConfig,
    VectorSearchToolConfig,
    WebFetchToolConfig,
    WebSearchToolConfig,
)
from aim_ray.mcp.tools.base import Tool
from aim_ray.mcp.tools.calculator import CalculatorTool
from aim_ray.mcp.tools.files import FileReaderTool
from aim_ray.mcp.tools.python import PythonTool
from aim_ray.mcp.tools.sql import SqlQueryTool
from aim_ray.mcp.tools.vector import VectorSearchTool
from aim_ray.mcp.tools.web import WebFetchTool, WebSearchTool


def build_tool(config: ToolConfig, mcp: MCPConfig) -> Tool:
    if isinstance(config, CalculatorToolConfig):
        return CalculatorTool(config)
    if isinstance(config, FileReaderToolConfig):
        return FileReaderTool(config)
    if isinstance(config, SqlQueryToolConfig):
        return SqlQueryTool(config, mcp)
    if isinstance(config, VectorSearchToolConfig):
        return VectorSearchTool(config, mcp)
    if isinstance(config, WebFetchToolConfig):
        return WebFetchTool(config)
    if isinstance(config, WebSearchToolConfig):
        return WebSearchTool(config)
    if isinstance(config, PythonToolConfig):
        return PythonTool(config)
    raise TypeError(f"no local tool for {type(config).__name__}")
