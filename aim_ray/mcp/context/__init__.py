"""MCP context: the providers (PostgreSQL, Chroma, REST, files) and ``ContextService``.

``ContextService`` is the plain async class the Serve ``Context`` deployment wraps. It
builds enabled providers on first use, queries them in parallel with a timeout each (a
failing provider is reported in the result, never raised), caches per (provider, query,
limit) for ``context.cache.ttl_seconds``, merges the items with the configured
``retrieval_strategy`` and trims them to the ``max_length`` token budget.

MCP resources (``list_resources``/``read_resource``): each enabled provider is
``context://<provider>`` (reading it returns the provider's description and health), and
the template ``context://<provider>{?q,limit}`` reads ``limit`` items for query ``q`` as
JSON, through the same cache.

This module also owns reading local files safely (``resolve_under_roots``,
``read_text_file``), shared by the filesystem provider and the ``file_reader`` tool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import stat
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import asyncpg
import chromadb
import httpx
import numpy as np
from chromadb.errors import NotFoundError

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_base import AuthConfig, OutboundSettings
from aim_ray.config.mcp_providers import (
    ChromaProviderConfig,
    ChromaSettings,
    FilesystemProviderConfig,
    FilesystemSettings,
    PostgresConnection,
    PostgresProviderConfig,
    PostgresSettings,
    ProviderConfig,
    RestProviderConfig,
    RestSettings,
)
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.embeddings import MiniLMEmbeddingFunction, embed
from aim_ray.mcp.backends.netguard import URLPolicy, fetch, guarded_client
from aim_ray.mcp.backends.secrets import redact, resolve_secret
from aim_ray.mcp.protocol import (
    ContextItem,
    ContextResult,
    ProviderHealth,
    ProviderOutcome,
    ResourceContent,
    ResourceSpec,
    elapsed_ms,
)
from aim_ray.metrics import record_context_lookup

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
RESOURCE_SCHEME = "context"
_MIN_PARTIAL_TOKENS = 32
_HEALTH_TIMEOUT_S = 5.0


class ProviderError(AimRayError):
    """A provider could not answer (down, misconfigured, bad response); safe to show."""


class PathRefusedError(AimRayError):
    """A local path is outside the allowed roots, missing, too large or not text."""


class ResourceNotFoundError(AimRayError):
    pass


def describe_error(error: BaseException) -> str:
    """A one-line, secret-free description of an error for results and health output."""
    if isinstance(error, AimRayError):
        return redact(str(error))
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return redact(f"{type(error).__name__}: {text}" if text else type(error).__name__)


def jsonable(value: Any) -> Any:
    """Database and API values as plain JSON types (numbers, strings, lists, dicts)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# -- local files --------------------------------------------------------------------------


def resolve_under_roots(requested: str, roots: list[str]) -> Path:
    """The real path of ``requested`` if it is a regular file inside one of ``roots``.

    Relative paths are tried against each root in order. ``..`` is refused outright, and the
    resolved path (symlinks followed) must still be inside a resolved root, so a symlink
    pointing out of the tree is refused too.
    """
    if not requested or "\x00" in requested:
        raise PathRefusedError("empty or invalid path")
    path = Path(requested)
    if ".." in path.parts:
        raise PathRefusedError("'..' is not allowed in paths")
    real_roots = [Path(root).resolve() for root in roots]
    candidates = [path] if path.is_absolute() else [root / path for root in real_roots]
    for candidate in candidates:
        real = candidate.resolve()
        if not any(real.is_relative_to(root) for root in real_roots):
            if path.is_absolute() or os.path.lexists(candidate):
                raise PathRefusedError(f"{requested!r} is outside the allowed directories")
            continue
        if real.is_file():
            return real
        if real.exists():
            raise PathRefusedError(f"{requested!r} is not a regular file")
    raise PathRefusedError(f"{requested!r} not found in the allowed directories")


