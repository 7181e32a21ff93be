"""The MCP-aware chat request, from the gateway's hand-off to a finished body or a ready stream.

``MCPChat.handle`` decides whether a chat request is MCP-aware (it carries ``mcp_context``,
names registry tools or forces a tool call) and, if so, does all of it: injects context
(``aim_ray.mcp.chat.context``), fills in registry tools' schemas, runs the model rounds
through an ``Engine``, executes the registry calls the model makes through the tool
deployment, and returns the answer with its ``mcp`` report, as a ``Finished`` response or a
``Streamed`` one (``aim_ray.mcp.chat.stream``). The request stays one dict, the JSON body as
the client sent it, from the hand-off to the last round.

Small models do not follow a tool's schema when merely asked to call it, but they do when
the engine is held to the schema with ``response_format: json_schema``. So a call the
request forces (a named ``tool_choice``, or ``"required"`` with one tool), registry tool or
client tool alike, is produced that way and the loop builds the ``tool_call``; vLLM's own
named choice neither holds the arguments to the schema nor works with the guidance grammar
backend the CPU recipe needs.

A client's output constraints (``response_format``, ``structured_outputs``, ``guided_*``)
shape the answer, never a tool round: were they kept, a client could dictate the text the
tool-call parser reads and so the exact calls the server runs, every round. They are held
back from every round that may call tools and from the forced-call round (which sets its
own ``response_format``), and given back to the round that answers with tools off. All
tool rounds of one request share one time budget (``gateway.limits.max_tool_time_s``);
calls still running when it is spent end as ``timeout`` and the model answers with what
it has.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from ray.exceptions import RayError
from ray.serve.handle import DeploymentHandle

from aim_ray.config.gateway import ChatSettings
from aim_ray.mcp.chat.context import ContextInjection
from aim_ray.mcp.chat.report import MCPReport, ToolCallRecord, bad_request
from aim_ray.mcp.chat.stream import mcp_stream
from aim_ray.mcp.protocol import ContextAPI, ToolAPI, ToolResult, ToolSpec

REGISTRY_TTL_S = 30.0
# Request fields that constrain what the engine writes (OpenAI's and vLLM's spellings).
OUTPUT_CONSTRAINTS = (
    "response_format",
    "structured_outputs",
    "guided_json",
    "guided_regex",
    "guided_choice",
    "guided_grammar",
    "guided_decoding_backend",
    "guided_whitespace_pattern",
    "structural_tag",
)
TOOLS_UNAVAILABLE = "the tool service is unavailable (a replica was lost); try again"

logger = logging.getLogger(__name__)


class Engine(Protocol):
    """The model, for the request being answered (``aim_ray.serving.rounds.ModelRounds``)."""

    async def complete(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One whole round: the engine's chat completion response as a dict."""
        ...

    async def stream(self, payload: dict[str, Any]) -> AsyncIterator[str]:
        """One streamed round, already started: an engine error raises here."""
        ...

    async def count_tokens(self, model: str, texts: list[str]) -> list[int]: ...


@dataclass
class Finished:
    """A whole answer: the engine's last response and what the MCP work did."""

    response: dict[str, Any]
    report: MCPReport

    @property
    def body(self) -> dict[str, Any]:
        """The response body: the ``mcp`` report beside ``choices``."""
        return {**self.response, "mcp": self.report.model_dump()}


@dataclass
class Streamed:
    """A streamed answer, ready to send: its engine round, if any, has started."""

    chunks: AsyncIterator[str]


