"""The ``gateway:`` part of the application args: API keys, the host/origin policy of every
route that can run tools, CORS, per-request limits, MCP-aware chat settings and the
gateway's Serve options.

Plain settings only; the gateway (``aim_ray.serving.gateway``), the ``/mcp`` endpoint
(``aim_ray.mcp.server``) and the chat loop (``aim_ray.mcp.chat``) act on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class AuthSettings(BaseModel):
    """API keys, read from an env var (comma-separated) and/or a file (one key a line)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    api_keys_env: str = "AIM_RAY_API_KEYS"
    api_keys_file: Path | None = None


class MCPTransportSettings(BaseModel):
    """``/mcp``'s transport: the SDK's DNS-rebinding guard and its body size cap.

    Its ``allowed_hosts`` / ``allowed_origins`` are the old place of the gateway-wide
    ``gateway.allowed_hosts`` / ``allowed_origins``: still read, and always set to those.
    """

    model_config = ConfigDict(extra="forbid")

    dns_rebinding_protection: bool = True
    allowed_hosts: list[str] = Field(default_factory=lambda: list(LOOPBACK_HOSTS))
    allowed_origins: list[str] = Field(default_factory=lambda: list(LOOPBACK_ORIGINS))
    max_request_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)


class CORSSettings(BaseModel):
    """Which browser origins may read the gateway's answers. Empty: no CORS headers.

    Origins listed here also pass the gateway's Origin check.
    """

    model_config = ConfigDict(extra="forbid")

    allow_origins: list[str] = Field(default_factory=list)
    allow_credentials: bool = False
    allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "OPTIONS"])
    allow_headers: list[str] = Field(
        default_factory=lambda: [
            "authorization",
            "content-type",
            "mcp-protocol-version",
            "mcp-session-id",
        ]
    )

    @model_validator(mode="after")
    def _exact_origins(self) -> CORSSettings:
        # With credentials Starlette answers '*' by reflecting any origin: the hole itself.
        wild = [o for o in self.allow_origins if "*" in o]
        if wild:
            raise ValueError(f"allow_origins must list exact origins, not {wild[0]!r}")
        return self


class LimitSettings(BaseModel):
    """Per-request limits and the per-client concurrency cap (each gateway replica's own)."""

    model_config = ConfigDict(extra="forbid")

    max_n: int = Field(4, ge=1, description="Most choices (`n`) one request may ask for.")
    max_tokens: int = Field(4096, ge=1, description="Largest `max_tokens` a request may ask.")
    default_max_tokens: int = Field(
        1024, ge=1, description="The `max_tokens` of a request that sets none."
    )
    max_total_tokens: int = Field(8192, ge=1, description="Largest `n` x `max_tokens`.")
    max_prompt_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest `messages` / `prompt`, as JSON bytes."
    )
    max_tool_time_s: float = Field(
        120.0, gt=0, description="Time all server-side tool rounds of one chat may take."
    )
    max_concurrent_per_client: int = Field(
        8, ge=1, description="Engine requests in flight per API key (or client address)."
    )

    @model_validator(mode="after")
    def _default_within_cap(self) -> LimitSettings:
        if self.default_max_tokens > self.max_tokens:
            raise ValueError(
                f"default_max_tokens ({self.default_max_tokens}) exceeds max_tokens "
                f"({self.max_tokens})"
            )
        return self


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
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description="Host headers the OpenAI routes and /mcp accept ('name' or 'name:*').",
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_ORIGINS),
        description="Origin headers they accept; requests without one are not browsers'.",
    )
    cors: CORSSettings = Field(default_factory=CORSSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    mcp_transport: MCPTransportSettings = Field(default_factory=MCPTransportSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    deployment_config: dict[str, Any] = Field(
        default_factory=lambda: {"ray_actor_options": {"num_cpus": 0.1}},
        description="Ray Serve deployment options for the gateway (replicas, autoscaling).",
    )

    @model_validator(mode="after")
    def _one_host_policy(self) -> GatewaySettings:
        transport = self.mcp_transport
        for name in ("allowed_hosts", "allowed_origins"):
            if name in transport.model_fields_set:
                old = getattr(transport, name)
                if name in self.model_fields_set and getattr(self, name) != old:
                    raise ValueError(
                        f"mcp_transport.{name} and {name} differ: set only gateway.{name}, "
                        "the one list for /v1 and /mcp"
                    )
                setattr(self, name, list(old))
        return self

    def transport_guard(self) -> MCPTransportSettings:
        """``/mcp``'s own guard, enforcing the gateway's one host and origin policy."""
        return self.mcp_transport.model_copy(
            update={"allowed_hosts": self.allowed_hosts, "allowed_origins": self.allowed_origins}
        )
