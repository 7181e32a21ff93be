"""Ray Serve LLM's private code is reached through one module only, so a Ray upgrade that
moves it changes one file; and a chat round through it is sent as Ray's own chat route sends
it (the client's headers and session along, the router's timeout on the first answer)."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ray.serve.llm.openai_api_models import ChatCompletionRequest
from starlette.requests import Request

from aim_ray.serving import ray_internals
from aim_ray.serving.ray_internals import Ingress, OpenAIHTTPException

PACKAGE = Path(__file__).resolve().parent.parent / "aim_ray"
PRIVATE = "ray.llm._internal"


def _imports_private(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == PRIVATE or name.startswith(f"{PRIVATE}.") for name in names):
            return True
    return False


def test_one_module_imports_ray_llm_internals():
    importers = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if _imports_private(path)
    )
    assert importers == ["aim_ray/serving/ray_internals.py"]


class EngineHandle:
    """An engine deployment's handle: records ``.options`` and answers ``chat.remote``."""

    def __init__(self, *answers: Any, delay_s: float = 0.0) -> None:
        self.answers = answers
        self.delay_s = delay_s
        self.options_seen: list[dict[str, Any]] = []
        self.calls: list[tuple[Any, Any]] = []

    def options(self, **options: Any) -> EngineHandle:
        self.options_seen.append(options)
        return self

    @property
    def chat(self) -> Any:
        handle = self

        class Method:
            @staticmethod
            async def remote(body: Any, raw_request_info: Any) -> AsyncIterator[Any]:
                handle.calls.append((body, raw_request_info))
                await asyncio.sleep(handle.delay_s)
                for answer in handle.answers:
                    yield answer

        return Method


def raw_request(**headers: str) -> Request:
    encoded = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": encoded})


def chat_body() -> ChatCompletionRequest:
    return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}])


async def test_a_chat_round_carries_the_clients_headers_and_session_to_the_engine():
    engine = EngineHandle("chunk 1", "chunk 2")
    ingress = Ingress({"m": engine}, {"m": object()})
    request = raw_request(x_session_id="s-1", x_trace="t-1")
    first, stream = await ingress.chat_round(chat_body(), request)
    assert first == "chunk 1"
    assert [chunk async for chunk in stream] == ["chunk 1", "chunk 2"]
    assert {"session_id": "s-1"} in engine.options_seen
    [(_, info)] = engine.calls
    assert info.headers["x-trace"] == "t-1"


async def test_a_chat_round_is_held_to_the_router_timeout(monkeypatch):
    monkeypatch.setattr(ray_internals, "DEFAULT_LLM_ROUTER_HTTP_TIMEOUT", 0.05)
    ingress = Ingress({"m": EngineHandle("late", delay_s=5)}, {"m": object()})
    with pytest.raises(OpenAIHTTPException) as caught:
        await ingress.chat_round(chat_body(), raw_request())
    assert caught.value.status_code == 408


async def _paced(items: list[str], gap_s: float) -> AsyncIterator[str]:
    for item in items:
        await asyncio.sleep(gap_s)
        yield item


async def _arrivals(batches: AsyncIterator[list[str]]) -> list[tuple[float, list[str]]]:
    start = asyncio.get_running_loop().time()
    return [(asyncio.get_running_loop().time() - start, batch) async for batch in batches]


async def test_the_first_chunk_leaves_before_the_batching_window_closes():
    # Ray's own batcher holds the first chunk for a whole window; ours sends it at once
    # and batches the rest as Ray does.
    window_ms = 400
    stream = ray_internals._FirstChunkNowBatcher(_paced(["a", "b", "c"], 0.01), window_ms)
    arrivals = await _arrivals(stream.stream())
    (first_at, first), *rest = arrivals
    assert first == ["a"]
    assert first_at < window_ms / 1000 / 2
    assert [item for _, batch in arrivals for item in batch] == ["a", "b", "c"]
    assert rest and all(len(batch) >= 1 for _, batch in rest)


async def test_an_empty_or_failing_stream_ends_the_first_wait():
    empty = ray_internals._FirstChunkNowBatcher(_paced([], 0), 400)
    assert await _arrivals(empty.stream()) == []

    async def failing() -> AsyncIterator[str]:
        raise ValueError("engine failed")
        yield "never"

    with pytest.raises(ValueError, match="engine failed"):
        await _arrivals(ray_internals._FirstChunkNowBatcher(failing(), 400).stream())


async def test_without_a_window_chunks_pass_one_by_one():
    stream = ray_internals._FirstChunkNowBatcher(_paced(["a", "b"], 0), 0)
    assert [batch for _, batch in await _arrivals(stream.stream())] == [["a"], ["b"]]


async def _call_asgi(app, path: str = "/v1/chat/completions", **headers: str):
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "state": {"request_id": "rid-1"},
    }
    sent: list[dict[str, Any]] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_handler_exception_becomes_rays_openai_error_without_a_task_hop():
    async def failing_app(scope, receive, send):
        raise OpenAIHTTPException(status_code=404, message="no such model", type="NotFound")

    sent = await _call_asgi(ray_internals.HandlerErrors(failing_app))
    assert sent[0]["status"] == 404
    assert b"no such model" in sent[1]["body"]
    assert b"rid-1" in sent[1]["body"]


def test_rays_error_middleware_is_replaced_by_plain_asgi():
    from starlette.middleware.base import BaseHTTPMiddleware

    from aim_ray.config.gateway import CORSSettings

    app = ray_internals.ingress_app(CORSSettings())
    classes = [m.cls for m in app.user_middleware]
    assert BaseHTTPMiddleware not in classes
    assert ray_internals.HandlerErrors in classes
