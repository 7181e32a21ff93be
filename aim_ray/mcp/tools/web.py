"""The ``web_fetch`` and ``web_search`` tools: guarded outbound requests through netguard
(every address and redirect checked, body capped); pages are read as text."""

from __future__ import annotations

import json
from typing import Any

import httpx

from aim_ray.config.mcp_tools import WebFetchToolConfig, WebSearchToolConfig
from aim_ray.mcp.backends.html import html_to_text
from aim_ray.mcp.backends.netguard import URLPolicy, fetch, guarded_client
from aim_ray.mcp.backends.outbound import auth_headers, url_policy
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.tools.base import (
    Tool,
    ToolError,
    ToolOutput,
    WebFetchArguments,
    WebSearchArguments,
)

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")


class _HttpTool(Tool):
    """A tool making guarded outbound requests through one lazily built client."""

    def __init__(self, config: WebFetchToolConfig | WebSearchToolConfig) -> None:
        super().__init__(config)
        self._settings = config.config
        self.policy: URLPolicy = url_policy(self._settings)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = guarded_client(self.policy, self.timeout_s)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class WebFetchTool(_HttpTool):
    arguments = WebFetchArguments
    default_description = "Fetch a web page and return its readable text."

    async def run(self, args: WebFetchArguments) -> ToolOutput:
        try:
            response = await fetch(self._http(), args.url, self.policy, truncate=True)
        except httpx.HTTPError as error:
            raise ToolError(f"fetch failed: {describe_error(error)}") from None
        if response.status_code >= 400:
            raise ToolError(f"HTTP {response.status_code} from {response.url}")
        content_type = response.content_type
        if not content_type.startswith(_TEXT_TYPES):
            raise ToolError(f"unsupported content type {content_type or 'unknown'!r} (not text)")
        title, text = "", response.text()
        if "html" in content_type:
            title, text = html_to_text(text)
        cut = len(text) > self._settings.max_chars or response.truncated
        text = text[: self._settings.max_chars]
        if cut:
            text += "\n[truncated]"
        meta = {
            "url": response.url,
            "status": response.status_code,
            "title": title,
            "truncated": cut,
        }
        return ToolOutput(text=f"{title}\n\n{text}" if title else text, structured=meta)


class WebSearchTool(_HttpTool):
    arguments = WebSearchArguments
    default_description = "Search the web; returns titles, URLs and snippets of the top results."

    def _tighten(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema["properties"]["max_results"]["maximum"] = self._settings.max_results
        schema["properties"]["max_results"]["default"] = self._settings.max_results
        return schema

    async def run(self, args: WebSearchArguments) -> ToolOutput:
        s = self._settings
        params = {"q": args.query, "format": "json"}
        params |= {
            k: v for k, v in {"categories": s.categories, "language": s.language}.items() if v
        }
        headers = auth_headers(s.auth)
        try:
            response = await fetch(
                self._http(),
                s.endpoint.rstrip("/") + "/search",
                self.policy,
                params=params,
                headers=headers,
                sensitive_headers=[*headers, "authorization"],
            )
        except httpx.HTTPError as error:
            raise ToolError(f"search failed: {describe_error(error)}") from None
        if response.status_code >= 400:
            raise ToolError(f"search endpoint answered HTTP {response.status_code}")
        try:
            results = json.loads(response.body).get("results")
        except (ValueError, AttributeError):
            results = None
        if not isinstance(results, list):
            raise ToolError("search endpoint did not answer SearxNG JSON (no results list)")
        top = [
            {"title": r.get("title", ""), "url": r.get("url", ""), "content": r.get("content", "")}
            for r in results[: min(args.max_results, s.max_results)]
            if isinstance(r, dict)
        ]
        text = "\n".join(
            f"{n}. {r['title']}\n   {r['url']}\n   {r['content']}" for n, r in enumerate(top, 1)
        )
        return ToolOutput(text=text or "no results", structured={"results": top})
