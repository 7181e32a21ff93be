"""The configured side of outbound HTTP: a provider's or tool's settings as a netguard
``URLPolicy``, and its ``auth`` as a request header whose secret is resolved at call time.

Kept apart from ``netguard`` because it reads the config schemas, which import netguard.
"""

from __future__ import annotations

from aim_ray.config.mcp_base import AuthConfig, OutboundSettings
from aim_ray.mcp.backends.netguard import URLPolicy
from aim_ray.mcp.backends.secrets import resolve_secret


def auth_headers(auth: AuthConfig | None) -> dict[str, str]:
    """The request header carrying ``auth``'s secret (resolved now), or none."""
    if auth is None:
        return {}
    secret = resolve_secret(auth.secret_name, auth.key).get_secret_value()
    return {auth.header_name(): auth.header_value(secret)}


def url_policy(settings: OutboundSettings) -> URLPolicy:
    return URLPolicy(
        allowed_domains=None
        if settings.allowed_domains is None
        else tuple(settings.allowed_domains),
        allow_private=settings.allow_private,
        allow_networks=tuple(settings.allow_networks),
        max_bytes=settings.max_bytes,
        max_redirects=settings.max_redirects,
    )
