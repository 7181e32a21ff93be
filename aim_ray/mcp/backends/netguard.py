"""Outbound HTTP safety for the ``rest`` provider and the ``web_fetch``/``web_search`` tools.

What is enforced, and where:

* ``check_url``: scheme http/https, a host, no credentials in the URL, and the host in
  ``allowed_domains`` when a list is given (``example.com`` = it and its subdomains,
  ``*.example.com`` = subdomains only).
* ``GuardedBackend`` (an httpcore network backend): at connect time the host is resolved,
  **every** address is checked (private, loopback, link-local, multicast, reserved,
  unspecified, shared/CGNAT, and IPv6 forms that embed such an IPv4 address are refused
  unless ``allow_private`` or listed in ``allow_networks``) and the socket is opened to one
  of those checked addresses. Checking and connecting use the same answer, so a DNS
  rebinding between check and connect is not possible; TLS still uses the hostname for SNI
  and certificate verification because httpx keeps the URL untouched. The backend is put
  into httpx's transport in place of its default pool (``GuardedTransport``).
* ``fetch``: redirects are followed by hand (at most ``max_redirects``), each hop goes
  through ``check_url`` and the backend again, and credentials headers are dropped when a
  redirect leaves the original origin. The body is streamed and reading stops at
  ``max_bytes`` (decoded bytes, so a compressed bomb is capped too).
* Clients are built with ``trust_env=False``: an ``HTTP(S)_PROXY`` from the environment
  would otherwise connect somewhere the guard never checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpcore
import httpx
from pydantic import BaseModel, ConfigDict, Field

from aim_ray.config.mcp_base import host_allowed
from aim_ray.errors import AimRayError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

REDIRECT_CODES = {301, 302, 303, 307, 308}


class NetGuardError(AimRayError):
    """An outbound request was refused by policy (the message says which rule)."""


class BlockedURLError(NetGuardError):
    pass


class ResponseTooLargeError(NetGuardError):
    pass


class URLPolicy(BaseModel):
    """The outbound rules for one provider or tool."""

    model_config = ConfigDict(frozen=True)

    allowed_domains: tuple[str, ...] | None = None
    allow_private: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = Field(1024 * 1024, ge=1)
    max_redirects: int = Field(5, ge=0)


class FetchedResponse(BaseModel):
    url: str
    status_code: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


# Prefixes whose last 32 bits are an IPv4 address a packet may end up at: IPv4-compatible
# (::a.b.c.d, deprecated but still routed by some stacks), IPv4-translated
# (::ffff:0:a.b.c.d) and NAT64, well-known and local-use. Mapped and 6to4 addresses have
# their own accessors in ``ipaddress``.
_EMBEDDING_NETWORKS = tuple(
    ipaddress.IPv6Network(net)
    for net in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    embedded = [ip.ipv4_mapped, ip.sixtofour]
    if ip.teredo:
        embedded += list(ip.teredo)
    # :: and ::1 are judged as IPv6 (unspecified, loopback), not as 0.0.0.0 and 0.0.0.1.
    if any(ip in net for net in _EMBEDDING_NETWORKS) and int(ip) > 1:
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in embedded if v4 is not None]


def _is_public(ip: IPAddress) -> bool:
    # is_global already excludes private, loopback, link-local, reserved, unspecified and
    # shared (CGNAT) space; multicast and IPv6 forms embedding an IPv4 address need more.
    if isinstance(ip, ipaddress.IPv6Address) and not all(map(_is_public, _embedded_ipv4(ip))):
        return False
    return ip.is_global and not ip.is_multicast


def check_address(address: str, policy: URLPolicy) -> None:
    """Refuse a non-public address unless the policy allows it."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if _is_public(ip) or policy.allow_private:
        return
    if any(ip in net for net in policy.allow_networks if net.version == ip.version):
        return
    raise BlockedURLError(
        f"address {ip} is not public (private, loopback, link-local, multicast or reserved); "
        "set allow_private or allow_networks to reach it"
    )


