"""MCP-aware chat completions: context injection and the server-side tool loop.

A chat request becomes MCP-aware when it carries ``mcp_context`` (retrieve from the named
providers, fit the items into the context budget with the model's own tokenizer, inject
them as a system message) or when its ``tools`` name tools of the registry (the gateway
fills in their schemas, runs the calls the model makes through the tool deployment, and
calls the model again until it answers or the iteration limit is reached). Tools the
client defines itself come back to the client as ordinary ``tool_calls``.

Small models do not follow a tool's schema when merely asked to call it, but they do when
the engine is held to the schema with ``response_format: json_schema`` (DESIGN.md,
decision 4). So a call the request forces (a named ``tool_choice``, or ``"required"``
with one tool), registry tool or client tool alike, is produced that way and the gateway
builds the ``tool_call``; vLLM's own named choice neither holds the arguments to the
schema nor works with the guidance grammar backend the CPU recipe needs.

What happened is reported beside ``choices`` as an ``mcp`` object, and in a stream as
side-channel chunks whose ``choices`` list is empty (see README, "MCP-aware chat").
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray.llm._internal.serve.core.configs.openai_api_models import OpenAIHTTPException

from aim_ray.config.gateway import ChatSettings
from aim_ray.errors import dotted_location

REGISTRY_TTL_S = 30.0
CONTEXT_HEADER = (
    "Use the following context to answer. Each item starts with its source in brackets.\n"
)


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


class UsedItem(BaseModel):
    provider: str
    id: str
    score: float | None = None
    tokens: int
    content: str


class ContextReport(BaseModel):
    query: str
    items: list[UsedItem]
    providers: list[dict[str, Any]]
    tokens: int
    truncated: bool
    degraded: bool


class ToolCallRecord(BaseModel):
    id: str
    name: str
    arguments: Any
    status: str
    latency_ms: float
    content: str


class MCPReport(BaseModel):
    """The ``mcp`` object of a response: the context used and the tool calls executed."""

    context: ContextReport | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    iterations: int = 0


class Engine(Protocol):
    """What the chat needs from the gateway's engine handles."""

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def stream(self, payload: dict[str, Any]) -> AsyncIterator[str]: ...

    async def count_tokens(self, model: str, texts: list[str]) -> list[int]: ...


@dataclass
class Outcome:
    """The end of the MCP work: a finished response, or a final round still to stream."""

    report: MCPReport
    response: dict[str, Any] | None = None
    stream_payload: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


