"""Outbound URL safety: address classes, domains, pinned connections, redirects, size caps."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from mcp_fixtures import BIG_BYTES, http_server  # noqa: F401

from aim_ray.config.mcp_base import host_allowed
from aim_ray.mcp.backends.netguard import (
    BlockedURLError,
    ResponseTooLargeError,
    URLPolicy,
    check_address,
    check_url,
    fetch,
    guarded_client,
)

LOOPBACK_ONLY = URLPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "127.8.9.10",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "233.252.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.10",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "2001:db8::1",
        # IPv6 forms that embed a non-public IPv4 address are judged by that address.
        "::127.0.0.1",
        "::10.0.0.1",
        "::169.254.169.254",
        "::ffff:0:127.0.0.1",
        "::ffff:192.168.0.1",
        "2002:a9fe:a9fe::1",
        "64:ff9b::127.0.0.1",
        "64:ff9b::169.254.169.254",
        "64:ff9b:1::7f00:1",
    ],
)
def test_non_public_addresses_are_refused(address):
    with pytest.raises(BlockedURLError, match="not public"):
        check_address(address, URLPolicy())
    check_address(address, URLPolicy(allow_private=True))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "::8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::8.8.8.8",
    ],
)
def test_public_addresses_pass(address):
    check_address(address, URLPolicy())


def test_allow_networks_is_a_narrow_exception():
    policy = URLPolicy(allow_networks=(ipaddress.ip_network("10.1.0.0/16"),))
    check_address("10.1.2.3", policy)
    with pytest.raises(BlockedURLError):
        check_address("10.2.0.1", policy)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("example.com", True),
        ("api.example.com", True),
        ("deep.api.example.com", True),
        ("badexample.com", False),
        ("example.com.evil.net", False),
        ("EXAMPLE.com.", True),
    ],
)
def test_domain_matches_itself_and_subdomains(host, allowed):
    assert host_allowed(host, ["example.com"]) is allowed


def test_wildcard_matches_subdomains_only():
    assert host_allowed("www.google.com", ["*.google.com"])
    assert not host_allowed("google.com", ["*.google.com"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("http://user:pw@example.com/", "credentials in the URL"),
        ("https://evil.net/", "not in the allowed domains"),
        ("http:///nohost", "no host"),
    ],
)
def test_url_syntax_and_domain_checks(url, message):
    with pytest.raises(BlockedURLError, match=message):
        check_url(url, URLPolicy(allowed_domains=("example.com",)))


async def test_loopback_is_refused_by_default(http_server):  # noqa: F811
    async with guarded_client(URLPolicy(), timeout=5) as client:
        with pytest.raises(BlockedURLError, match="127.0.0.1 is not public"):
            await fetch(client, f"{http_server.url}/page.html", URLPolicy())


async def test_a_name_resolving_to_loopback_is_refused(http_server):  # noqa: F811
    async with guarded_client(URLPolicy(), timeout=5) as client:
        with pytest.raises(BlockedURLError, match="is not public"):
            await fetch(client, f"http://localhost:{http_server.port}/page.html", URLPolicy())


async def test_an_allowed_network_is_reachable(http_server):  # noqa: F811
    async with guarded_client(LOOPBACK_ONLY, timeout=5) as client:
        response = await fetch(client, f"{http_server.url}/page.html", LOOPBACK_ONLY)
    assert response.status_code == 200 and b"Hello MCP" in response.body
    assert response.content_type == "text/html"


async def test_connects_to_the_checked_address_with_the_original_host_header(http_server):  # noqa: F811
    calls = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    policy = URLPolicy(allowed_domains=("api.test",), allow_networks=LOOPBACK_ONLY.allow_networks)
    async with guarded_client(policy, timeout=5, resolver=resolver) as client:
        response = await fetch(client, f"http://api.test:{http_server.port}/headers", policy)
    # "api.test" has no DNS entry: the request can only have gone to the address we checked.
    assert calls == ["api.test"]
    assert response.status_code == 200
    assert (
        httpx.Response(200, content=response.body).json()["host"] == f"api.test:{http_server.port}"
    )


async def test_every_resolved_address_must_pass(http_server):  # noqa: F811
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "10.0.0.7"]

    async with guarded_client(LOOPBACK_ONLY, timeout=5, resolver=resolver) as client:
        with pytest.raises(BlockedURLError, match="10.0.0.7"):
            await fetch(client, f"http://mixed.test:{http_server.port}/page.html", LOOPBACK_ONLY)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/page.html",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/",
    ],
)
async def test_redirect_to_a_private_address_is_refused(http_server, target):  # noqa: F811
    url = f"{http_server.url}/redirect"
    async with guarded_client(LOOPBACK_ONLY, timeout=5) as client:
        with pytest.raises(BlockedURLError, match="not public"):
            await fetch(
                client, url, LOOPBACK_ONLY, params={"to": target.format(port=http_server.port)}
            )


async def test_redirect_to_a_disallowed_domain_is_refused(http_server):  # noqa: F811
    policy = URLPolicy(allowed_domains=("127.0.0.1",), allow_private=True)
    async with guarded_client(policy, timeout=5) as client:
        with pytest.raises(BlockedURLError, match="'localhost' is not in the allowed domains"):
            await fetch(
                client,
                f"{http_server.url}/redirect",
                policy,
                params={"to": f"http://localhost:{http_server.port}/page.html"},
            )


async def test_redirects_are_followed_within_policy(http_server):  # noqa: F811
    async with guarded_client(LOOPBACK_ONLY, timeout=5) as client:
        response = await fetch(
            client, f"{http_server.url}/redirect", LOOPBACK_ONLY, params={"to": "/page.html"}
        )
    assert response.status_code == 200 and response.url.endswith("/page.html")


async def test_too_many_redirects(http_server):  # noqa: F811
    policy = URLPolicy(allow_private=True, max_redirects=3)
    async with guarded_client(policy, timeout=5) as client:
        with pytest.raises(BlockedURLError, match="more than 3 redirects"):
            await fetch(client, f"{http_server.url}/loop", policy)


async def test_credentials_do_not_follow_a_redirect_to_another_origin(http_server):  # noqa: F811
    policy = URLPolicy(allow_private=True)
    headers = {"Authorization": "Bearer hush-hush", "X-Api-Key": "key-123", "X-Plain": "ok"}
    async with guarded_client(policy, timeout=5) as client:
        response = await fetch(
            client,
            f"{http_server.url}/redirect",
            policy,
            params={"to": f"http://localhost:{http_server.port}/headers"},
            headers=headers,
            sensitive_headers=["x-api-key", "authorization"],
        )
    seen = httpx.Response(200, content=response.body).json()
    assert "authorization" not in seen and "x-api-key" not in seen
    assert seen["x-plain"] == "ok"


async def test_streamed_body_over_the_cap_is_refused(http_server):  # noqa: F811
    policy = URLPolicy(allow_private=True, max_bytes=100_000)
    async with guarded_client(policy, timeout=5) as client:
        with pytest.raises(ResponseTooLargeError, match="100000 byte cap"):
            await fetch(client, f"{http_server.url}/big", policy)


async def test_declared_length_over_the_cap_is_refused_before_reading(http_server):  # noqa: F811
    policy = URLPolicy(allow_private=True, max_bytes=1000)
    async with guarded_client(policy, timeout=5) as client:
        with pytest.raises(ResponseTooLargeError, match="2097152 bytes, over the 1000 cap"):
            await fetch(client, f"{http_server.url}/big-declared", policy)


async def test_truncate_mode_stops_reading_at_the_cap(http_server):  # noqa: F811
    policy = URLPolicy(allow_private=True, max_bytes=70_000)
    async with guarded_client(policy, timeout=5) as client:
        response = await fetch(client, f"{http_server.url}/big", policy, truncate=True)
    assert response.truncated and len(response.body) == 70_000 < BIG_BYTES
