"""Context for an MCP-aware chat: the ``mcp_context`` field, retrieval, fitting, injection.

One rule fits context on this path: ``ContextService`` returns the ranked items untrimmed
(``fit=False``) and they are fitted here into ``context.max_length`` tokens counted with the
model's own tokenizer, then put first in the conversation as a system message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray.serve.handle import DeploymentHandle

from aim_ray.errors import validation_problems
from aim_ray.mcp.chat.report import ContextReport, UsedItem, bad_request
from aim_ray.mcp.protocol import ContextAPI, ContextItem, ContextResult

CONTEXT_HEADER = (
    "Use the following context to answer. Each item starts with its source in brackets.\n"
)

CountTokens = Callable[[str, list[str]], Awaitable[list[int]]]


class MCPContextRequest(BaseModel):
    """The ``mcp_context`` field of a chat request."""

    model_config = ConfigDict(extra="forbid")

    providers: list[str] | None = Field(
        default=None, description="Providers to ask; all enabled ones when omitted."
    )
    query: str | None = Field(
        default=None, max_length=4000, description="Defaults to the last user message."
    )
    limit: int | None = Field(default=None, ge=1, le=50, description="Items per provider.")


class ContextInjection:
    """Retrieves from the context deployment and puts what fits into a request's messages."""

    def __init__(self, service: DeploymentHandle[ContextAPI], max_tokens: int) -> None:
        self._service = service
        self._max_tokens = max_tokens
        self._providers: list[str] | None = None

    async def inject(
        self, payload: dict[str, Any], field: Any, count_tokens: CountTokens
    ) -> ContextReport:
        """Add the context ``field`` (a request's ``mcp_context``) asks for to ``payload``."""
        wanted = _parse(field)
        providers = await self._check_providers(wanted.providers)
        query = wanted.query or _last_user_text(payload["messages"])
        if not query:
            raise bad_request("mcp_context needs a query or a user message to search with")
        result: ContextResult = await self._service.retrieve.remote(
            providers, query, wanted.limit, fit=False
        )
        lines = [f"[{item.provider}:{item.id}] {item.content.strip()}" for item in result.items]
        counts = await count_tokens(payload["model"], lines)
        used: list[tuple[ContextItem, str, int]] = []
        total = 0
        for item, line, tokens in zip(result.items, lines, counts, strict=True):
            if total + tokens > self._max_tokens:
                continue
            total += tokens
            used.append((item, line, tokens))
        if used:
            _add_system_text(payload["messages"], CONTEXT_HEADER + "\n".join(u[1] for u in used))
        return ContextReport(
            query=query,
            items=[
                UsedItem(provider=i.provider, id=i.id, score=i.score, tokens=t, content=i.content)
                for i, _, t in used
            ],
            providers=result.providers,
            tokens=total,
            truncated=len(used) < len(result.items),
            degraded=any(p.status != "ok" for p in result.providers),
        )

    async def _check_providers(self, names: list[str] | None) -> list[str]:
        if self._providers is None:
            self._providers = await self._service.provider_names.remote()
        if names is None:
            return list(self._providers)
        unknown = sorted(set(names) - set(self._providers))
        if unknown:
            raise bad_request(
                f"unknown context provider(s) {', '.join(unknown)}; "
                f"known: {', '.join(self._providers) or 'none'}"
            )
        return names


def _parse(field: Any) -> MCPContextRequest:
    try:
        return MCPContextRequest.model_validate(field)
    except ValidationError as exc:
        raise bad_request("; ".join(validation_problems(exc, root="mcp_context"))) from None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content or []
    return " ".join(p.get("text", "") for p in parts if isinstance(p, dict))


def _add_system_text(messages: list[dict[str, Any]], text: str) -> None:
    """Put the context first; merge into a leading system message so there is one."""
    first = messages[0] if messages else None
    if first and first.get("role") == "system" and isinstance(first.get("content"), str):
        first["content"] = f"{first['content']}\n\n{text}"
    else:
        messages.insert(0, {"role": "system", "content": text})
