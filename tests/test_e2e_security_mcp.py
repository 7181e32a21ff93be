"""End to end: the hardening of ``/mcp`` against the running application (issue 11, items
4, 6 and 7). Every test here failed on the code before it: files read through symlinks
below a root, errors that carried Ray tracebacks or a DSN's user, IPv4-compatible IPv6
addresses taken as public, batches answered with a validation dump and a GET that held
an SSE stream open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import TEST_API_KEY
from swap_race import directory_swapped_for_symlink
from test_e2e_mcp import call, mcp_client

pytestmark = pytest.mark.slow

HEADERS = {
    "Authorization": f"Bearer {TEST_API_KEY}",
    "Accept": "application/json, text/event-stream",
}
OUTSIDE = "OUTSIDE-THE-ROOT-7f3a"


def rpc(app, method: str, params: dict) -> dict:
    body = {"jsonrpc": "2.0", "id": 11, "method": method, "params": params}
    response = httpx.post(app.mcp_url, json=body, headers=HEADERS, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def planted(app, tmp_path) -> Iterator[Path]:
    """Symlinks planted under the served root for one test: a file and a directory that
    point inside the root, a directory that points outside it."""
    docs = app.services.docs
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "cats.md").write_text(f"kitten {OUTSIDE}\n")
    links = {
        docs / "inner-link.md": docs / "cats.md",
        docs / "alias": docs,
        docs / "out": outside,
    }
    for link, target in links.items():
        link.symlink_to(target, target_is_directory=target.is_dir())
    try:
        yield docs
    finally:
        for link in links:
            link.unlink()


@pytest.mark.parametrize(
    "path",
    ["inner-link.md", "alias/cats.md", "out/cats.md", "../cats.md", "alias/../../cats.md"],
)
async def test_file_reader_follows_no_symlink_and_no_dotdot(app, planted, path):
    is_error, text = await call(app, "file_reader", {"path": path})
    assert is_error, text
    assert OUTSIDE not in text and str(planted) not in text
    assert "symlinks are not followed" in text or "'..' is not allowed" in text


async def test_file_reader_absolute_path_inside_reads_outside_is_refused(app, planted):
    is_error, text = await call(app, "file_reader", {"path": str(planted / "cats.md")})
    assert not is_error and "kitten" in text
    is_error, text = await call(app, "file_reader", {"path": str(planted / "out" / "cats.md")})
    assert is_error and OUTSIDE not in text


async def test_file_reader_never_leaks_while_a_directory_is_swapped(app, planted, tmp_path):
    """The attack run's race through /mcp: ``sub`` flips between a real directory and a
    symlink to outside the root while file_reader reads ``sub/cats.md``."""
    sub = planted / "sub"
    sub.mkdir()
    (sub / "cats.md").write_text("kitten inside\n")
    try:
        with directory_swapped_for_symlink(sub, tmp_path / "outside"):
            async with mcp_client(app) as client:
                results = [
                    await client.call_tool("file_reader", {"path": "sub/cats.md"})
                    for _ in range(60)
                ]
    finally:
        (sub / "cats.md").unlink()
        sub.rmdir()
    texts = [result.content[0].text for result in results]
    assert not any(OUTSIDE in text for text in texts)


async def test_filesystem_resource_skips_symlinks_and_names_no_host_path(app, planted):
    async with mcp_client(app) as client:
        read = await client.read_resource("context://files?q=kitten&limit=20")
    body = json.loads(read.contents[0].text)
    ids = sorted(item["id"] for item in body["items"])
    assert ids == ["docs/cats.md"], ids
    assert str(planted) not in read.contents[0].text
    assert OUTSIDE not in read.contents[0].text


def test_filesystem_context_in_chat_skips_symlinks_and_names_no_host_path(app, planted):
    response = app.openai().chat.completions.create(
        model=app.model,
        messages=[{"role": "user", "content": "What is a young cat called?"}],
        temperature=0,
        max_tokens=8,
        extra_body={"mcp_context": {"providers": ["files"], "query": "kitten", "limit": 9}},
    )
    report = response.to_dict()["mcp"]["context"]
    assert [item["id"] for item in report["items"]] == ["docs/cats.md"]
    assert str(planted) not in str(report) and OUTSIDE not in str(report)


def test_unknown_resource_is_resource_not_found(app):
    answer = rpc(app, "resources/read", {"uri": "context://no_such_provider?q=x"})
    assert answer["error"]["code"] == -32002
    assert answer["error"]["message"] == "resource not found"
    assert "Traceback" not in json.dumps(answer)


def test_unknown_tool_is_invalid_params(app):
    answer = rpc(app, "tools/call", {"name": "no_such_tool", "arguments": {}})
    assert answer["error"] == {"code": -32602, "message": "unknown tool: 'no_such_tool'"}


def test_invalid_arguments_are_a_tool_result_with_is_error(app):
    answer = rpc(app, "tools/call", {"name": "calculator", "arguments": {"expr": "1"}})
    assert answer["result"]["isError"] is True
    assert "invalid arguments" in answer["result"]["content"][0]["text"]


def test_health_names_no_database_user(app):
    response = httpx.get(f"{app.base_url}/mcp/health", timeout=60)
    providers = response.json()["mcp"]["providers"]
    pg = app.services.pg
    assert providers["docs_db"]["detail"] == f"database {pg.database!r} at {pg.host}:{pg.port}"
    assert f"{pg.user}@" not in response.text
    assert providers["down_db"]["detail"].startswith("cannot connect to postgresql://127.0.0.1:")


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[::ffff:0:127.0.0.1]", "[64:ff9b:1::7f00:1]"])
async def test_ipv6_forms_of_loopback_are_refused(app, host):
    port = httpx.URL(app.services.http.url).port
    is_error, text = await call(app, "web_fetch", {"url": f"http://{host}:{port}/page.html"})
    assert is_error, text
    assert "is not public" in text


def test_a_batch_is_an_invalid_request(app):
    batch = [{"jsonrpc": "2.0", "id": n, "method": "tools/list"} for n in (1, 2)]
    response = httpx.post(app.mcp_url, json=batch, headers=HEADERS, timeout=60)
    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Invalid Request: JSON-RPC batches are not supported"},
    }


def test_get_is_method_not_allowed(app):
    headers = {**HEADERS, "Accept": "text/event-stream"}
    with httpx.stream("GET", app.mcp_url, headers=headers, timeout=30) as response:
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
