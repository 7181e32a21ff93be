"""The tools of the ``mcp:`` section: one entry per tool ToolService serves.

Owns the settings of each built-in tool type, remote MCP servers (whose tools are served
as ``<prefix>__<tool>``), rate limits, and ``ToolConfig``, the union discriminated on
``type`` (which falls back to ``name``, the seed's shape).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from aim_ray.config.mcp_base import (
    HTTP_URL_PATTERN,
    AuthConfig,
    Duration,
    MCPModel,
    MiB,
    NetworkAccess,
    OutboundSettings,
    SecretHeader,
    check_endpoint_domain,
)
from aim_ray.config.mcp_providers import ChromaSettings, PostgresConnection

# MCP tool names; "__" is reserved as the separator of remote tools' prefixed names.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REMOTE_SEPARATOR = "__"
# `package.module:function`, as Serve's own import paths are written.
IMPORT_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
# A PostgreSQL role name for SET ROLE: a plain identifier, quoted when used.
ROLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$"


class RateLimit(MCPModel):
    """At most ``requests`` calls per ``window`` (seconds or ``1m``-style), per replica."""

    requests: int = Field(ge=1)
    window: Duration


class ParameterDoc(MCPModel):
    """Overrides the description of one built-in argument (the schema itself is fixed)."""

    type: str | None = None
    description: str | None = None


class _ToolBase(MCPModel):
    # Argument names and JSON types of the built-in schema, for checking `parameters`.
    ARGUMENTS: ClassVar[dict[str, str]] = {}

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    enabled: bool = True
    rate_limit: RateLimit | None = None
    timeout_s: Duration = 10.0
    parameters: dict[str, ParameterDoc] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _no_separator(cls, value: str) -> str:
        if REMOTE_SEPARATOR in value:
            raise ValueError(f"{REMOTE_SEPARATOR!r} is reserved for remote tool names")
        return value

    @model_validator(mode="after")
    def _parameters_known(self) -> _ToolBase:
        for arg, doc in self.parameters.items():
            if arg not in self.ARGUMENTS:
                known = ", ".join(self.ARGUMENTS) or "none"
                raise ValueError(f"parameters: unknown argument {arg!r} (arguments: {known})")
            if doc.type is not None and doc.type != self.ARGUMENTS[arg]:
                raise ValueError(f"parameters.{arg}.type must be {self.ARGUMENTS[arg]!r}")
        return self


class CalculatorSettings(MCPModel):
    max_exponent: int = Field(1000, ge=1, le=100_000)


class CalculatorToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"expression": "string"}
    type: Literal["calculator"] = "calculator"
    config: CalculatorSettings = Field(default_factory=CalculatorSettings)


class FileReaderSettings(MCPModel):
    allowed_paths: list[str] = Field(min_length=1)
    max_bytes: int = Field(256 * 1024, ge=1, le=64 * MiB)


class FileReaderToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"path": "string"}
    type: Literal["file_reader"] = "file_reader"
    config: FileReaderSettings


class SqlQuerySettings(MCPModel):
    """``provider`` (a postgresql provider's name) or an inline ``connection``.

    The role queries run as (``set_role``, else the login role) is checked when the tool
    first connects and on every health check, not here: validating a config never connects.
    A superuser, or a member of ``pg_read_server_files``, ``pg_write_server_files``,
    ``pg_execute_server_program`` or ``pg_signal_backend``, keeps the tool down unless
    ``allow_privileged_role`` is true.
    """

    provider: str | None = None
    connection: PostgresConnection | None = None
    statement_timeout_ms: int = Field(5000, ge=1, le=600_000)
    max_rows: int = Field(100, ge=1, le=10_000)
    max_result_bytes: int = Field(MiB, ge=1024, le=64 * MiB)
    max_cell_bytes: int = Field(64 * 1024, ge=16, le=16 * MiB)
    allow_privileged_role: bool = False
    set_role: str | None = Field(None, pattern=ROLE_PATTERN)

    @model_validator(mode="after")
    def _one_source(self) -> SqlQuerySettings:
        if (self.provider is None) == (self.connection is None):
            raise ValueError("set exactly one of `provider` or `connection`")
        if self.max_cell_bytes > self.max_result_bytes:
            raise ValueError("max_cell_bytes must not exceed max_result_bytes")
        return self


class SqlQueryToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"query": "string"}
    type: Literal["sql_query"] = "sql_query"
    config: SqlQuerySettings


class VectorSearchSettings(MCPModel):
    """``provider`` (a chroma provider's name) or inline ``chroma`` settings."""

    provider: str | None = None
    chroma: ChromaSettings | None = None
    n_results: int = Field(5, ge=1, le=100)

    @model_validator(mode="after")
    def _one_source(self) -> VectorSearchSettings:
        if (self.provider is None) == (self.chroma is None):
            raise ValueError("set exactly one of `provider` or `chroma`")
        return self


class VectorSearchToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"query": "string", "n_results": "integer"}
    type: Literal["vector_search"] = "vector_search"
    config: VectorSearchSettings


class WebFetchSettings(OutboundSettings):
    max_chars: int = Field(20_000, ge=100, le=1_000_000)


class WebFetchToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"url": "string"}
    type: Literal["web_fetch"] = "web_fetch"
    config: WebFetchSettings = Field(default_factory=WebFetchSettings)