def check_url(url: str | httpx.URL, policy: URLPolicy) -> httpx.URL:
    """Syntax and domain checks, before any network access."""
    try:
        parsed = httpx.URL(str(url))
    except httpx.InvalidURL as error:
        raise BlockedURLError(f"invalid URL: {error}") from None
    if parsed.scheme not in {"http", "https"}:
        raise BlockedURLError(f"scheme {parsed.scheme!r} is not allowed (http and https only)")
    if not parsed.host:
        raise BlockedURLError("URL has no host")
    if parsed.userinfo:
        raise BlockedURLError("credentials in the URL are not allowed")
    if policy.allowed_domains is not None and not host_allowed(parsed.host, policy.allowed_domains):
        raise BlockedURLError(f"host {parsed.host!r} is not in the allowed domains")
    return parsed


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address (no re-resolve)."""

    def __init__(self, policy: URLPolicy, resolver: Resolver = system_resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            ipaddress.ip_address(host.split("%")[0])
            addresses = [host]
        except ValueError:
            try:
                addresses = await self._resolver(host, port)
            except OSError as error:
                raise httpcore.ConnectError(f"cannot resolve {host!r}: {error}") from None
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host!r}")
        for address in addresses:
            check_address(address, self._policy)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last_error: Exception | None = None
        for address in await self._addresses(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None  # _addresses never returns an empty list
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedURLError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool rebuilt on a ``GuardedBackend``.

    httpx has no public hook for the network backend, so the pool it builds is replaced;
    the request/response mapping and error translation stay httpx's own.
    """

    def __init__(self, policy: URLPolicy, resolver: Resolver = system_resolver) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy, resolver),
        )


def guarded_client(
    policy: URLPolicy,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    resolver: Resolver = system_resolver,
) -> httpx.AsyncClient:
    """An httpx client whose every connection goes through the policy's address checks."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, resolver),
        timeout=timeout,
        headers=dict(headers or {}),
        follow_redirects=False,
        trust_env=False,
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


async def _read_capped(
    response: httpx.Response, max_bytes: int, truncate: bool
) -> tuple[bytes, bool]:
    declared = response.headers.get("content-length")
    if not truncate and declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLargeError(f"response is {declared} bytes, over the {max_bytes} cap")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > max_bytes:
            if not truncate:
                raise ResponseTooLargeError(f"response exceeds the {max_bytes} byte cap")
            chunks.append(chunk[: max_bytes - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    policy: URLPolicy,
    *,
    method: str = "GET",
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
    sensitive_headers: Iterable[str] = ("authorization",),
    truncate: bool = False,
) -> FetchedResponse:
    """One request with checked redirects and a byte cap (error, or cut when ``truncate``).

    Pass credentials in ``headers`` (not on the client): ``sensitive_headers`` among them
    are dropped once a redirect leaves the origin of ``url``.
    """
    current = check_url(url, policy)
    if params:
        current = current.copy_merge_params(dict(params))
    origin = _origin(current)
    request_headers = dict(headers or {})
    sensitive = {h.lower() for h in sensitive_headers}
    redirects = 0
    while True:
        request = client.build_request(method, current, json=json, headers=request_headers)
        response = await client.send(request, stream=True)
        try:
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_CODES or not location:
                body, truncated = await _read_capped(response, policy.max_bytes, truncate)
                return FetchedResponse(
                    url=str(current),
                    status_code=response.status_code,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=body,
                    truncated=truncated,
                )
        finally:
            await response.aclose()
        redirects += 1
        if redirects > policy.max_redirects:
            raise BlockedURLError(f"more than {policy.max_redirects} redirects")
        current = check_url(current.join(location), policy)
        if response.status_code in {301, 302, 303} and method != "HEAD":
            method, json = "GET", None
        if _origin(current) != origin:
            request_headers = {
                k: v for k, v in request_headers.items() if k.lower() not in sensitive
            }