def read_text_file(path: Path, max_bytes: int) -> str:
    """UTF-8 text of a regular file no larger than ``max_bytes``; binary files are refused."""
    # O_NOFOLLOW: the path was resolved, so a symlink here was swapped in since; O_NONBLOCK:
    # never hang on a FIFO.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise PathRefusedError(f"cannot open {path.name!r}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise PathRefusedError(f"{path.name!r} is not a regular file")
        size = status.st_size
        if size > max_bytes:
            raise PathRefusedError(f"{path.name!r} is {size} bytes, over the {max_bytes} limit")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PathRefusedError(f"{path.name!r} is over the {max_bytes} byte limit")
    if b"\x00" in data:
        raise PathRefusedError(f"{path.name!r} is a binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PathRefusedError(f"{path.name!r} is not UTF-8 text") from None


# -- providers ----------------------------------------------------------------------------


class ContextProvider(ABC):
    """One source of context. ``retrieve`` raises ``ProviderError`` when it cannot answer."""

    kind: str = ""

    def __init__(self, name: str, timeout_s: float, description: str | None = None) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.description = description or f"{self.kind} context provider {name!r}"

    @abstractmethod
    async def retrieve(self, query: str, limit: int) -> list[ContextItem]: ...

    @abstractmethod
    async def _probe(self) -> str:
        """Check the backend; return a short detail (no secrets), raise when down."""

    async def health(self) -> ProviderHealth:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(min(self.timeout_s, _HEALTH_TIMEOUT_S)):
                detail = await self._probe()
        except TimeoutError:
            return ProviderHealth(status="down", detail="timed out", latency_ms=elapsed_ms(start))
        except Exception as error:  # health reports any failure as "down", with its reason
            return ProviderHealth(
                status="down", detail=describe_error(error), latency_ms=elapsed_ms(start)
            )
        return ProviderHealth(status="up", detail=detail, latency_ms=elapsed_ms(start))

    async def close(self) -> None:
        return None


# PostgreSQL


class PostgresPool:
    """A lazily created asyncpg pool; creation is retried on the next use after a failure."""

    def __init__(self, connection: PostgresConnection) -> None:
        self._connection = connection
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        c = self._connection
        return f"postgresql://{c.user}@{c.host}:{c.port}/{c.database}"

    async def get(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                c = self._connection
                password = None
                if c.credentials is not None:
                    password = resolve_secret(
                        c.credentials.secret_name, c.credentials.key
                    ).get_secret_value()
                async with pg_errors(f"cannot connect to {self.where}"):
                    self._pool = await asyncpg.create_pool(
                        host=c.host,
                        port=c.port,
                        user=c.user,
                        database=c.database,
                        password=password,
                        ssl=c.ssl,
                        min_size=c.pool_min_size,
                        max_size=c.pool_max_size,
                        timeout=c.connect_timeout_s,
                    )
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        pool = await self.get()
        async with pg_errors(f"cannot connect to {self.where}"):
            connection = await pool.acquire(timeout=self._connection.connect_timeout_s)
        try:
            yield connection
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@asynccontextmanager
async def pg_errors(what: str) -> AsyncIterator[None]:
    """Turn driver and network failures into a ``ProviderError`` with a clean message."""
    try:
        yield
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError) as error:
        raise ProviderError(f"{what}: {describe_error(error)}") from None
    except TimeoutError:
        raise ProviderError(f"{what}: timed out") from None


def _quote_identifier(name: str) -> str:
    # Names are checked against IDENTIFIER_PATTERN in the config, so quoting is all we need.
    return ".".join(f'"{part}"' for part in name.split("."))


def full_text_sql(settings: PostgresSettings) -> str:
    """The full-text search over ``table``/``columns``: $1 = query text, $2 = limit."""
    assert settings.table and settings.columns  # guaranteed by PostgresSettings validation
    # Immutable expressions only (no concat_ws), so a GIN index on exactly
    # to_tsvector('<config>', <document>) can serve this query.
    document = " || E'\\n' || ".join(
        f"coalesce({_quote_identifier(column)}::text, '')" for column in settings.columns
    )
    config = f"'{settings.text_search_config}'::regconfig"
    vector = f"to_tsvector({config}, {document})"
    query = f"plainto_tsquery({config}, $1)"
    row_id = (
        _quote_identifier(settings.id_column) + "::text" if settings.id_column else "ctid::text"
    )
    return (
        f"SELECT {row_id} AS id, {document} AS content, ts_rank({vector}, {query}) AS score "
        f"FROM {_quote_identifier(settings.table)} WHERE {vector} @@ {query} "
        "ORDER BY score DESC LIMIT $2"
    )


class PostgresProvider(ContextProvider):
    kind = "postgresql"

    def __init__(
        self, name: str, settings: PostgresSettings, timeout_s: float, description: str | None
    ) -> None:
        super().__init__(name, timeout_s, description)
        self._settings = settings
        self._pool = PostgresPool(settings)
        self._sql = settings.query or full_text_sql(settings)
        self._takes_limit = re.search(r"\$2\b", self._sql) is not None

    async def retrieve(self, query: str, limit: int) -> list[ContextItem]:
        args: tuple[Any, ...] = (query, limit) if self._takes_limit else (query,)
        async with self._pool.connection() as conn, pg_errors(f"query on {self.name!r} failed"):
            rows = await conn.fetch(self._sql, *args, timeout=self.timeout_s)
        return [self._item(index, dict(row)) for index, row in enumerate(rows[:limit])]

    def _item(self, index: int, row: dict[str, Any]) -> ContextItem:
        if "content" not in row:
            raise ProviderError(f"query of {self.name!r} must return a `content` column")
        content = row.pop("content")
        row_id = row.pop("id", index)
        score = row.pop("score", None)
        return ContextItem(
            provider=self.name,
            id=str(row_id),
            content="" if content is None else str(content),
            score=None if score is None else float(score),
            metadata=jsonable(row),
        )

    async def _probe(self) -> str:
        async with self._pool.connection() as conn, pg_errors("health query failed"):
            await conn.fetchval("SELECT 1", timeout=self.timeout_s)
        return self._pool.where

    async def close(self) -> None:
        await self._pool.close()


# Chroma


def auth_headers(auth: AuthConfig | None) -> dict[str, str]:
    """The request header carrying ``auth``'s secret (resolved now), or none."""
    if auth is None:
        return {}
    secret = resolve_secret(auth.secret_name, auth.key).get_secret_value()
    return {auth.header_name(): auth.header_value(secret)}


def chroma_client(settings: ChromaSettings) -> Any:
    """A PersistentClient (embedded) or HttpClient for the settings; blocking, so run in
    a thread. Telemetry is off: it phones home, which fails (noisily) offline."""
    chroma_settings = chromadb.Settings(anonymized_telemetry=False)
    if settings.mode == "http":
        return chromadb.HttpClient(
            host=settings.host,
            port=settings.port,
            ssl=settings.ssl,
            headers=auth_headers(settings.auth),
            settings=chroma_settings,
        )
    return chromadb.PersistentClient(path=settings.path, settings=chroma_settings)


class ChromaProvider(ContextProvider):
    """Semantic search in one Chroma collection, embedding the query with the offline model.

    The collection is opened without an embedding function and queried by vector, so a
    collection created with Chroma's default (the same MiniLM model, via ONNX) works too.
    """

    kind = "chroma"

    def __init__(
        self,
        name: str,
        settings: ChromaSettings,
        timeout_s: float,
        description: str | None = None,
    ) -> None:
        super().__init__(name, timeout_s, description)
        self._settings = settings
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = chroma_client(self._settings)
        return self._client

    def _collection(self) -> Any:
        try:
            return self._get_client().get_collection(self._settings.collection)
        except NotFoundError:
            raise ProviderError(
                f"Chroma collection {self._settings.collection!r} does not exist"
            ) from None

    async def _run(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(fn)
        except AimRayError:
            raise
        except Exception as error:  # chromadb raises many types (ValueError, HTTP, Rust)
            raise ProviderError(f"{what}: {describe_error(error)}") from None

    def _query(self, query: str, limit: int) -> list[ContextItem]:
        result = self._collection().query(
            query_embeddings=embed([query]),
            n_results=limit,
            include=["documents", "metadatas", "distances"],
        )
        items = []
        for index, item_id in enumerate(result["ids"][0]):
            distance = result["distances"][0][index]
            items.append(
                ContextItem(
                    provider=self.name,
                    id=str(item_id),
                    content=result["documents"][0][index] or "",
                    score=None if distance is None else round(1.0 - float(distance), 6),
                    metadata=jsonable(dict(result["metadatas"][0][index] or {})),
                )
            )
        return items

    async def retrieve(self, query: str, limit: int) -> list[ContextItem]:
        limit = min(limit, self._settings.n_results)
        return await self._run(f"query on {self.name!r} failed", lambda: self._query(query, limit))

    def _add(self, ids: list[str], documents: list[str], metadatas: list[dict] | None) -> None:
        client = self._get_client()
        try:
            collection = client.get_collection(self._settings.collection)
        except NotFoundError:
            collection = client.create_collection(
                self._settings.collection,
                embedding_function=MiniLMEmbeddingFunction(),
                configuration={"hnsw": {"space": "cosine"}},
            )
        collection.upsert(
            ids=ids, documents=documents, metadatas=metadatas, embeddings=embed(documents)
        )

    async def add_documents(
        self, ids: list[str], documents: list[str], metadatas: list[dict] | None = None
    ) -> None:
        """Upsert documents (creating the collection, cosine space, on first use)."""
        await self._run(
            f"adding documents to {self.name!r} failed",
            lambda: self._add(ids, documents, metadatas),
        )

    async def _probe(self) -> str:
        def probe() -> str:
            self._get_client().heartbeat()
            count = self._collection().count()
            return f"collection {self._settings.collection!r}: {count} documents"

        return await self._run("Chroma health check failed", probe)


# REST


def url_policy(settings: OutboundSettings) -> URLPolicy:
    return URLPolicy(
        allowed_domains=None
        if settings.allowed_domains is None
        else tuple(settings.allowed_domains),
        allow_private=settings.allow_private,
        allow_networks=tuple(settings.allow_networks),
        max_bytes=settings.max_bytes,
        max_redirects=settings.max_redirects,
    )


def _dig(data: Any, dotted: str | None) -> Any:
    if dotted is None:
        return data if isinstance(data, list) else _dig(data, "results")
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


class RestProvider(ContextProvider):
    kind = "rest"

    def __init__(
        self, name: str, settings: RestSettings, timeout_s: float, description: str | None
    ) -> None:
        super().__init__(name, timeout_s, description)
        self._settings = settings
        self._policy = url_policy(settings)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = guarded_client(self._policy, self.timeout_s, self._settings.headers)
        return self._client

    async def _request(self, params: dict[str, Any]) -> Any:
        s = self._settings
        url = s.base_url.rstrip("/") + "/" + s.path.lstrip("/") if s.path else s.base_url
        headers = auth_headers(s.auth)
        sensitive = [*headers, "authorization"]
        try:
            response = await fetch(
                self._http(),
                url,
                self._policy,
                method=s.method,
                params=params if s.method == "GET" else None,
                json=params if s.method == "POST" else None,
                headers=headers,
                sensitive_headers=sensitive,
            )
        except (httpx.HTTPError, AimRayError) as error:
            raise ProviderError(
                f"request to {self.name!r} failed: {describe_error(error)}"
            ) from None
        if response.status_code >= 400:
            raise ProviderError(f"{self.name!r} answered HTTP {response.status_code}")
        try:
            return json.loads(response.body)
        except ValueError:
            raise ProviderError(f"{self.name!r} did not answer JSON") from None

    async def retrieve(self, query: str, limit: int) -> list[ContextItem]:
        s = self._settings
        params: dict[str, Any] = {s.query_param: query}
        if s.limit_param:
            params[s.limit_param] = limit
        results = _dig(await self._request(params), s.results_field)
        if not isinstance(results, list):
            raise ProviderError(f"{self.name!r}: no result list at {s.results_field or 'results'}")
        return [self._item(i, r) for i, r in enumerate(results[:limit]) if isinstance(r, dict)]

    def _item(self, index: int, result: dict[str, Any]) -> ContextItem:
        s = self._settings
        content = result.get(s.content_field)
        if s.title_field and result.get(s.title_field):
            content = f"{result[s.title_field]}\n{content or ''}".strip()
        score = result.get(s.score_field) if s.score_field else None
        used = {s.content_field, s.id_field, s.title_field, s.score_field}
        return ContextItem(
            provider=self.name,
            id=str(result.get(s.id_field, index)),
            content="" if content is None else str(content),
            score=float(score) if isinstance(score, int | float) else None,
            metadata=jsonable({k: v for k, v in result.items() if k not in used}),
        )

    async def _probe(self) -> str:
        # Any HTTP answer below 500 means the API is reachable; auth or 404 are not "down".
        try:
            response = await fetch(
                self._http(), self._settings.base_url, self._policy, truncate=True
            )
        except (httpx.HTTPError, AimRayError) as error:
            raise ProviderError(describe_error(error)) from None
        if response.status_code >= 500:
            raise ProviderError(f"HTTP {response.status_code}")
        return f"HTTP {response.status_code}"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


# Files


def _terms(text: str) -> list[str]:
    return [t for t in re.findall(r"\w+", text.lower()) if len(t) > 1]


def _snippet(text: str, terms: list[str], size: int) -> str:
    lowered = text.lower()
    hits = [i for i in (lowered.find(t) for t in terms) if i >= 0]
    start = max(0, min(hits) - size // 4) if hits else 0
    return text[start : start + size].strip()


class FilesystemProvider(ContextProvider):
    """Keyword search over text files under ``roots`` (``patterns`` are fnmatch-style on the
    path relative to the root, where ``*`` also crosses directories)."""

    kind = "filesystem"

    def __init__(
        self, name: str, settings: FilesystemSettings, timeout_s: float, description: str | None
    ) -> None:
        super().__init__(name, timeout_s, description)
        self._settings = settings

    def _matches(self, relative: str) -> bool:
        return any(
            fnmatch(relative, p) or (p.startswith("**/") and fnmatch(relative, p[3:]))
            for p in self._settings.patterns
        )

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for root in self._settings.roots:
            for directory, _, names in os.walk(root, followlinks=False):
                for name in sorted(names):
                    path = Path(directory) / name
                    if self._matches(path.relative_to(root).as_posix()):
                        files.append(path)
                    if len(files) >= self._settings.max_files:
                        return files
        return files

    def _search(self, query: str, limit: int) -> list[ContextItem]:
        terms = _terms(query)
        scored: list[tuple[float, str, str]] = []
        for path in self._files():
            try:
                real = resolve_under_roots(str(path.absolute()), self._settings.roots)
                text = read_text_file(real, self._settings.max_bytes)
            except PathRefusedError:
                continue  # symlink escapes, binaries and oversized files are not documents
            lowered = text.lower()
            hits = sum(lowered.count(t) for t in terms)
            if hits:
                score = hits / math.sqrt(max(len(_terms(text)), 1))
                scored.append((score, str(path), text))
        scored.sort(key=lambda entry: entry[0], reverse=True)
        return [
            ContextItem(
                provider=self.name,
                id=path,
                content=_snippet(text, terms, self._settings.snippet_chars),
                score=round(score, 6),
                metadata={"path": path},
            )
            for score, path, text in scored[:limit]
        ]

    async def retrieve(self, query: str, limit: int) -> list[ContextItem]:
        return await asyncio.to_thread(self._search, query, limit)

    async def _probe(self) -> str:
        missing = [root for root in self._settings.roots if not os.access(root, os.R_OK | os.X_OK)]
        if missing:
            raise ProviderError(f"roots not readable: {', '.join(missing)}")
        return f"{len(self._settings.roots)} root(s)"


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


# -- the service --------------------------------------------------------------------------


class TTLCache:
    """A small LRU with per-entry expiry; per process (so per Serve replica)."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[float, Any]] = OrderedDict()

    def get(self, key: tuple) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: tuple, value: Any) -> None:
        self._entries[key] = (time.monotonic() + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def _rank_semantic(query: str, items: list[ContextItem]) -> list[ContextItem]:
    vectors = embed([query] + [item.content[:2000] for item in items])
    similarity = vectors[1:] @ vectors[0]
    order = np.argsort(-similarity, kind="stable")
    return [items[i] for i in order]


def _rank_keyword(query: str, items: list[ContextItem]) -> list[ContextItem]:
    terms = set(_terms(query))

    def overlap(item: ContextItem) -> float:
        words = set(_terms(item.content))
        return len(terms & words) / max(len(terms), 1)

    return sorted(items, key=overlap, reverse=True)


def _round_robin(per_provider: list[list[ContextItem]]) -> list[ContextItem]:
    merged: list[ContextItem] = []
    for depth in range(max((len(items) for items in per_provider), default=0)):
        merged += [items[depth] for items in per_provider if depth < len(items)]
    return merged


def _fit_budget(items: list[ContextItem], budget: int) -> tuple[list[ContextItem], int, bool]:
    kept: list[ContextItem] = []
    used = 0
    for item in items:
        cost = estimate_tokens(item.content)
        if used + cost <= budget:
            kept.append(item)
            used += cost
            continue
        remaining = budget - used
        if remaining >= _MIN_PARTIAL_TOKENS:
            partial = item.content[: remaining * CHARS_PER_TOKEN]
            kept.append(item.model_copy(update={"content": partial}))
            used += estimate_tokens(partial)
        return kept, used, True
    return kept, used, False


class ContextService:
    """Context retrieval over the configured providers; the Serve ``Context`` deployment."""

    def __init__(self, config: MCPConfig) -> None:
        self._config = config
        self._entries = {p.name: p for p in config.providers if p.enabled}
        self._providers: dict[str, ContextProvider] = {}
        cache = config.context.cache
        self._cache = TTLCache(cache.ttl_seconds, cache.max_entries) if cache.enabled else None

    def _provider(self, name: str) -> ContextProvider:
        if name not in self._providers:
            self._providers[name] = build_provider(self._entries[name])
        return self._providers[name]

    async def provider_names(self) -> list[str]:
        return list(self._entries)

    async def _retrieve_one(
        self, name: str, query: str, limit: int
    ) -> tuple[ProviderOutcome, list[ContextItem]]:
        if name not in self._entries:
            # Not recorded: callers must not be able to grow the metrics' label set.
            return ProviderOutcome(provider=name, status="error", error="unknown provider"), []
        start = time.perf_counter()
        outcome, items = await self._lookup(name, query, limit, start)
        record_context_lookup(name, outcome.status, time.perf_counter() - start, outcome.cached)
        return outcome, items

    async def _lookup(
        self, name: str, query: str, limit: int, start: float
    ) -> tuple[ProviderOutcome, list[ContextItem]]:
        key = (name, query, limit)
        if self._cache is not None and (hit := self._cache.get(key)) is not None:
            outcome = ProviderOutcome(
                provider=name,
                status="ok",
                items=len(hit),
                cached=True,
                latency_ms=elapsed_ms(start),
            )
            return outcome, hit
        provider = self._provider(name)
        try:
            async with asyncio.timeout(provider.timeout_s):
                items = await provider.retrieve(query, limit)
        except TimeoutError:
            error = f"no answer within {provider.timeout_s:g}s"
            return ProviderOutcome(
                provider=name, status="timeout", error=error, latency_ms=elapsed_ms(start)
            ), []
        except Exception as error:  # one provider failing must not fail the whole request
            logger.warning("context provider %s failed: %s", name, describe_error(error))
            return ProviderOutcome(
                provider=name,
                status="error",
                error=describe_error(error),
                latency_ms=elapsed_ms(start),
            ), []
        if self._cache is not None:
            self._cache.put(key, items)
        outcome = ProviderOutcome(
            provider=name, status="ok", items=len(items), latency_ms=elapsed_ms(start)
        )
        return outcome, items

    async def retrieve(
        self,
        providers: list[str] | None = None,
        query: str = "",
        limit: int | None = None,
        *,
        fit: bool = True,
    ) -> ContextResult:
        """Items for ``query`` from ``providers`` (default: all enabled), merged and ranked;
        per-provider failures are reported in ``providers``.

        With ``fit`` the items are trimmed to ``context.max_length`` by a character
        estimate (``/mcp`` resource reads, which know no model). The chat loop passes
        ``fit=False`` and fits them itself with the model's own tokenizer: one rule a path.
        """
        start = time.perf_counter()
        settings = self._config.context
        limit = max(1, min(limit or settings.default_limit, 100))
        names = list(dict.fromkeys(providers or self._entries))
        results = await asyncio.gather(*(self._retrieve_one(n, query, limit) for n in names))
        outcomes = [outcome for outcome, _ in results]
        ranked = await self._rank(query, [items for _, items in results])
        if fit:
            items, used, truncated = _fit_budget(ranked, settings.max_length)
        else:
            items, used, truncated = ranked, sum(estimate_tokens(i.content) for i in ranked), False
        return ContextResult(
            query=query,
            items=items,
            providers=outcomes,
            cache_hits=sum(o.cached for o in outcomes),
            token_estimate=used,
            truncated=truncated,
            latency_ms=elapsed_ms(start),
        )

    async def _rank(self, query: str, per_provider: list[list[ContextItem]]) -> list[ContextItem]:
        strategy = self._config.context.retrieval_strategy
        merged = _round_robin(per_provider)
        if strategy == "round_robin" or len(merged) < 2:
            return merged
        if strategy == "keyword":
            return _rank_keyword(query, merged)
        return await asyncio.to_thread(_rank_semantic, query, merged)

    async def health(self) -> dict[str, Any]:
        """``{"status": healthy|degraded|unhealthy, "providers": {name: ProviderHealth}}``."""
        names = list(self._entries)
        checks = await asyncio.gather(*(self._provider(n).health() for n in names))
        states = {name: check.model_dump() for name, check in zip(names, checks, strict=True)}
        down = sum(check.status == "down" for check in checks)
        status = "healthy" if down == 0 else "unhealthy" if down == len(checks) else "degraded"
        return {"status": status, "providers": states}

    async def list_resources(self) -> list[ResourceSpec]:
        return [
            ResourceSpec(
                uri=f"{RESOURCE_SCHEME}://{name}",
                name=name,
                description=self._provider(name).description,
            )
            for name in self._entries
        ]

    async def list_resource_templates(self) -> list[ResourceSpec]:
        return [
            ResourceSpec(
                uri=f"{RESOURCE_SCHEME}://{{provider}}{{?q,limit}}",
                name="context",
                description="Context items for query q from a provider, as JSON",
            )
        ]

    async def read_resource(self, uri: str) -> ResourceContent:
        parts = urlsplit(uri)
        name = parts.netloc
        if parts.scheme != RESOURCE_SCHEME or name not in self._entries:
            raise ResourceNotFoundError(f"no such resource: {uri}")
        params = parse_qs(parts.query)
        if "q" not in params:
            provider = self._provider(name)
            health = await provider.health()
            body = {
                "name": name,
                "type": provider.kind,
                "description": provider.description,
                "health": health.model_dump(),
                "query": f"{RESOURCE_SCHEME}://{name}?q=<text>&limit=<n>",
            }
            return ResourceContent(uri=uri, text=json.dumps(body))
        limit_text = params.get("limit", [""])[0]
        limit = int(limit_text) if limit_text.isdigit() else None
        result = await self.retrieve([name], params["q"][0], limit)
        body = {
            "items": [item.model_dump() for item in result.items],
            "provider": result.providers[0].model_dump(),
        }
        return ResourceContent(uri=uri, text=json.dumps(body))

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()
        self._providers.clear()
