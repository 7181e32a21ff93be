"""The context providers of the ``mcp:`` section: one entry per source ContextService asks.

Owns the settings of each provider type (PostgreSQL, Chroma, a REST search API, files on
disk) and ``ProviderConfig``, the union discriminated on ``type``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from aim_ray.config.mcp_base import (
    HTTP_URL_PATTERN,
    AuthConfig,
    Duration,
    MCPModel,
    MiB,
    OutboundSettings,
    SecretRef,
    check_endpoint_domain,
    url_host,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
QUALIFIED_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"


class PostgresConnection(MCPModel):
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


class IngestSettings(MCPModel):
    """How ``aim-ray mcp ingest`` cuts files into chunks for this provider, and what the
    context deployment ingests on start when the collection or table is missing or empty.

    ``on_start`` paths are resolved against the replica's working directory (where
    ``serve run`` was started, for a local cluster)."""

    on_start: list[str] = Field(default_factory=list)
    chunk_chars: int = Field(1200, ge=100, le=100_000)
    overlap_chars: int = Field(200, ge=0, le=50_000)

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> IngestSettings:
        if self.overlap_chars >= self.chunk_chars:
            raise ValueError("overlap_chars must be smaller than chunk_chars")
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
    ingest: IngestSettings = Field(default_factory=IngestSettings)

    @model_validator(mode="after")
    def _query_or_table(self) -> PostgresSettings:
        if (self.query is None) == (self.table is None):
            raise ValueError("set exactly one of `query` or `table` (with `columns`)")
        if self.query is not None and "$1" not in self.query:
            raise ValueError("`query` must use $1 for the query text (and may use $2 for limit)")
        if self.table is not None and not self.columns:
            raise ValueError("`table` needs `columns` to search")
        if self.ingest.on_start and self.table is None:
            raise ValueError("`ingest.on_start` needs `table` and `columns` to write to")
        return self


class ChromaSettings(MCPModel):
    """Embedded (``path``, the default) or a Chroma server (``host`` + ``port``)."""

    mode: Literal["embedded", "http"] | None = None
    path: str = ".aim-ray/chroma"
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    ssl: bool = False
    auth: AuthConfig | None = None
    collection: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
    n_results: int = Field(5, ge=1, le=100)
    ingest: IngestSettings = Field(default_factory=IngestSettings)

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
            self.allowed_domains = [url_host(self.base_url)]
        check_endpoint_domain(self.base_url, self.allowed_domains)
        return self


class FilesystemSettings(MCPModel):
    """Text documents under ``roots`` matching ``patterns``, searched by keyword."""

    roots: list[str] = Field(min_length=1)
    patterns: list[str] = Field(default_factory=lambda: ["**/*.md", "**/*.txt", "**/*.rst"])
    max_bytes: int = Field(MiB, ge=1, le=64 * MiB)
    max_files: int = Field(2000, ge=1, le=100_000)
    snippet_chars: int = Field(1500, ge=100, le=100_000)


class _ProviderBase(MCPModel):
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