class WebSearchSettings(OutboundSettings):
    """A SearxNG-compatible JSON API: ``GET {endpoint}/search?q=...&format=json``.

    The endpoint is checked like any outbound URL: one on a private or loopback address
    needs ``allow_private: true`` (or ``allow_networks``).
    """

    endpoint: str = Field(pattern=HTTP_URL_PATTERN)
    max_results: int = Field(5, ge=1, le=50)
    auth: AuthConfig | None = None
    categories: str | None = None
    language: str | None = None

    @model_validator(mode="after")
    def _endpoint_allowed(self) -> WebSearchSettings:
        check_endpoint_domain(self.endpoint, self.allowed_domains)
        return self


class WebSearchToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"query": "string", "max_results": "integer"}
    type: Literal["web_search"] = "web_search"
    config: WebSearchSettings


class RemoteMCPSettings(NetworkAccess):
    """A remote MCP server (Streamable HTTP); its tools are served as ``<prefix>__<tool>``."""

    url: str = Field(pattern=HTTP_URL_PATTERN)
    prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$")
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, SecretHeader] = Field(default_factory=dict)
    include: list[str] | None = None
    list_ttl_s: Duration = 60.0
    connect_timeout_s: Duration = 10.0


class RemoteMCPToolConfig(_ToolBase):
    """The whole remote server is one entry: ``rate_limit`` is shared by all its tools."""

    type: Literal["remote_mcp"] = "remote_mcp"
    config: RemoteMCPSettings

    @property
    def prefix(self) -> str:
        return self.config.prefix or self.name


class PythonToolSettings(MCPModel):
    """A typed Python function, imported in the tool deployment's replicas (installed, or on
    their ``PYTHONPATH`` / ``runtime_env``); its signature is the tool's JSON schema."""

    import_path: str = Field(pattern=IMPORT_PATH_PATTERN)


class PythonToolConfig(_ToolBase):
    """``parameters`` is not taken: the function's own annotations and ``Field``
    descriptions describe its arguments."""

    type: Literal["python"] = "python"
    config: PythonToolSettings

    @model_validator(mode="before")
    @classmethod
    def _import_path_on_the_entry(cls, data: Any) -> Any:
        # `import_path` may sit on the entry itself, the way the seed writes it.
        if isinstance(data, Mapping) and "import_path" in data:
            data = dict(data)
            config = data.get("config")
            config = dict(config) if isinstance(config, Mapping) else {}
            config.setdefault("import_path", data.pop("import_path"))
            data["config"] = config
        return data


TOOL_TYPES = (
    "calculator",
    "file_reader",
    "sql_query",
    "vector_search",
    "web_fetch",
    "web_search",
    "remote_mcp",
    "python",
)


def _tool_kind(value: Any) -> str | None:
    # The seed names tools by kind (`name: web_search`), so `type` falls back to `name`.
    if isinstance(value, Mapping):
        return value.get("type") or value.get("name")
    return getattr(value, "type", None)


ToolConfig = Annotated[
    Annotated[CalculatorToolConfig, Tag("calculator")]
    | Annotated[FileReaderToolConfig, Tag("file_reader")]
    | Annotated[SqlQueryToolConfig, Tag("sql_query")]
    | Annotated[VectorSearchToolConfig, Tag("vector_search")]
    | Annotated[WebFetchToolConfig, Tag("web_fetch")]
    | Annotated[WebSearchToolConfig, Tag("web_search")]
    | Annotated[RemoteMCPToolConfig, Tag("remote_mcp")]
    | Annotated[PythonToolConfig, Tag("python")],
    Discriminator(
        _tool_kind,
        custom_error_type="tool_type",
        custom_error_message=f"unknown tool type: set `type` to one of {', '.join(TOOL_TYPES)}",
    ),
]