class MCPChat:
    """Runs the MCP part of chat completions against the tool and context deployments."""

    def __init__(
        self,
        engine: Engine,
        tools: Any | None,
        context: Any | None,
        *,
        max_context_tokens: int,
        settings: ChatSettings,
    ) -> None:
        self._engine = engine
        self._tools = tools
        self._context = context
        self._max_context_tokens = max_context_tokens
        self._settings = settings
        self._registry: dict[str, Any] = {}
        self._registry_at = float("-inf")
        self._providers: list[str] | None = None

    async def handle(self, payload: dict[str, Any]) -> Outcome | None:
        """Do the MCP work of a request; None when it asks for none (a plain chat)."""
        wanted = payload.pop("mcp_context", None)
        if wanted is not None and self._context is None:
            raise _bad_request("mcp_context needs an `mcp:` section in this deployment's config")
        server_tools = await self._server_tools(payload)
        if wanted is None and not server_tools and _forced_tool(payload) is None:
            return None
        outcome = Outcome(report=MCPReport())
        if wanted is not None:
            outcome.report.context = await self._inject_context(payload, _parse_context(wanted))
            outcome.events.append({"event": "context", **outcome.report.context.model_dump()})
        return await self._tool_loop(payload, server_tools, outcome)

    # -- context ------------------------------------------------------------------------

    async def _inject_context(
        self, payload: dict[str, Any], wanted: MCPContextRequest
    ) -> ContextReport:
        providers = await self._check_providers(wanted.providers)
        query = wanted.query or _last_user_text(payload["messages"])
        if not query:
            raise _bad_request("mcp_context needs a query or a user message to search with")
        result = await self._context.retrieve.remote(providers, query, wanted.limit)
        lines = [f"[{item.provider}:{item.id}] {item.content.strip()}" for item in result.items]
        counts = await self._engine.count_tokens(payload["model"], lines)
        used, total = [], 0
        for item, line, tokens in zip(result.items, lines, counts, strict=True):
            if total + tokens > self._max_context_tokens:
                continue
            total += tokens
            used.append((item, line, tokens))
        if used:
            _add_system_text(payload["messages"], CONTEXT_HEADER + "\n".join(u[1] for u in used))
        outcomes = [p.model_dump() for p in result.providers]
        return ContextReport(
            query=query,
            items=[
                UsedItem(provider=i.provider, id=i.id, score=i.score, tokens=t, content=i.content)
                for i, _, t in used
            ],
            providers=outcomes,
            tokens=total,
            truncated=len(used) < len(result.items),
            degraded=any(o["status"] != "ok" for o in outcomes),
        )

    async def _check_providers(self, names: list[str] | None) -> list[str]:
        if self._providers is None:
            self._providers = await self._context.provider_names.remote()
        if names is None:
            return list(self._providers)
        unknown = sorted(set(names) - set(self._providers))
        if unknown:
            raise _bad_request(
                f"unknown context provider(s) {', '.join(unknown)}; "
                f"known: {', '.join(self._providers) or 'none'}"
            )
        return names

    # -- tools --------------------------------------------------------------------------

    async def _server_tools(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The request's registry tools, with their schemas filled in from the registry."""
        requested = [t for t in payload.get("tools") or [] if isinstance(t, dict)]
        if not requested or self._tools is None:
            return {}
        registry = await self._tool_registry()
        server = {}
        for tool in requested:
            name = (tool.get("function") or {}).get("name")
            if name in registry:
                spec = registry[name]
                tool["function"] = {
                    "name": name,
                    "description": spec.description,
                    "parameters": spec.input_schema,
                }
                server[name] = spec
        return server

    async def _tool_registry(self) -> dict[str, Any]:
        # Tools change only on redeploy or when a remote server comes and goes; a short
        # TTL keeps the registry off every request's path.
        if time.monotonic() - self._registry_at > REGISTRY_TTL_S:
            specs = await self._tools.list_tools.remote()
            self._registry = {spec.name: spec for spec in specs}
            self._registry_at = time.monotonic()
        return self._registry

    async def _tool_loop(
        self, payload: dict[str, Any], server_tools: dict[str, Any], outcome: Outcome
    ) -> Outcome:
        report = outcome.report
        while True:
            report.iterations += 1
            if report.iterations >= self._settings.max_tool_iterations:
                payload["tool_choice"] = "none"
            if payload.get("stream") and not _may_call_tools(payload):
                outcome.stream_payload = payload
                return outcome
            forced = _forced_tool(payload)
            if forced is not None:
                call, response = await self._forced_call(payload, forced)
                calls = [call]
                # The forced call is made; the model now answers with its result.
                payload["tool_choice"] = "none"
            else:
                response = await self._engine.complete(_unstreamed(payload))
                calls = response["choices"][0]["message"].get("tool_calls") or []
                if not calls:
                    outcome.response = response
                    return outcome
            mine = [c for c in calls if c["function"]["name"] in server_tools]
            theirs = [c for c in calls if c["function"]["name"] not in server_tools]
            records = await self._execute(payload["messages"], mine)
            report.tool_calls += records
            outcome.events += [{"event": "tool_call", **r.model_dump()} for r in records]
            if theirs:
                outcome.response = _with_client_calls(response, theirs)
                return outcome

    async def _forced_call(
        self, payload: dict[str, Any], tool: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Ask the engine for the tool's arguments as JSON held to its schema."""
        name, description = tool["name"], tool.get("description") or ""
        schema = tool.get("parameters") or {"type": "object"}
        request = _unstreamed(payload)
        for key in ("tools", "tool_choice", "parallel_tool_calls"):
            request.pop(key, None)
        request["messages"] = [
            *payload["messages"],
            {
                "role": "system",
                "content": f"Call the tool `{name}`: {description}\n"
                "Reply with its JSON arguments only.",
            },
        ]
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        }
        response = await self._engine.complete(request)
        message = response["choices"][0]["message"]
        call = _tool_call(name, message.get("content") or "{}")
        message["content"] = None
        return call, response

    async def _execute(
        self, messages: list[dict[str, Any]], calls: list[dict[str, Any]]
    ) -> list[ToolCallRecord]:
        if not calls:
            return []
        records = await asyncio.gather(*(self._run_call(call) for call in calls))
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        messages += [{"role": "tool", "tool_call_id": r.id, "content": r.content} for r in records]
        return list(records)

    async def _run_call(self, call: dict[str, Any]) -> ToolCallRecord:
        name, raw = call["function"]["name"], call["function"].get("arguments") or "{}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            return _failed_call(call["id"], name, raw, "the model's arguments are not JSON")
        if not isinstance(arguments, dict):
            return _failed_call(call["id"], name, arguments, "the arguments must be an object")
        result = await self._tools.call_tool.remote(name, arguments)
        return ToolCallRecord(
            id=call["id"],
            name=name,
            arguments=arguments,
            status=result.status,
            latency_ms=result.latency_ms,
            content=result.content,
        )


# -- request and response helpers ---------------------------------------------------------


def _parse_context(wanted: Any) -> MCPContextRequest:
    try:
        return MCPContextRequest.model_validate(wanted)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(['mcp_context', dotted_location(e['loc'])]).rstrip('.')}: {e['msg']}"
            for e in exc.errors()
        )
        raise _bad_request(problems) from None


