"""The one Host/Origin policy of every gateway route that can reach the engine or run tools.

A browser page on a foreign site can make a user's browser send requests to a loopback
or intranet gateway (DNS rebinding, or plain cross-site POSTs); the policy refuses them
before auth, routing or tools: a ``Host`` header not in ``gateway.allowed_hosts`` is
answered 421, an ``Origin`` not in ``gateway.allowed_origins`` (or ``gateway.cors``'s)
403. A request without ``Origin`` comes from a non-browser client and passes. Patterns are
exact (case-insensitive) or ``name:*`` for any port, as ``/mcp``'s own transport guard
reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from aim_ray.serving.errors import openai_error


def matches(value: str, patterns: Iterable[str]) -> bool:
    """Whether ``value`` is one of ``patterns`` (``name:*`` = ``name`` on any port)."""
    value = value.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if value == pattern:
            return True
        if pattern.endswith(":*") and value.startswith(pattern[:-1]):
            return True
    return False


class HostOriginGuard:
    """ASGI middleware: refuses foreign ``Host`` (421) and ``Origin`` (403) headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: list[str],
        allowed_origins: list[str],
        open_paths: frozenset[str],
    ) -> None:
        self.app = app
        self.hosts = list(allowed_hosts)
        self.origins = list(allowed_origins)
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.open_paths:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        host = headers.get("host", "")
        if not matches(host, self.hosts):
            return openai_error(
                421,
                "This Host is not served here; the operator lists allowed hosts in "
                "gateway.allowed_hosts.",
                "invalid_request_error",
                "host_not_allowed",
            )
        origin = headers.get("origin")
        if origin is not None and not matches(origin, self.origins):
            return openai_error(
                403,
                "Requests from this Origin are not allowed; the operator lists allowed "
                "origins in gateway.allowed_origins.",
                "invalid_request_error",
                "origin_not_allowed",
            )
        return None
