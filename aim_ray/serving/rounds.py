"""The engine as the MCP chat loop sees it: model rounds of one HTTP request, and token counts.

``aim_ray.mcp.chat`` runs several model rounds per request (tool rounds, a forced call, the
final answer). ``ModelRounds`` is its ``Engine`` for one request: each round goes to the
engine through ``Ingress.chat_round``, the path of Ray's own chat route, carrying the
client's raw request, so every round keeps the session affinity and the request timeout a
plain chat gets. ``Tokenizers`` holds the models' own tokenizers, for fitting context.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ray.serve.llm.openai_api_models import ChatCompletionRequest
from starlette.requests import Request

from aim_ray.serving.ray_internals import Ingress, raise_if_error


class Tokenizers:
    """Each model's own tokenizer, loaded in the gateway replica on first use.

    Loaded here rather than asked of the engine: Ray 2.60's engine-side tokenize looks for
    vLLM's pre-0.32 app state and answers "does not support the 'tokenization' task", and
    a local tokenizer also saves a hop per context item.
    """

    def __init__(self, sources: dict[str, str]) -> None:
        self._sources = sources
        self._loading: dict[str, asyncio.Future[Any]] = {}

    async def count(self, model: str, texts: list[str]) -> list[int]:
        if not texts:
            return []
        # One load per model, shared by the requests that arrive while it runs.
        if model not in self._loading:
            source = self._sources[model]
            self._loading[model] = asyncio.ensure_future(asyncio.to_thread(_load, source))
        tokenizer = await self._loading[model]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _load(source: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


@dataclass(frozen=True)
class ModelRounds:
    """The ``Engine`` of ``aim_ray.mcp.chat`` for one HTTP request."""

    ingress: Ingress
    raw_request: Request
    tokenizers: Tokenizers

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = ChatCompletionRequest.model_validate(payload)
        first, _ = await self.ingress.chat_round(body, self.raw_request)
        return (first[0] if isinstance(first, list) else first).model_dump()

    async def stream(self, payload: dict[str, Any]) -> AsyncIterator[str]:
        # Started here, so an engine error raises before any chunk is sent.
        body = ChatCompletionRequest.model_validate(payload)
        _, responses = await self.ingress.chat_round(body, self.raw_request)

        async def chunks() -> AsyncIterator[str]:
            async for batch in responses:
                for chunk in batch if isinstance(batch, list) else [batch]:
                    raise_if_error(chunk)
                    yield chunk

        return chunks()

    async def count_tokens(self, model: str, texts: list[str]) -> list[int]:
        return await self.tokenizers.count(model, texts)
