"""The shared pieces of the ``mcp:`` config section.

Owns the base model every entry of the section derives from (snake_case or camelCase keys,
unknown keys refused), durations (``30s``, ``5m``), references to secrets (only names: the
values are looked up at connect time by ``aim_ray.mcp.backends.secrets``, which takes its
name rules from here), and outbound network access: the settings and the pure URL and domain
rules that the config checks when it loads and ``aim_ray.mcp.backends.netguard`` checks again
on every request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

DOMAIN_PATTERN = r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$"
HTTP_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
# Kubernetes Secret naming: a DNS subdomain for the name, [-._a-zA-Z0-9] for keys. Enforcing
# it here also keeps file lookups inside the secrets directory (no "/" and no "..").
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]{1,253}$"
MiB = 1024 * 1024

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# What httpx takes for a dotted IPv4 address (and so validates as one).
_IPV4_STYLE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")


def parse_duration(value: Any) -> Any:
    """Seconds as a number, or a string like ``500ms``, ``30s``, ``1m``, ``1h``, ``1d``."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", value)
        if not match:
            raise ValueError("expected seconds or a duration like '30s', '5m', '1h'")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


def host_allowed(host: str, allowed_domains: Iterable[str]) -> bool:
    """``example.com`` matches it and its subdomains; ``*.example.com`` only subdomains."""
    host = host.lower().rstrip(".")
    for domain in allowed_domains:
        if domain.startswith("*."):
            if host.endswith(domain[1:]):
                return True
        elif host == domain or host.endswith("." + domain):
            return True
    return False


def url_host(url: str) -> str:
    """The host of ``url`` as httpx, and so the netguard at request time, names it.

    Lower-case, an IPv6 address without brackets, and an IDNA name in Unicode when it starts
    with ``xn--`` (httpx decodes only then). Written with the standard library because the
    config layer stays free of HTTP clients; ``tests/test_mcp_config.py`` holds it to httpx.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
        host = parts.hostname or ""
        if _IPV4_STYLE.fullmatch(host):
            ipaddress.IPv4Address(host)
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        if host.startswith("xn--"):
            host = host.encode("ascii").decode("idna")
    except ValueError as error:
        raise ValueError(f"invalid URL {url!r}: {error}") from None
    return host


def check_endpoint_domain(url: str, allowed: list[str] | None) -> None:
    """Refuse ``url`` when ``allowed`` lists domains and its host is not among them."""
    host = url_host(url)
    if allowed is not None and not host_allowed(host, allowed):
        raise ValueError(f"host {host!r} of {url!r} is not in allowed_domains")


class MCPModel(BaseModel):
    """An entry of the ``mcp:`` section: keys in snake_case or camelCase, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        loc_by_alias=False,
    )


class SecretRef(MCPModel):
    """A named secret; the value is resolved at connect time by ``aim_ray.mcp.backends.secrets``."""

    secret_name: str = Field(pattern=SECRET_NAME_PATTERN)
    key: str = Field("password", pattern=SECRET_KEY_PATTERN)


class AuthConfig(MCPModel):
    """Credentials sent as a header: ``Authorization: Bearer <v>`` or ``<header>: <v>``."""

    type: Literal["bearer", "api_key"]
    secret_name: str = Field(pattern=SECRET_NAME_PATTERN)
    key: str = Field("token", pattern=SECRET_KEY_PATTERN)
    header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")

    def header_name(self) -> str:
        return self.header or ("Authorization" if self.type == "bearer" else "X-API-Key")

    def header_value(self, secret: str) -> str:
        return f"Bearer {secret}" if self.type == "bearer" else secret


class SecretHeader(MCPModel):
    """A request header whose value comes from a secret, e.g. ``prefix: "Bearer "``."""

    secret_name: str = Field(pattern=SECRET_NAME_PATTERN)
    key: str = Field("token", pattern=SECRET_KEY_PATTERN)
    prefix: str = ""


class NetworkAccess(MCPModel):
    """Which addresses outbound requests may reach (checked by ``mcp.backends.netguard``)."""

    allow_private: bool = False
    # Exceptions to the private-address ban, e.g. one internal subnet instead of all of them.
    allow_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list
    )


class OutboundSettings(NetworkAccess):
    # None: any public host. "example.com" allows it and its subdomains; "*.example.com" only
    # the subdomains.
    allowed_domains: list[str] | None = None
    max_bytes: int = Field(MiB, ge=1, le=64 * MiB)
    max_redirects: int = Field(5, ge=0, le=20)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        domains = [d.strip().lower().rstrip(".") for d in value]
        bad = [d for d in domains if not re.fullmatch(DOMAIN_PATTERN, d)]
        if bad:
            raise ValueError(f"not a domain name or '*.domain' pattern: {', '.join(bad)}")
        return domains
