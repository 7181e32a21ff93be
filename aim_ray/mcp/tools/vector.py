"""The ``vector_search`` tool: semantic search through a ``ChromaProvider`` (its own
Chroma settings, or a configured ``chroma`` provider's)."""

from __future__ import annotations

from typing import Any

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_tools import VectorSearchToolConfig
from aim_ray.mcp.context.chroma import ChromaProvider
from aim_ray.mcp.protocol import ComponentHealth
from aim_ray.mcp.tools.base import Tool, ToolOutput, VectorSearchArguments


class VectorSearchTool(Tool):
    arguments = VectorSearchArguments
    default_description = (
        "Semantic search over a document collection; returns the closest passages."
    )

    def __init__(self, config: VectorSearchToolConfig, mcp: MCPConfig) -> None:
        super().__init__(config)
        self._settings = config.config
        chroma = self._settings.chroma or mcp.provider(self._settings.provider).config
        # The tool's own n_results is the cap, whatever the provider's default.
        chroma = chroma.model_copy(update={"n_results": self._settings.n_results})
        self._provider = ChromaProvider(self.name, chroma, config.timeout_s)

    def _tighten(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema["properties"]["n_results"]["maximum"] = self._settings.n_results
        schema["properties"]["n_results"]["default"] = min(5, self._settings.n_results)
        return schema

    async def run(self, args: VectorSearchArguments) -> ToolOutput:
        items = await self._provider.retrieve(
            args.query, min(args.n_results, self._settings.n_results)
        )
        results = [
            {"id": i.id, "score": i.score, "content": i.content, "metadata": i.metadata}
            for i in items
        ]
        text = "\n\n".join(f"[{r['id']}] (score {r['score']})\n{r['content']}" for r in results)
        return ToolOutput(text=text or "no results", structured={"results": results})

    async def health(self) -> ComponentHealth:
        health = await self._provider.health()
        return ComponentHealth(status=health.status, detail=health.detail)
