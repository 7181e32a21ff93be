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
