"""The ``gateway:`` part of the application args: API keys, the ``/mcp`` transport guard,
MCP-aware chat limits and the gateway's Serve options.

Plain settings only; the gateway (``aim_ray.serving.gateway``), the ``/mcp`` endpoint
(``aim_ray.mcp.server``) and the chat loop (``aim_ray.mcp.chat``) act on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class AuthSettings(BaseModel):
    """API keys, read from an env var (comma-separated) and/or a file (one key a line)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    api_keys_env: str = "AIM_RAY_API_KEYS"
    api_keys_file: Path | None = None


class MCPTransportSettings(BaseModel):
    """Which Host and Origin headers ``/mcp`` accepts (the SDK's DNS-rebinding guard).

    The defaults accept loopback only. Behind a real hostname list it, e.g.
    ``allowed_hosts: ["aim-ray.example.com", "aim-ray-serve-svc:*"]``.
    """

    model_config = ConfigDict(extra="forbid")

    dns_rebinding_protection: bool = True
    allowed_hosts: list[str] = Field(default_factory=lambda: list(LOOPBACK_HOSTS))
    allowed_origins: list[str] = Field(default_factory=lambda: list(LOOPBACK_ORIGINS))
    max_request_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)


class ChatSettings(BaseModel):
    """How the gateway runs MCP-aware chats (``gateway.chat`` in the app args)."""

    model_config = ConfigDict(extra="forbid")

    max_tool_iterations: int = Field(
        default=5, ge=1, le=20, description="Model calls per request, tool rounds included."
    )


class GatewaySettings(BaseModel):
    """The gateway's part of the application args."""

    model_config = ConfigDict(extra="forbid")

    auth: AuthSettings = Field(default_factory=AuthSettings)
    mcp_transport: MCPTransportSettings = Field(default_factory=MCPTransportSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    deployment_config: dict[str, Any] = Field(
        default_factory=lambda: {"ray_actor_options": {"num_cpus": 0.1}},
        description="Ray Serve deployment options for the gateway (replicas, autoscaling).",
    )
