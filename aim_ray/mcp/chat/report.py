"""What an MCP-aware chat tells its client besides the answer: the ``mcp`` report (the context
used, the tool calls executed, the model rounds) and the OpenAI-shaped 400 for a request the
MCP part cannot serve."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from aim_ray.mcp.protocol import ProviderOutcome
from aim_ray.serving.ray_internals import OpenAIHTTPException


class UsedItem(BaseModel):
    provider: str
    id: str
    score: float | None = None
    tokens: int
    content: str


class ContextReport(BaseModel):
    query: str
    items: list[UsedItem]
    providers: list[ProviderOutcome]
    tokens: int
    truncated: bool
    degraded: bool


class ToolCallRecord(BaseModel):
    id: str
    name: str
    arguments: Any
    status: str
    latency_ms: float
    content: str


class MCPReport(BaseModel):
    """The ``mcp`` object of a response: the context used and the tool calls executed."""

    context: ContextReport | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    iterations: int = 0


def bad_request(message: str) -> OpenAIHTTPException:
    return OpenAIHTTPException(status_code=400, message=message, type="invalid_request_error")