def _bad_request(message: str) -> OpenAIHTTPException:
    return OpenAIHTTPException(status_code=400, message=message, type="invalid_request_error")


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


def _may_call_tools(payload: dict[str, Any]) -> bool:
    return bool(payload.get("tools")) and payload.get("tool_choice") != "none"


def _forced_tool(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The ``function`` of the tool this round must call, if the request forces one."""
    choice = payload.get("tool_choice")
    functions = [t.get("function") or {} for t in payload.get("tools") or []]
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        matching = [f for f in functions if f.get("name") == name]
        if not matching:
            raise _bad_request(f"tool_choice names {name!r}, which is not in tools")
        return matching[0]
    if choice == "required" and len(functions) == 1:
        return functions[0]
    return None


def _unstreamed(payload: dict[str, Any]) -> dict[str, Any]:
    # A shallow copy: rounds only add or drop top-level keys of it, and a deep copy
    # would copy the whole conversation, injected context included, every round.
    request = {key: value for key, value in payload.items() if key != "stream_options"}
    request["stream"] = False
    return request


def _tool_call(name: str, arguments: str) -> dict[str, Any]:
    call_id = f"call_{uuid.uuid4().hex[:24]}"
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _failed_call(call_id: str, name: str, arguments: Any, why: str) -> ToolCallRecord:
    return ToolCallRecord(
        id=call_id, name=name, arguments=arguments, status="error", latency_ms=0.0, content=why
    )


def _with_client_calls(response: dict[str, Any], calls: list[dict[str, Any]]) -> dict[str, Any]:
    choice = response["choices"][0]
    choice["message"]["tool_calls"] = calls
    choice["finish_reason"] = "tool_calls"
    return response


# -- streaming ------------------------------------------------------------------------------

DONE = "data: [DONE]"


def side_chunk(model: str, chunk_id: str, event: dict[str, Any]) -> str:
    """A stream chunk with no choices: clients that read only choices pass over it."""
    chunk = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "mcp": event,
    }
    return f"data: {json.dumps(chunk)}\n\n"


def response_as_chunks(response: dict[str, Any]) -> list[str]:
    """A finished response as the chunks a stream of it would have carried."""
    choice = response["choices"][0]
    message = choice["message"]
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(message["tool_calls"])]
    base = {"id": response["id"], "object": "chat.completion.chunk", "model": response["model"]}
    base["created"] = response["created"]
    first = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    last = {
        **base,
        "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
    }
    return [f"data: {json.dumps(first)}\n\n", f"data: {json.dumps(last)}\n\n"]


async def stream_outcome(
    outcome: Outcome, model: str, answer: AsyncIterator[str] | None
) -> AsyncIterator[str]:
    """Side-channel events, then the answer, then the ``summary`` event, then ``[DONE]``.

    ``answer`` is the engine's stream of the final round; None when the answer is
    already in ``outcome.response``.
    """
    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
    for event in outcome.events:
        yield side_chunk(model, chunk_id, event)
    if answer is None:
        assert outcome.response is not None
        for chunk in response_as_chunks(outcome.response):
            yield chunk
    else:
        async for chunk in answer:
            if chunk.strip() == DONE:
                break
            yield chunk
    yield side_chunk(model, chunk_id, {"event": "summary", **outcome.report.model_dump()})
    yield f"{DONE}\n\n"
