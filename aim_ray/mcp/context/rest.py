"""The ``rest`` context provider: a JSON search API, reached through netguard (every
address and redirect checked, body capped) with its auth secret resolved per request."""

from __future__ import annotations

import json
from typing import Any

import httpx

from aim_ray.config.mcp_providers import RestSettings
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.netguard import fetch, guarded_client
from aim_ray.mcp.backends.outbound import auth_headers, url_policy
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.backends.values import jsonable
from aim_ray.mcp.context.base import ContextProvider, ProviderError
from aim_ray.mcp.protocol import ContextItem


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
