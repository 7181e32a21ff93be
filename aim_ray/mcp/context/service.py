"""``ContextService``, the plain async class the Serve ``Context`` deployment wraps.

It builds enabled providers on first use, queries them in parallel with a timeout each (a
failing provider is reported in the result, never raised), caches per (provider, query,
limit) for ``context.cache.ttl_seconds`` (``TTLCache``), merges the items with the
configured ``retrieval_strategy`` and trims them to the ``max_length`` token budget.

MCP resources (``list_resources``/``read_resource``): each enabled provider is
``context://<provider>`` (reading it returns the provider's description and health), and
the template ``context://<provider>{?q,limit}`` reads ``limit`` items for query ``q`` as
JSON, through the same cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import OrderedDict
from typing import Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import numpy as np

from aim_ray.config.mcp import MCPConfig
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.embeddings import embed
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.context.base import ContextProvider, terms
from aim_ray.mcp.context.registry import build_provider
from aim_ray.mcp.ingest.run import ingest_on_start
from aim_ray.mcp.protocol import (
    ContextHealth,
    ContextItem,
    ContextResult,
    ProviderOutcome,
    ResourceContent,
    ResourceSpec,
    elapsed_ms,
    overall_status,
)
from aim_ray.metrics import record_context_lookup

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
RESOURCE_SCHEME = "context"
_MIN_PARTIAL_TOKENS = 32

V = TypeVar("V")


class ResourceNotFoundError(AimRayError):
    """No ``context://`` resource at that URI (another scheme, or no such provider)."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class TTLCache(Generic[V]):
    """A small LRU with per-entry expiry; per process (so per Serve replica)."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[float, V]] = OrderedDict()

    def get(self, key: tuple) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: tuple, value: V) -> None:
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
    query_terms = set(terms(query))

    def overlap(item: ContextItem) -> float:
        words = set(terms(item.content))
        return len(query_terms & words) / max(len(query_terms), 1)

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
        self._cache: TTLCache[list[ContextItem]] | None = (
            TTLCache(cache.ttl_seconds, cache.max_entries) if cache.enabled else None
        )

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

    async def health(self) -> ContextHealth:
        """Every enabled provider's probe, rolled up: degraded while some are down."""
        names = list(self._entries)
        checks = await asyncio.gather(*(self._provider(n).health() for n in names))
        return ContextHealth(
            status=overall_status(check.status == "up" for check in checks),
            providers=dict(zip(names, checks, strict=True)),
        )

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

    async def ingest_on_start(self) -> None:
        """Fill the stores whose ``ingest.on_start`` names documents, where they are empty.
        A failure leaves the provider as it is (its health says what is wrong)."""
        for entry in self._entries.values():
            try:
                await ingest_on_start(entry)
            except Exception as error:  # the service must start; health reports the provider
                logger.warning("ingest into %s failed: %s", entry.name, describe_error(error))

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()
        self._providers.clear()


class ContextDeployment(ContextService):
    """``ContextService`` as its Serve deployment: a replica is ready once the stores it
    fills on start are filled, so the first lookups find the documents."""

    async def __init__(self, config: MCPConfig) -> None:  # type: ignore[misc]  # Serve awaits it
        super().__init__(config)
        await self.ingest_on_start()
