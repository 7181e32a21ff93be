"""Secret resolution for MCP providers and tools, and redaction of secret values.

``describe_error`` is how any error is worded for results and health output: one line,
with every known secret value redacted, the user part of connection URLs dropped and
absolute host paths replaced by ``<path>`` (an ``OSError`` loses its filename outright).

Configuration only ever names a secret (``secret_name`` plus a ``key``); the value is
looked up at connect time, in this order, and the first hit wins:

1. env ``AIM_RAY_SECRET_<NAME>_<KEY>``  e.g. ``db-credentials``/``password`` ->
   ``AIM_RAY_SECRET_DB_CREDENTIALS_PASSWORD``
2. env ``AIM_RAY_SECRET_<NAME>``        (a one-value secret, e.g. ``AIM_RAY_SECRET_API_TOKEN``)
3. file ``$AIM_RAY_SECRETS_DIR/<name>/<key>``       (only when ``AIM_RAY_SECRETS_DIR`` is set)
4. file ``/var/run/secrets/aim-ray/<name>/<key>``   (a Kubernetes Secret volume mounted there)

``<NAME>``/``<KEY>`` are upper-cased with every character outside ``[A-Z0-9]`` turned into
``_``. One trailing newline is stripped from file values (``echo`` and editors add one).
Plain, unprefixed env vars are deliberately not consulted: a secret named ``home`` or
``path`` must not silently pick up ``$HOME`` or ``$PATH`` and send it to a remote server.

Values are returned as ``pydantic.SecretStr`` and remembered (per process) so that
``redact()`` can scrub them from any text before it leaves the process.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from pydantic import SecretStr

from aim_ray.config.mcp_base import SECRET_KEY_PATTERN, SECRET_NAME_PATTERN
from aim_ray.errors import AimRayError

ENV_PREFIX = "AIM_RAY_SECRET_"
SECRETS_DIR_ENV = "AIM_RAY_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/var/run/secrets/aim-ray")
REDACTED = "***"

# Values shorter than this are not redacted: scrubbing "1" or "ab" from messages would
# mangle them while protecting nothing.
_MIN_REDACT_LEN = 4

# scheme://user[:password]@ -> scheme:// (a DSN names its user, often its password).
_URL_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)
# An absolute path standing on its own (not the path part of a URL or of a relative path).
_HOST_PATH = re.compile(r"(?<![\w:/.~-])/[^\s'\"/:,()]+(?:/[^\s'\"/:,()]*)*")

_known_values: set[str] = set()
_known_lock = threading.Lock()


class SecretNotFoundError(AimRayError, LookupError):
    """A named secret could not be found; the message lists where we looked, never a value."""

    def __init__(self, secret_name: str, key: str, looked_in: list[str]) -> None:
        self.secret_name = secret_name
        self.key = key
        self.looked_in = looked_in
        super().__init__(
            f"secret {secret_name!r} (key {key!r}) not found; looked in: {', '.join(looked_in)}"
        )


def _env_part(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", text.upper())


def _check_names(secret_name: str, key: str) -> None:
    if not re.fullmatch(SECRET_NAME_PATTERN, secret_name):
        raise ValueError(f"invalid secret name {secret_name!r}: must match {SECRET_NAME_PATTERN}")
    if key in {".", ".."} or not re.fullmatch(SECRET_KEY_PATTERN, key):
        raise ValueError(f"invalid secret key {key!r}: must match {SECRET_KEY_PATTERN}")


def candidate_locations(secret_name: str, key: str) -> list[str]:
    """Where ``resolve_secret`` looks, in order (env vars as ``env NAME``, files as paths)."""
    _check_names(secret_name, key)
    name_part = _env_part(secret_name)
    places = [f"env {ENV_PREFIX}{name_part}_{_env_part(key)}", f"env {ENV_PREFIX}{name_part}"]
    dirs = [Path(d) for d in [os.environ.get(SECRETS_DIR_ENV)] if d] + [DEFAULT_SECRETS_DIR]
    places += [str(d / secret_name / key) for d in dirs]
    return places


def _read_location(place: str) -> str | None:
    if place.startswith("env "):
        return os.environ.get(place[4:])
    path = Path(place)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


def resolve_secret(secret_name: str, key: str) -> SecretStr:
    """Look up one secret value; raise ``SecretNotFoundError`` naming the places tried."""
    places = candidate_locations(secret_name, key)
    for place in places:
        value = _read_location(place)
        if value:
            remember_secret(value)
            return SecretStr(value)
    raise SecretNotFoundError(secret_name, key, places)


def remember_secret(value: str) -> None:
    """Register a value that ``redact`` must scrub (resolve_secret does this itself)."""
    if len(value) >= _MIN_REDACT_LEN:
        with _known_lock:
            _known_values.add(value)


def redact(text: str) -> str:
    """Replace every known secret value in ``text``; call on anything leaving the process."""
    with _known_lock:
        values = sorted(_known_values, key=len, reverse=True)
    for value in values:
        text = text.replace(value, REDACTED)
    return text


def scrub(text: str) -> str:
    """``text`` without connection-URL users and absolute host paths."""
    return _HOST_PATH.sub("<path>", _URL_USERINFO.sub(r"\1", text))


def describe_error(error: BaseException) -> str:
    """A one-line description of an error for results and health output: no secret, no
    DSN user, no host path."""
    if isinstance(error, AimRayError):
        return redact(scrub(str(error)))
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror  # without the filename(s) str(error) would add
    else:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    return redact(scrub(f"{name}: {text}" if text else name))
