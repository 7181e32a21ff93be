"""The gateway's API-key check as ASGI middleware: which requests pass, which get a 401."""

from __future__ import annotations

import json
from typing import Any

from aim_ray.serving.auth import APIKeyAuth

OPEN = frozenset({"/health"})


async def _status(path: str = "/v1/models", method: str = "GET", **headers: str) -> int:
    reached: list[bool] = []

    async def app(scope, receive, send):
        reached.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict[str, Any]] = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    await APIKeyAuth(app, keys=frozenset({"k1", "k2"}), open_paths=OPEN)(scope, receive, send)
    status = sent[0]["status"]
    assert bool(reached) == (status == 200)
    if status == 401:
        assert json.loads(sent[1]["body"])["error"]["code"] == "invalid_api_key"
    return status


async def test_a_valid_bearer_key_passes():
    assert await _status(authorization="Bearer k2") == 200
    assert await _status(authorization="bearer  k1 ") == 200


async def test_missing_wrong_or_non_bearer_keys_get_401():
    assert await _status() == 401
    assert await _status(authorization="Bearer nope") == 401
    assert await _status(authorization="Basic k1") == 401
    assert await _status(authorization="Bearer k1x") == 401


async def test_open_paths_and_preflights_need_no_key():
    assert await _status(path="/health") == 200
    assert await _status(method="OPTIONS") == 200
