"""What the gateway's clients see when something fails: OpenAI-shaped error bodies, and no
internals in any 5xx.

``openai_error`` is the one error body of the gateway's own refusals. ``ScrubServerErrors``
is an ASGI middleware that replaces the body of every 5xx answer (Ray's handlers put the
engine's exception text, traceback included, into theirs) with a generic one carrying the
request id, which is also the ``x-request-id`` header; the original goes to the log under
that id.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("aim_ray.gateway")

REQUEST_ID_HEADER = b"x-request-id"
LOGGED_BODY_CHARS = 4000


def openai_error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error body in the shape the ``openai`` client parses."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(status_code=status, content=body, headers=headers)


def request_id(scope: Scope) -> str:
    """The request's id: the Serve proxy's ``x-request-id``, or a new one put in its place."""
    headers = scope.setdefault("headers", [])
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER and value:
            return value.decode("latin-1")
    new = str(uuid.uuid4())
    # Ray's request-id middleware further in reads the header, so both agree on the id.
    scope["headers"] = [*headers, (REQUEST_ID_HEADER, new.encode())]
    return new


class ScrubServerErrors:
    """Every 5xx answer outside ``exempt`` paths becomes ``Internal error`` plus its request id."""

    def __init__(self, app: ASGIApp, exempt: frozenset[str]) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        state: dict[str, Any] = {"status": None, "body": b"", "sent": False}

        async def scrubbing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                if message["status"] < 500:
                    state["sent"] = True
                    await send(message)
                return
            if state["sent"]:
                await send(message)
                return
            if message["type"] == "http.response.body":
                state["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    await self._send_generic(send, state["status"], rid, state["body"], scope)

        try:
            await self.app(scope, receive, scrubbing_send)
        except Exception:
            if state["sent"]:
                raise
            logger.exception("request %s %s failed", rid, scope["path"])
            await self._send_generic(send, 500, rid, b"", scope)

    @staticmethod
    async def _send_generic(send: Send, status: int, rid: str, original: bytes, scope: Scope):
        if original:
            logger.error(
                "request %s %s answered %d: %s",
                rid,
                scope["path"],
                status,
                original[:LOGGED_BODY_CHARS].decode("utf-8", "replace"),
            )
        body = json.dumps(
            {
                "error": {
                    "message": f"Internal error (request id {rid})",
                    "type": "server_error",
                    "param": None,
                    "code": "internal_error",
                    "request_id": rid,
                }
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID_HEADER, rid.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
