"""The ``aim-ray mcp`` commands' options, and how the ones given become a config entry.

Owns the type enums (the same as the schema's ``PROVIDER_TYPES``/``TOOL_TYPES``), which
type-specific options each type takes, the shared option declarations with their help
panels, and the translation of flags into an entry's keys (``--secret-name`` → ``auth``,
``--rate-limit 100/1m`` → ``rate_limit``, ...). Whether the entry is valid is the schema's
call (``aim_ray.config.mcp.entry_problems``), not this module's.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from aim_ray.errors import AimRayError


class ProviderType(StrEnum):
    postgresql = "postgresql"
    chroma = "chroma"
    rest = "rest"
    filesystem = "filesystem"


class ToolType(StrEnum):
    calculator = "calculator"
    file_reader = "file_reader"
    sql_query = "sql_query"
    vector_search = "vector_search"
    web_fetch = "web_fetch"
    web_search = "web_search"
    remote_mcp = "remote_mcp"
    python = "python"


class AuthType(StrEnum):
    bearer = "bearer"
    api_key = "api_key"


# Which type-specific options each type takes; any other one given is refused.
_AUTH_OPTIONS = ("--auth-type", "--secret-name", "--secret-key", "--auth-header")
PROVIDER_OPTIONS: dict[str, tuple[str, ...]] = {
    "postgresql": (
        "--host", "--port", "--database", "--user", "--secret-name", "--secret-key",
        "--table", "--columns", "--query", "--id-column", "--ssl",
    ),
    "chroma": ("--path", "--host", "--port", "--collection", "--n-results", *_AUTH_OPTIONS),
    "rest": (
        "--base-url", "--path", "--method", "--query-param", "--results-field",
        "--content-field", "--id-field", "--title-field", "--allowed-domain",
        "--allow-private", *_AUTH_OPTIONS,
    ),
    "filesystem": ("--root", "--pattern"),
}  # fmt: skip
TOOL_OPTIONS: dict[str, tuple[str, ...]] = {
    "calculator": (),
    "file_reader": ("--allowed-path", "--max-bytes"),
    "sql_query": ("--provider", "--max-rows"),
    "vector_search": ("--provider", "--n-results"),
    "web_fetch": ("--allowed-domain", "--allow-private", "--max-bytes"),
    "web_search": (
        "--endpoint", "--allowed-domain", "--allow-private", "--max-results", *_AUTH_OPTIONS,
    ),
    "remote_mcp": ("--url", "--prefix", "--include", "--allow-private", *_AUTH_OPTIONS),
    "python": ("--import-path",),
}  # fmt: skip

_CONFIG_HELP = (
    "Append the entry to this YAML file instead of printing it: a standalone `mcp:` config "
    "(created if missing) or a Serve config (the aim-ray application's `args.mcp`). The file "
    "is rewritten with PyYAML: its leading comment block is kept, other comments are not."
)

ConfigFileOption = Annotated[Path | None, typer.Option("--config", help=_CONFIG_HELP)]
AppNameOption = Annotated[
    str | None,
    typer.Option("--app", help="In a Serve config with several aim-ray applications: which."),
]
DescriptionOption = Annotated[str | None, typer.Option(help="What the entry is for.")]
DisabledOption = Annotated[bool, typer.Option("--disabled", help="Write `enabled: false`.")]
_AUTH = "Secrets and auth"
_NETWORK = "Network access"
AuthTypeOption = Annotated[
    AuthType | None,
    typer.Option(
        "--auth-type",
        help="bearer (Authorization: Bearer <secret>) or api_key (<header>: <secret>).",
        rich_help_panel=_AUTH,
    ),
]
SecretNameOption = Annotated[
    str | None,
    typer.Option(
        "--secret-name",
        help="The secret to send (postgresql: the password). Only its name is written; "
        "the value is resolved at run time (aim_ray.mcp.backends.secrets).",
        rich_help_panel=_AUTH,
    ),
]
SecretKeyOption = Annotated[
    str | None,
    typer.Option(
        "--secret-key",
        help="Key inside the secret (default: password for postgresql, else token).",
        rich_help_panel=_AUTH,
    ),
]
AuthHeaderOption = Annotated[
    str | None,
    typer.Option(
        "--auth-header",
        help="Header to send the secret in (default: Authorization / X-API-Key).",
        rich_help_panel=_AUTH,
    ),
]
AllowedDomainOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-domain",
        help="Repeatable: a domain (and its subdomains) or '*.domain' requests may reach.",
        rich_help_panel=_NETWORK,
    ),
]
AllowPrivateOption = Annotated[
    bool,
    typer.Option(
        "--allow-private",
        help="Allow private and loopback addresses (off by default).",
        rich_help_panel=_NETWORK,
    ),
]


def _panel(panel: str) -> Any:
    return lambda help: typer.Option(help=help, rich_help_panel=panel)


pg_option = _panel("postgresql")
chroma_option = _panel("chroma")
rest_option = _panel("rest")
fs_option = _panel("filesystem")

# The client commands' shared options.
HeaderOption = Annotated[
    list[str] | None,
    typer.Option("--header", "-H", help="Repeatable HTTP header 'Name: value', e.g. auth."),
]
ClientTimeoutOption = Annotated[
    float, typer.Option(min=0.001, help="Seconds to wait for the server, in all.")
]
UrlArgument = Annotated[
    str, typer.Argument(help="The server's Streamable HTTP endpoint, e.g. http://host:8000/mcp.")
]


# -- from the options given to an entry


def option_settings(given: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """The options the user set, as ``config`` keys; refuses options ``what`` does not take."""
    used = {flag: value for flag, value in given.items() if value not in (None, False, [])}
    stray = [flag for flag in used if flag not in allowed]
    if stray:
        takes = ", ".join(allowed) or "no type-specific options"
        raise AimRayError(f"{', '.join(stray)} does not apply to {what} (it takes: {takes})")
    # In the order of ``allowed``, so entries read the same whatever the command line order.
    return {flag[2:].replace("-", "_"): used[flag] for flag in allowed if flag in used}


def rename_keys(settings: dict[str, Any], **names: str) -> None:
    for old, new in names.items():
        if old in settings:
            settings[new] = settings.pop(old)


def pop_keys(settings: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {new: settings.pop(old) for old, new in names.items() if old in settings}


_AUTH_KEYS = {
    "auth_type": "type",
    "secret_name": "secret_name",
    "secret_key": "key",
    "auth_header": "header",
}


def move_auth(settings: dict[str, Any]) -> None:
    """--auth-type/--secret-name/--secret-key/--auth-header as an ``auth`` block."""
    auth = pop_keys(settings, _AUTH_KEYS)
    if auth:
        if "type" not in auth:
            raise AimRayError("--secret-name needs --auth-type bearer or api_key")
        settings["auth"] = auth


def move_secret_header(settings: dict[str, Any]) -> None:
    """remote_mcp: the same options as one ``secret_headers`` entry."""
    auth = pop_keys(settings, _AUTH_KEYS)
    if not auth:
        return
    if "type" not in auth or "secret_name" not in auth:
        raise AimRayError("remote_mcp auth needs both --auth-type and --secret-name")
    bearer = auth.pop("type") == "bearer"
    header = auth.pop("header", None) or ("Authorization" if bearer else "X-API-Key")
    settings["secret_headers"] = {header: {**auth, **({"prefix": "Bearer "} if bearer else {})}}


def _duration(text: str) -> str | int | float:
    """'10' → 10 (so the YAML says ``10``, not ``'10'``); '1m' stays a string."""
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    return int(number) if number.is_integer() else number


def parse_rate_limit(text: str) -> dict[str, Any]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", text)
    if not match:
        raise AimRayError(f"--rate-limit {text!r}: expected REQUESTS/WINDOW, e.g. 100/1m")
    return {"requests": int(match.group(1)), "window": _duration(match.group(2))}


def build_entry(
    name: str,
    kind: str,
    description: str | None,
    timeout: str | None,
    disabled: bool,
    settings: dict[str, Any],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": kind}
    if description is not None:
        entry["description"] = description
    if disabled:
        entry["enabled"] = False
    if timeout is not None:
        entry["timeout_s"] = _duration(timeout)
    if settings:
        entry["config"] = settings
    return entry
