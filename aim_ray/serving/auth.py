"""API-key auth of the gateway (``gateway.auth``): where the keys come from, and the check.

``load_api_keys`` reads the keys from the environment variable and the file the config
names (secrets never live in the config itself). ``APIKeyAuth`` is plain ASGI middleware:
every request outside the open paths must carry ``Authorization: Bearer <key>`` with one
of the keys, or gets the OpenAI-shaped 401 the ``openai`` client reports as an
authentication error.
"""

from __future__ import annotations

import hmac
import os

from starlette.types import ASGIApp, Receive, Scope, Send

from aim_ray.config.gateway import AuthSettings
from aim_ray.errors import AimRayError
from aim_ray.serving.errors import openai_error


def load_api_keys(auth: AuthSettings) -> frozenset[str]:
    """Read the configured keys; an enabled auth with no keys is a configuration error."""
    if not auth.enabled:
        return frozenset()
    keys = {k.strip() for k in os.environ.get(auth.api_keys_env, "").split(",")}
    if auth.api_keys_file is not None:
        try:
            keys |= {line.strip() for line in auth.api_keys_file.read_text().splitlines()}
        except OSError as exc:
            raise AimRayError(
                f"cannot read api_keys_file {auth.api_keys_file}: {exc.strerror}"
            ) from None
    keys.discard("")
    if not keys:
        raise AimRayError(
            f"auth is enabled but no API keys were found in ${auth.api_keys_env} "
            f"or api_keys_file ({auth.api_keys_file})"
        )
    return frozenset(keys)


class APIKeyAuth:
    """ASGI middleware: a valid bearer key on every request but CORS preflights and
    ``open_paths``."""

    def __init__(self, app: ASGIApp, *, keys: frozenset[str], open_paths: frozenset[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in self.open_paths
            or scope["method"] == "OPTIONS"
            or self._key_is_valid(_bearer_key(scope))
        ):
            await self.app(scope, receive, send)
            return
        refusal = openai_error(
            401,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.",
            "invalid_request_error",
            "invalid_api_key",
        )
        await refusal(scope, receive, send)

    def _key_is_valid(self, key: bytes | None) -> bool:
        if key is None:
            return False
        # Compare against every key so timing does not reveal which prefix matched.
        matches = [hmac.compare_digest(key, k) for k in self.keys]
        return any(matches)


def _bearer_key(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, key = value.partition(b" ")
            return key.strip() if scheme.lower() == b"bearer" else None
    return None
