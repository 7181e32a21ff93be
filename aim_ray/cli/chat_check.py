"""Talking to a running aim-ray endpoint as an app would: ``aim-ray test-endpoint``.

Owns one MCP-aware chat through the ``openai`` client and what came back from it: the
answer, the ``mcp`` report (context used, tool calls executed), client-side tool calls
and timings, streamed or not. The CLI only prints a ``ChatCheck``.
"""

from __future__ import annotations

import time
from typing import Any

import openai
from pydantic import BaseModel, Field

from aim_ray.errors import AimRayError


class ChatCheckRequest(BaseModel):
    """What ``test-endpoint`` asks."""

    url: str
    query: str = Field(min_length=1)
    model: str | None = None
    api_key: str | None = None
    context_providers: list[str] = Field(default_factory=list)
    context_query: str | None = None
    tools: list[str] = Field(default_factory=list)
    tool_choice: str | None = None
    stream: bool = False
    max_tokens: int = Field(default=128, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)


class ChatCheck(BaseModel):
    """What came back, and how long it took."""

    model: str
    answer: str
    finish_reason: str | None
    client_tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    mcp: dict[str, Any] | None = None
    stream_events: list[str] = Field(default_factory=list)
    seconds_total: float
    seconds_to_first_token: float | None = None


def api_base(url: str) -> str:
    """``http://host:8000``, ``.../v1`` and ``.../v1/`` all mean the same endpoint."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def run_chat_check(request: ChatCheckRequest) -> ChatCheck:
    """One chat against the endpoint; an ``AimRayError`` says what went wrong."""
    client = openai.OpenAI(
        base_url=api_base(request.url),
        api_key=request.api_key or "unused",
        timeout=request.timeout_s,
        max_retries=0,
    )
    try:
        model = request.model or _first_model(client)
        arguments = _chat_arguments(request, model)
        start = time.perf_counter()
        if request.stream:
            return _streamed(client.chat.completions.create(**arguments), model, start)
        return _whole(client.chat.completions.create(**arguments), model, start)
    except openai.APIConnectionError as error:
        reason = error.__cause__ or error
        raise AimRayError(f"cannot reach {api_base(request.url)}: {reason}") from None
    except openai.APIStatusError as error:
        raise AimRayError(f"the endpoint answered {error.status_code}: {_message(error)}") from None


def _first_model(client: openai.OpenAI) -> str:
    models = client.models.list().data
    if not models:
        raise AimRayError("the endpoint serves no models")
    return models[0].id


def _chat_arguments(request: ChatCheckRequest, model: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": request.query}],
        "temperature": 0,
        "max_tokens": request.max_tokens,
        "stream": request.stream,
    }
    extra: dict[str, Any] = {}
    if request.context_providers or request.context_query:
        wanted = {"providers": request.context_providers or None, "query": request.context_query}
        extra["mcp_context"] = {k: v for k, v in wanted.items() if v}
    if request.tools:
        # Name only: the gateway fills in registry tools' schemas.
        arguments["tools"] = [{"type": "function", "function": {"name": n}} for n in request.tools]
    if request.tool_choice:
        arguments["tool_choice"] = _tool_choice(request.tool_choice)
    if extra:
        arguments["extra_body"] = extra
    return arguments


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _whole(response: Any, model: str, start: float) -> ChatCheck:
    choice = response.choices[0]
    calls = [c.model_dump() for c in choice.message.tool_calls or []]
    return ChatCheck(
        model=model,
        answer=choice.message.content or "",
        finish_reason=choice.finish_reason,
        client_tool_calls=calls,
        mcp=(response.model_extra or {}).get("mcp"),
        seconds_total=time.perf_counter() - start,
    )


def _streamed(chunks: Any, model: str, start: float) -> ChatCheck:
    answer: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    events: list[str] = []
    report, finish, first_token = None, None, None
    for chunk in chunks:
        mcp = (chunk.model_extra or {}).get("mcp")
        if mcp is not None:
            events.append(mcp.get("event", "?"))
            if mcp.get("event") == "summary":
                report = {k: v for k, v in mcp.items() if k != "event"}
        for choice in chunk.choices:
            if choice.delta.content:
                first_token = first_token or time.perf_counter() - start
                answer.append(choice.delta.content)
            for call in choice.delta.tool_calls or []:
                _merge_call_delta(calls.setdefault(call.index, {}), call.model_dump())
            finish = choice.finish_reason or finish
    return ChatCheck(
        model=model,
        answer="".join(answer),
        finish_reason=finish,
        client_tool_calls=[calls[i] for i in sorted(calls)],
        mcp=report,
        stream_events=events,
        seconds_total=time.perf_counter() - start,
        seconds_to_first_token=first_token,
    )


def _merge_call_delta(call: dict[str, Any], delta: dict[str, Any]) -> None:
    """Tool calls stream in pieces: id and name once, the arguments in fragments."""
    function = call.setdefault("function", {"name": "", "arguments": ""})
    call["id"] = call.get("id") or delta.get("id")
    fragment = delta.get("function") or {}
    function["name"] = function["name"] or fragment.get("name") or ""
    function["arguments"] += fragment.get("arguments") or ""


def _message(error: openai.APIStatusError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    inner = body.get("error", body)  # OpenAI's shape is {"error": {"message": ...}}
    return (inner.get("message") if isinstance(inner, dict) else None) or str(error)
