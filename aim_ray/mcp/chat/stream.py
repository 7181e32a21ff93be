"""An MCP-aware chat as a server-sent event stream.

The MCP events travel in side-channel chunks whose ``choices`` list is empty, so clients
that read only ``choices`` pass over them: the events before the answer, the answer (the
engine's own chunks, or a finished response cut into the chunks a stream of it would have
carried), then the ``summary`` event, then ``[DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aim_ray.mcp.chat.report import MCPReport

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


async def mcp_stream(
    model: str,
    events: list[dict[str, Any]],
    report: MCPReport,
    answer: dict[str, Any] | AsyncIterator[str],
) -> AsyncIterator[str]:
    """The events, the answer (a finished response or the final round's engine stream),
    the ``summary`` event, ``[DONE]``."""
    chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
    for event in events:
        yield side_chunk(model, chunk_id, event)
    if isinstance(answer, dict):
        for chunk in response_as_chunks(answer):
            yield chunk
    else:
        async for chunk in answer:
            if chunk.strip() == DONE:
                break
            yield chunk
    yield side_chunk(model, chunk_id, {"event": "summary", **report.model_dump()})
    yield f"{DONE}\n\n"