class MCPChat:
    """Runs MCP-aware chat requests against the tool and context deployments."""

    def __init__(
        self,
        tools: ToolAPI | None,
        context: DeploymentHandle[ContextAPI] | None,
        *,
        max_context_tokens: int,
        settings: ChatSettings,
        max_tool_time_s: float = 120.0,
    ) -> None:
        self._tools = tools
        self._max_tool_time_s = max_tool_time_s
        self._context = None if context is None else ContextInjection(context, max_context_tokens)
        self._settings = settings
        self._registry: dict[str, ToolSpec] = {}
        self._registry_at = float("-inf")

    async def handle(self, payload: dict[str, Any], engine: Engine) -> Finished | Streamed | None:
        """Answer an MCP-aware request; None when it asks for no MCP work (a plain chat).

        ``payload`` is the request body with its model id resolved; it is changed in place.
        """
        wanted = payload.pop("mcp_context", None)
        if wanted is not None and self._context is None:
            raise bad_request("mcp_context needs an `mcp:` section in this deployment's config")
        server_tools = await self._server_tools(payload)
        if wanted is None and not server_tools and _forced_tool(payload) is None:
            return None
        report, events = MCPReport(), []
        constraints = {k: payload.pop(k) for k in OUTPUT_CONSTRAINTS if k in payload}
        if wanted is not None:
            report.context = await self._context.inject(payload, wanted, engine.count_tokens)
            events.append({"event": "context", **report.context.model_dump()})
        response = await self._tool_loop(payload, server_tools, engine, report, events, constraints)
        if not payload.get("stream"):
            assert response is not None
            return Finished(response, report)
        # Start the final round before answering, so an engine error is an HTTP error.
        answer = response if response is not None else await engine.stream(payload)
        return Streamed(mcp_stream(payload["model"], events, report, answer))

    # -- tools --------------------------------------------------------------------------

    async def _server_tools(self, payload: dict[str, Any]) -> dict[str, ToolSpec]:
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

    async def _tool_registry(self) -> dict[str, ToolSpec]:
        # Tools change only on redeploy or when a remote server comes and goes; a short
        # TTL keeps the registry off every request's path.
        if time.monotonic() - self._registry_at > REGISTRY_TTL_S:
            specs: list[ToolSpec] = await self._tools.list_tools()
            self._registry = {spec.name: spec for spec in specs}
            self._registry_at = time.monotonic()
        return self._registry

    async def _tool_loop(
        self,
        payload: dict[str, Any],
        server_tools: dict[str, ToolSpec],
        engine: Engine,
        report: MCPReport,
        events: list[dict[str, Any]],
        constraints: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Model rounds until one answers: its response, or None when the final round is
        left to stream (``payload`` is then that round's request)."""
        deadline = time.monotonic() + self._max_tool_time_s
        while True:
            report.iterations += 1
            if report.iterations >= self._settings.max_tool_iterations:
                payload["tool_choice"] = "none"
            if not _may_call_tools(payload):
                # The answering round: the client's constraints shape its text.
                payload.update(constraints)
                if payload.get("stream"):
                    return None
            forced = _forced_tool(payload)
            if forced is not None:
                call, response = await self._forced_call(payload, forced, engine)
                calls = [call]
                # The forced call is made; the model now answers with its result.
                payload["tool_choice"] = "none"
            else:
                response = await engine.complete(_unstreamed(payload))
                calls = response["choices"][0]["message"].get("tool_calls") or []
                if not calls:
                    return response
            mine = [c for c in calls if c["function"]["name"] in server_tools]
            theirs = [c for c in calls if c["function"]["name"] not in server_tools]
            records = await self._execute(payload["messages"], mine, deadline)
            report.tool_calls += records
            events += [{"event": "tool_call", **r.model_dump()} for r in records]
            if theirs:
                return _with_client_calls(response, theirs)
            if time.monotonic() >= deadline:
                payload["tool_choice"] = "none"

    async def _forced_call(
        self, payload: dict[str, Any], tool: dict[str, Any], engine: Engine
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Ask the engine for the tool's arguments as JSON held to its schema."""
        name, description = tool["name"], tool.get("description") or ""
        schema = tool.get("parameters") or {"type": "object"}
        request = _unstreamed(payload)
        for key in ("tools", "tool_choice", "parallel_tool_calls", *OUTPUT_CONSTRAINTS):
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
        response = await engine.complete(request)
        message = response["choices"][0]["message"]
        call = _tool_call(name, message.get("content") or "{}")
        message["content"] = None
        return call, response

    async def _execute(
        self, messages: list[dict[str, Any]], calls: list[dict[str, Any]], deadline: float
    ) -> list[ToolCallRecord]:
        if not calls:
            return []
        tasks = [asyncio.ensure_future(self._run_call(call)) for call in calls]
        await asyncio.wait(tasks, timeout=max(deadline - time.monotonic(), 0))
        records = []
        for call, task in zip(calls, tasks, strict=True):
            if task.done():
                records.append(task.result())
            else:
                task.cancel()
                records.append(
                    _failed_call(
                        call["id"],
                        call["function"]["name"],
                        call["function"].get("arguments"),
                        f"the request's tool time ({self._max_tool_time_s:g} s) is spent",
                        status="timeout",
                    )
                )
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
        try:
            result: ToolResult = await self._tools.call_tool(name, arguments)
        except RayError as error:
            # A ToolService replica died under the call: the model and the client get a
            # failed call, never Ray's error text (actor ids, pids, node addresses).
            logger.warning("tool %s lost its ToolService replica: %r", name, error)
            return _failed_call(call["id"], name, arguments, TOOLS_UNAVAILABLE)
        return ToolCallRecord(
            id=call["id"],
            name=name,
            arguments=arguments,
            status=result.status,
            latency_ms=result.latency_ms,
            content=result.content,
        )


# -- request and response helpers ---------------------------------------------------------


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
            raise bad_request(f"tool_choice names {name!r}, which is not in tools")
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


def _failed_call(
    call_id: str, name: str, arguments: Any, why: str, status: str = "error"
) -> ToolCallRecord:
    return ToolCallRecord(
        id=call_id, name=name, arguments=arguments, status=status, latency_ms=0.0, content=why
    )


def _with_client_calls(response: dict[str, Any], calls: list[dict[str, Any]]) -> dict[str, Any]:
    choice = response["choices"][0]
    choice["message"]["tool_calls"] = calls
    choice["finish_reason"] = "tool_calls"
    return response
