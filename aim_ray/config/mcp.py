"""The ``mcp:`` section of an aim-ray config: pydantic schema, loading and error reporting.

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
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import httpx
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.netguard import host_allowed
from aim_ray.mcp.backends.secrets import SECRET_KEY_PATTERN, SECRET_NAME_PATTERN

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# MCP tool names; "__" is reserved as the separator of remote tools' prefixed names.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REMOTE_SEPARATOR = "__"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
QUALIFIED_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
DOMAIN_PATTERN = r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$"
HTTP_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
MiB = 1024 * 1024

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class MCPConfigError(AimRayError, ValueError):
    """The ``mcp:`` section is invalid; ``problems`` lists every problem with its location."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid MCP config:\n  " + "\n  ".join(problems))


def parse_duration(value: Any) -> Any:
    """Seconds as a number, or a string like ``500ms``, ``30s``, ``1m``, ``1h``, ``1d``."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", value)
        if not match:
            raise ValueError("expected seconds or a duration like '30s', '5m', '1h'")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        loc_by_alias=False,
    )


# -- secrets and network access -------------------------------------------------------------


class SecretRef(_Model):
    """A named secret; the value is resolved at connect time by ``aim_ray.mcp.backends.secrets``."""

    secret_name: str = Field(pattern=SECRET_NAME_PATTERN)
    key: str = Field("password", pattern=SECRET_KEY_PATTERN)


class AuthConfig(_Model):
    """Credentials sent as a header: ``Authorization: Bearer <v>`` or ``<header>: <v>``."""

    type: Literal["bearer", "api_key"]
    secret_name: str = Field(pattern=SECRET_NAME_PATTERN)
    key: str = Field("token", pattern=SECRET_KEY_PATTERN)
    header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")

    def header_name(self) -> str:
        return self.header or ("Authorization" if self.type == "bearer" else "X-API-Key")

    def header_value(self, secret: str) -> str:
        return f"Bearer {secret}" if self.type == "bearer" else secret


class SecretHeader(_Model):
    """A request header whose value comes from a secret, e.g. ``prefix: "Bearer "``."""

    secret_name: str = Field(pattern=SECRET_NAME_PATTERN)
    key: str = Field("token", pattern=SECRET_KEY_PATTERN)
    prefix: str = ""


class NetworkAccess(_Model):
    """Which addresses outbound requests may reach (checked by ``mcp.backends.netguard``)."""

    allow_private: bool = False
    # Exceptions to the private-address ban, e.g. one internal subnet instead of all of them.
    allow_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list
    )


class OutboundSettings(NetworkAccess):
    # None: any public host. "example.com" allows it and its subdomains; "*.example.com" only
    # the subdomains.
    allowed_domains: list[str] | None = None
    max_bytes: int = Field(MiB, ge=1, le=64 * MiB)
    max_redirects: int = Field(5, ge=0, le=20)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        domains = [d.strip().lower().rstrip(".") for d in value]
        bad = [d for d in domains if not re.fullmatch(DOMAIN_PATTERN, d)]
        if bad:
            raise ValueError(f"not a domain name or '*.domain' pattern: {', '.join(bad)}")
        return domains


def _url_host(url: str) -> str:
    try:
        return httpx.URL(url).host
    except httpx.InvalidURL as error:
        raise ValueError(f"invalid URL {url!r}: {error}") from None


def _check_endpoint_domain(url: str, allowed: list[str] | None) -> None:
    host = _url_host(url)
    if allowed is not None and not host_allowed(host, allowed):
        raise ValueError(f"host {host!r} of {url!r} is not in allowed_domains")


# -- providers -----------------------------------------------------------------------------


class PostgresConnection(_Model):
    host: str = "localhost"
    port: int = Field(5432, ge=1, le=65535)
    database: str
    user: str = "postgres"
    credentials: SecretRef | None = None
    ssl: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    pool_min_size: int = Field(0, ge=0, le=100)
    pool_max_size: int = Field(4, ge=1, le=100)
    connect_timeout_s: Duration = 5.0

    @model_validator(mode="after")
    def _pool_sizes(self) -> PostgresConnection:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        return self


class PostgresSettings(PostgresConnection):
    """Either ``query`` (``$1`` = the query text, optional ``$2`` = the limit) or full-text
    search over ``table``/``columns`` with ``to_tsvector``/``plainto_tsquery``.

    A ``query`` must return a ``content`` column; ``id`` and ``score`` are used when present
    and any other column lands in the item's metadata. Table search can use a GIN index on
    ``to_tsvector('<config>', coalesce(c1::text, '') || E'\\n' || coalesce(c2::text, ''))``.
    """

    query: str | None = None
    table: str | None = Field(None, pattern=QUALIFIED_IDENTIFIER_PATTERN)
    columns: list[Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]] | None = Field(
        None, min_length=1
    )
    id_column: str | None = Field(None, pattern=IDENTIFIER_PATTERN)
    text_search_config: str = Field("english", pattern=r"^[a-z_]{1,63}$")

    @model_validator(mode="after")
    def _query_or_table(self) -> PostgresSettings:
        if (self.query is None) == (self.table is None):
            raise ValueError("set exactly one of `query` or `table` (with `columns`)")
        if self.query is not None and "$1" not in self.query:
            raise ValueError("`query` must use $1 for the query text (and may use $2 for limit)")
        if self.table is not None and not self.columns:
            raise ValueError("`table` needs `columns` to search")
        return self


class ChromaSettings(_Model):
    """Embedded (``path``, the default) or a Chroma server (``host`` + ``port``)."""

    mode: Literal["embedded", "http"] | None = None
    path: str = ".aim-ray/chroma"
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    ssl: bool = False
    auth: AuthConfig | None = None
    collection: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
    n_results: int = Field(5, ge=1, le=100)

    @model_validator(mode="after")
    def _mode(self) -> ChromaSettings:
        if self.mode is None:
            self.mode = "http" if self.host else "embedded"
        if self.mode == "http":
            if not self.host or not self.port:
                raise ValueError("http mode needs `host` and `port`")
            if self.port == 8000 and self.host in {"localhost", "127.0.0.1", "::1"}:
                raise ValueError(
                    "port 8000 on this host is the Ray Serve HTTP port; "
                    "run `chroma run` on another port (e.g. 8010)"
                )
        return self


class RestSettings(OutboundSettings):
    """A JSON search API: ``{method} {base_url}{path}`` with the query in ``query_param``.

    Results are read from ``results_field`` (dot path; default: the body if it is a list,
    else its ``results``), taking ``content_field``/``id_field``/``title_field``/``score_field``
    from each. ``allowed_domains`` defaults to the host of ``base_url``.
    """

    base_url: str = Field(pattern=HTTP_URL_PATTERN)
    path: str = ""
    method: Literal["GET", "POST"] = "GET"
    query_param: str = "q"
    limit_param: str | None = "limit"
    headers: dict[str, str] = Field(default_factory=dict)
    auth: AuthConfig | None = None
    results_field: str | None = None
    content_field: str = "content"
    id_field: str = "id"
    title_field: str | None = "title"
    score_field: str | None = None

    @model_validator(mode="after")
    def _default_domains(self) -> RestSettings:
        if self.allowed_domains is None:
            self.allowed_domains = [_url_host(self.base_url)]
        _check_endpoint_domain(self.base_url, self.allowed_domains)
        return self


class FilesystemSettings(_Model):
    """Text documents under ``roots`` matching ``patterns``, searched by keyword."""

    roots: list[str] = Field(min_length=1)
    patterns: list[str] = Field(default_factory=lambda: ["**/*.md", "**/*.txt", "**/*.rst"])
    max_bytes: int = Field(MiB, ge=1, le=64 * MiB)
    max_files: int = Field(2000, ge=1, le=100_000)
    snippet_chars: int = Field(1500, ge=100, le=100_000)


class _ProviderBase(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    enabled: bool = True
    description: str | None = None
    timeout_s: Duration = 5.0


class PostgresProviderConfig(_ProviderBase):
    type: Literal["postgresql"]
    config: PostgresSettings


class ChromaProviderConfig(_ProviderBase):
    type: Literal["chroma"]
    config: ChromaSettings


class RestProviderConfig(_ProviderBase):
    type: Literal["rest"]
    config: RestSettings


class FilesystemProviderConfig(_ProviderBase):
    type: Literal["filesystem"]
    config: FilesystemSettings


ProviderConfig = Annotated[
    PostgresProviderConfig | ChromaProviderConfig | RestProviderConfig | FilesystemProviderConfig,
    Field(discriminator="type"),
]
PROVIDER_TYPES = ("postgresql", "chroma", "rest", "filesystem")


# -- tools ---------------------------------------------------------------------------------


class RateLimit(_Model):
    """At most ``requests`` calls per ``window`` (seconds or ``1m``-style), per replica."""

    requests: int = Field(ge=1)
    window: Duration


class ParameterDoc(_Model):
    """Overrides the description of one built-in argument (the schema itself is fixed)."""

    type: str | None = None
    description: str | None = None


class _ToolBase(_Model):
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


class CalculatorSettings(_Model):
    max_exponent: int = Field(1000, ge=1, le=100_000)


class CalculatorToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"expression": "string"}
    type: Literal["calculator"] = "calculator"
    config: CalculatorSettings = Field(default_factory=CalculatorSettings)


class FileReaderSettings(_Model):
    allowed_paths: list[str] = Field(min_length=1)
    max_bytes: int = Field(256 * 1024, ge=1, le=64 * MiB)


class FileReaderToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"path": "string"}
    type: Literal["file_reader"] = "file_reader"
    config: FileReaderSettings


class SqlQuerySettings(_Model):
    """``provider`` (a postgresql provider's name) or an inline ``connection``."""

    provider: str | None = None
    connection: PostgresConnection | None = None
    statement_timeout_ms: int = Field(5000, ge=1, le=600_000)
    max_rows: int = Field(100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_source(self) -> SqlQuerySettings:
        if (self.provider is None) == (self.connection is None):
            raise ValueError("set exactly one of `provider` or `connection`")
        return self


class SqlQueryToolConfig(_ToolBase):
    ARGUMENTS: ClassVar[dict[str, str]] = {"query": "string"}
    type: Literal["sql_query"] = "sql_query"
    config: SqlQuerySettings


class VectorSearchSettings(_Model):
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
        _check_endpoint_domain(self.endpoint, self.allowed_domains)
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


TOOL_TYPES = (
    "calculator",
    "file_reader",
    "sql_query",
    "vector_search",
    "web_fetch",
    "web_search",
    "remote_mcp",
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
    | Annotated[RemoteMCPToolConfig, Tag("remote_mcp")],
    Discriminator(
        _tool_kind,
        custom_error_type="tool_type",
        custom_error_message=f"unknown tool type: set `type` to one of {', '.join(TOOL_TYPES)}",
    ),
]


# -- the section ---------------------------------------------------------------------------


class CacheSettings(_Model):
    enabled: bool = True
    ttl_seconds: Duration = 300.0
    max_entries: int = Field(1024, ge=1, le=1_000_000)


class ContextSettings(_Model):
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


class ServiceDeployments(_Model):
    """Ray Serve options of the context and tool deployments; each scales on its own.

    Merged key by key over the defaults (``aim_ray.serving.app.SERVICE_DEFAULTS``).
    """

    context: dict[str, Any] = Field(default_factory=dict)
    tools: dict[str, Any] = Field(default_factory=dict)


class MCPConfig(_Model):
    enabled: bool = True
    providers: list[ProviderConfig] = Field(default_factory=list)
    tools: list[ToolConfig] = Field(default_factory=list)
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
            if wanted and ref is not None and kinds.get(ref) != wanted:
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

_TAGS = set(PROVIDER_TYPES) | set(TOOL_TYPES)


def _format_location(loc: tuple[int | str, ...]) -> str:
    text = "mcp"
    after_index = False
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            after_index = True
            continue
        # Discriminated unions put the chosen tag in the location; users never wrote it.
        if not (after_index and part in _TAGS):
            text += f".{part}"
        after_index = False
    return text


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{_format_location(item['loc'])}: {message}")
    return problems


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
        problems = []
        for item in error.errors(include_url=False):
            message = item["msg"].removeprefix("Value error, ")
            where = _format_location(item["loc"]).removeprefix("mcp[0]").lstrip(".")
            problems.append(f"{where}: {message}" if where else message)
        return problems
    return []
