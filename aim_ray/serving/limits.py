"""How much of the engine one request, and one client, may take (``gateway.limits``).

``apply_limits`` checks a chat or completion body against the per-request limits (``n``,
``max_tokens``, ``n`` x ``max_tokens``, prompt bytes) and gives a body without a token cap
the default one, so no request runs to the model's window unasked. ``ClientConcurrency``
caps the engine requests one client has in flight: the client is its API key, or its
address when auth is off. The count is per gateway replica, so a client may have up to
``replicas`` x ``max_concurrent_per_client`` requests in flight in all.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from aim_ray.config.gateway import LimitSettings
from aim_ray.serving.errors import openai_error

RETRY_AFTER_S = 1


class LimitExceeded(Exception):
    """A request over one of ``gateway.limits``: a 400 naming the parameter."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def apply_limits(payload: dict[str, Any], limits: LimitSettings) -> None:
    """Refuse ``payload`` (a chat or completion body) over a limit; default its token cap.

    Values of the wrong type are left to the request schema, which names them better.
    """
    choices = max(_int(payload.get("n"), 1), _int(payload.get("best_of"), 1))
    if choices > limits.max_n:
        param = "n" if _int(payload.get("n"), 1) == choices else "best_of"
        raise LimitExceeded(
            param, f"{param} is {choices}; this gateway allows at most {limits.max_n}"
        )
    cap_field = "max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"
    if payload.get(cap_field) is None:
        payload[cap_field] = limits.default_max_tokens
    tokens = _int(payload[cap_field], 0)
    if tokens > limits.max_tokens:
        raise LimitExceeded(
            cap_field, f"{cap_field} is {tokens}; this gateway allows at most {limits.max_tokens}"
        )
    if choices * tokens > limits.max_total_tokens:
        raise LimitExceeded(
            cap_field,
            f"n x {cap_field} is {choices * tokens}; this gateway allows at most "
            f"{limits.max_total_tokens} tokens a request",
        )
    prompt_field = "messages" if "messages" in payload else "prompt"
    size = len(json.dumps(payload.get(prompt_field), ensure_ascii=False).encode())
    if size > limits.max_prompt_bytes:
        raise LimitExceeded(
            prompt_field,
            f"{prompt_field} is {size} bytes; this gateway allows at most "
            f"{limits.max_prompt_bytes}",
        )


def _int(value: Any, default: int) -> int:
    # bool is an int to Python but not to the request schema.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def limit_error(exc: LimitExceeded):
    """The OpenAI-shaped 400 for a request over a limit."""
    return openai_error(400, exc.message, "invalid_request_error", "limit_exceeded", exc.param)


class ClientConcurrency:
    """ASGI middleware: at most ``limit`` requests in flight per client on ``paths``."""

    def __init__(self, app: ASGIApp, *, limit: int, paths: frozenset[str]) -> None:
        self.app = app
        self.limit = limit
        self.paths = paths
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        client = client_key(scope)
        if self.in_flight.get(client, 0) >= self.limit:
            refusal = openai_error(
                429,
                f"Too many requests in flight from this client (at most {self.limit}); "
                "retry when one has finished.",
                "rate_limit_error",
                "too_many_concurrent_requests",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
            await refusal(scope, receive, send)
            return
        self.in_flight[client] = self.in_flight.get(client, 0) + 1
        try:
            # Returns when the last byte is sent, so a stream holds its slot to the end.
            await self.app(scope, receive, send)
        finally:
            self.in_flight[client] -= 1
            if not self.in_flight[client]:
                del self.in_flight[client]


def client_key(scope: Scope) -> str:
    """Who sends the request: a digest of its bearer key, or its address without one."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization" and value:
            return "key:" + hashlib.sha256(value).hexdigest()
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")
