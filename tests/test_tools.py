"""Tools and ToolService against real services: every failure is a ToolResult."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from mcp_fixtures import (  # noqa: F401
    DOCUMENTS,
    REMOTE_MCP_KEY,
    ServerThread,
    free_port,
    http_server,
    postgres,
    remote_mcp_app,
    remote_mcp_server,
)
from sql_roles import reader_role, require_superuser  # noqa: F401

from aim_ray.config import mcp_tools as mcp_config
from aim_ray.config.mcp import MCPConfig
from aim_ray.config.mcp_providers import ChromaSettings
from aim_ray.mcp.backends.html import html_to_text
from aim_ray.mcp.context.chroma import ChromaProvider
from aim_ray.mcp.tools import base as tools_module
from aim_ray.mcp.tools.base import ToolError
from aim_ray.mcp.tools.calculator import Calculator
from aim_ray.mcp.tools.remote import MCPClientError, MCPTimeoutError, connect
from aim_ray.mcp.tools.service import ToolService

SECRET = "tool-secret-0a9b8c7d6e5f"


def tools(*entries: dict, providers: list[dict] | None = None) -> ToolService:
    return ToolService(MCPConfig.model_validate({"tools": entries, "providers": providers or []}))


async def call(service: ToolService, name: str, arguments=None):
    return await service.call_tool(name, arguments)


# -- calculator -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("17 * 23", "391"),
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("2 ** 10", "1024"),
        ("-(3 - 5)", "2"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(pi, 3)", "3.142"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** -1", "0.5"),
    ],
)
async def test_calculator(expression, expected):
    result = await call(tools({"name": "calculator"}), "calculator", {"expression": expression})
    assert (result.status, result.content) == ("ok", expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("9 ** 9 ** 9", "exponent larger than 1000"),
        ("10 ** 400", "result too large"),
        ("2.0 ** 1000 * 2.0 ** 100", "result too large"),
        ("sqrt(-1)", "math error"),
        ("1 +", "not a valid arithmetic expression"),
        ("e(1)", "only numbers"),
        ("sin(1, 2)", "takes one argument"),
        ("(1).real", "only numbers"),
    ],
)
async def test_calculator_refusals(expression, message):
    result = await call(tools({"name": "calculator"}), "calculator", {"expression": expression})
    assert result.status == "error" and message in result.content


@pytest.mark.parametrize(
    "expression", ["__import__('os').system('id')", "open('/etc/passwd')", "[1] * 10", "x" * 201]
)
async def test_calculator_schema_rejects_code(expression):
    result = await call(tools({"name": "calculator"}), "calculator", {"expression": expression})
    assert result.status == "error"
    assert result.content.startswith("invalid arguments: expression: String should")


def test_calculator_walks_only_arithmetic():
    calculator = Calculator(max_exponent=10)
    for code in [
        "__import__('os')",
        "(lambda: 1)()",
        "[x for x in range(9)]",
        "True + 1",
        "'a' * 3",
    ]:
        with pytest.raises(ToolError):
            calculator.evaluate(code)


async def test_schemas_are_tight():
    service = tools(
        {"name": "calculator", "parameters": {"expression": {"description": "Math only."}}},
        {"name": "web_search", "config": {"endpoint": "https://s.example", "max_results": 3}},
    )
    calculator, search = await service.list_tools()
    assert calculator.input_schema == {
        "additionalProperties": False,
        "properties": {
            "expression": {
                "description": "Math only.",
                "pattern": "^[0-9a-z+*/() .,%-]{1,200}$",
                "type": "string",
            }
        },
        "required": ["expression"],
        "type": "object",
    }
    assert search.input_schema["properties"]["max_results"]["maximum"] == 3


def test_config_argument_lists_match_the_schemas():
    pairs = [
        (mcp_config.CalculatorToolConfig, tools_module.CalculatorArguments),
        (mcp_config.FileReaderToolConfig, tools_module.FileReaderArguments),
        (mcp_config.SqlQueryToolConfig, tools_module.SqlQueryArguments),
        (mcp_config.VectorSearchToolConfig, tools_module.VectorSearchArguments),
        (mcp_config.WebFetchToolConfig, tools_module.WebFetchArguments),
        (mcp_config.WebSearchToolConfig, tools_module.WebSearchArguments),
    ]
    for config, arguments in pairs:
        schema = arguments.model_json_schema()["properties"]
        assert {name: prop["type"] for name, prop in schema.items()} == config.ARGUMENTS


# -- ToolService ----------------------------------------------------------------------------


async def test_unknown_tool():
    result = await call(tools({"name": "calculator"}), "nope", {})
    assert result.model_dump(exclude={"latency_ms"}) == {
        "tool": "nope",
        "status": "error",
        "content": "unknown tool 'nope'",
        "is_error": True,
        "structured": None,
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "invalid arguments: expression: Field required"),
        ({"expression": 5}, "invalid arguments: expression: Input should be a valid string"),
        (
            {"expression": "1", "extra": 1},
            "invalid arguments: extra: Extra inputs are not permitted",
        ),
        ([1, 2], "arguments must be a JSON object"),
        ("1+1", "arguments must be a JSON object"),
    ],
)
async def test_malformed_arguments(arguments, message):
    result = await call(tools({"name": "calculator"}), "calculator", arguments)
    assert (result.status, result.content) == ("error", message)


async def test_rate_limit_per_tool():
    service = tools(
        {"name": "calculator", "rate_limit": {"requests": 2, "window": "300ms"}},
        {"name": "calc2", "type": "calculator"},
    )
    statuses = [(await call(service, "calculator", {"expression": "1"})).status for _ in range(3)]
    assert statuses == ["ok", "ok", "rate_limited"]
    limited = await call(service, "calculator", {"expression": "1"})
    assert limited.is_error and limited.content.startswith("rate limit exceeded; retry in")
    assert (await call(service, "calc2", {"expression": "1"})).status == "ok"
    await asyncio.sleep(0.35)
    assert (await call(service, "calculator", {"expression": "1"})).status == "ok"


async def test_disabled_tools_are_absent():
    service = tools({"name": "calculator", "enabled": False})
    assert await service.list_tools() == []
    assert (await call(service, "calculator", {"expression": "1"})).status == "error"


# -- file_reader ----------------------------------------------------------------------------


@pytest.fixture
def reader(tmp_path) -> ToolService:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_text("hello world")
    (root / "sub" / "deep.md").write_text("# deep")
    (root / "big.txt").write_text("x" * 2000)
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "secret.txt").write_text("outside")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "linkdir").symlink_to(tmp_path)
    (root / "inner-link.txt").symlink_to(root / "hello.txt")
    return tools(
        {"name": "file_reader", "config": {"allowedPaths": [str(root)], "max_bytes": 1000}}
    )


@pytest.mark.parametrize(
    ("path", "content"),
    [("hello.txt", "hello world"), ("sub/deep.md", "# deep"), ("./sub/deep.md", "# deep")],
)
async def test_file_reader_reads_inside_the_roots(reader, path, content):
    result = await call(reader, "file_reader", {"path": path})
    assert (result.status, result.content) == ("ok", content)
    # The root's own name and the path inside it: no host path goes back to the client.
    assert result.structured["path"] == "data/" + path.removeprefix("./")


async def test_file_reader_absolute_path_inside(reader, tmp_path):
    result = await call(reader, "file_reader", {"path": str(tmp_path / "data" / "hello.txt")})
    assert result.content == "hello world"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../secret.txt", "'..' is not allowed"),
        ("sub/../../secret.txt", "'..' is not allowed"),
        ("/etc/passwd", "outside the allowed directories"),
        ("link.txt", "outside the allowed directories"),
        ("linkdir/secret.txt", "outside the allowed directories"),
        ("inner-link.txt", "symlinks are not followed"),  # inside, but still a symlink
        ("big.txt", "2000 bytes, over the 1000 limit"),
        ("blob.bin", "binary file"),
        ("latin1.txt", "not UTF-8 text"),
        ("missing.txt", "not found"),
        ("sub", "not a regular file"),
    ],
)
async def test_file_reader_refusals(reader, tmp_path, path, message):
    result = await call(reader, "file_reader", {"path": path})
    assert result.status == "error" and message in result.content, result.content
    assert str(tmp_path) not in result.content  # where a symlink points is not revealed


async def test_file_reader_absolute_path_outside(reader, tmp_path):
    result = await call(reader, "file_reader", {"path": str(tmp_path / "secret.txt")})
    assert "outside the allowed directories" in result.content


# -- sql_query ------------------------------------------------------------------------------


def sql_tool(pg, user: str | None = None, **settings) -> ToolService:
    connection = {**pg.connection(), **({"user": user} if user else {})}
    providers = [
        {
            "name": "db",
            "type": "postgresql",
            "config": {**connection, "table": f"{pg.schema}.docs", "columns": ["body"]},
        }
    ]
    # The test login is a superuser: the tests of the role check turn the flag off.
    config = {
        "provider": "db",
        "max_rows": 10,
        "statement_timeout_ms": 300,
        "allow_privileged_role": user is None,
        **settings,
    }
    return tools({"name": "sql_query", "timeout_s": 10, "config": config}, providers=providers)


@pytest.mark.postgres
async def test_sql_select(postgres):  # noqa: F811
    service = sql_tool(postgres)
    result = await call(
        service, "sql_query", {"query": f"SELECT id, title FROM {postgres.schema}.docs ORDER BY id"}
    )
    assert result.status == "ok"
    assert result.structured == {
        "columns": ["id", "title"],
        "rows": [[int(i), title] for i, title, _ in DOCUMENTS],
        "row_count": 4,
        "truncated": False,
    }
    assert json.loads(result.content) == result.structured
    await service.close()


@pytest.mark.postgres
async def test_sql_row_cap(postgres):  # noqa: F811
    service = sql_tool(postgres)
    result = await call(service, "sql_query", {"query": f"SELECT n FROM {postgres.schema}.numbers"})
    assert result.structured["row_count"] == 10 and result.structured["truncated"]
    assert len(result.structured["rows"]) == 10
    assert "more than max_rows=10 rows" in result.content
    await service.close()


@pytest.mark.postgres
async def test_sql_statement_timeout(postgres):  # noqa: F811
    service = sql_tool(postgres)
    query = "SELECT count(*) FROM generate_series(1, 1000000000)"
    result = await call(service, "sql_query", {"query": query})
    assert result.status == "error"
    assert "canceling statement due to statement timeout" in result.content
    assert result.latency_ms < 3000
    await service.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("INSERT INTO {s}.docs VALUES (9, 'x', 'y')", "is allowed, not INSERT"),
        ("DROP TABLE {s}.docs", "is allowed, not DROP"),
        ("  -- comment\n DELETE FROM {s}.docs", "is allowed, not DELETE"),
        (
            "WITH gone AS (DELETE FROM {s}.docs RETURNING *) SELECT * FROM gone",
            "data-modifying statements are not allowed (DELETE)",
        ),
        ("SELECT * INTO {s}.copy FROM {s}.docs", "SELECT INTO is not allowed"),
        ("SELECT 1; DROP TABLE {s}.docs", "got 2 statements"),
        ("SELECT 1; SELECT 2", "got 2 statements"),
        ("SELECT nextval('x')", "function nextval() is not allowed"),
        ("SELECT pg_sleep(5)", "function pg_sleep() is not allowed"),
        ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file() is not allowed"),
        ("SELECT * FROM pg_authid", "reading pg_authid is not allowed"),
        ("SELECT * FROM {s}.docs FOR UPDATE", "locking clauses"),
        ("SELECT * FROM missing_table", 'relation "missing_table" does not exist'),
    ],
)
async def test_sql_writes_and_multiple_statements_are_rejected(postgres, query, message):  # noqa: F811
    service = sql_tool(postgres)
    result = await call(service, "sql_query", {"query": query.format(s=postgres.schema)})
    assert result.status == "error" and message in result.content, result.content
    count = await call(
        service, "sql_query", {"query": f"SELECT count(*) FROM {postgres.schema}.docs"}
    )
    assert count.structured["rows"] == [[4]]
    await service.close()


@pytest.mark.postgres
async def test_sql_tool_health(postgres):  # noqa: F811
    service = sql_tool(postgres)
    health = (await service.health()).model_dump(exclude_none=True)
    assert health["status"] == "healthy" and health["tools"]["sql_query"]["status"] == "up"
    await service.close()


@pytest.mark.postgres
async def test_sql_superuser_without_the_flag_is_down_and_refuses(postgres):  # noqa: F811
    service = sql_tool(await require_superuser(postgres), allow_privileged_role=False)
    result = await call(service, "sql_query", {"query": "SELECT 1"})
    assert result.status == "error"
    assert f"sql_query is disabled: role '{postgres.user}' is a superuser" in result.content
    assert "allow_privileged_role: true" in result.content
    health = (await service.health()).model_dump(exclude_none=True)
    assert health["status"] == "unhealthy"
    assert health["tools"]["sql_query"]["status"] == "down"
    assert "is a superuser" in health["tools"]["sql_query"]["detail"]
    await service.close()


@pytest.mark.postgres
async def test_sql_member_of_a_server_files_role_is_refused(postgres, reader_role):  # noqa: F811
    connection = await postgres.connect()
    await connection.execute(f"GRANT pg_read_server_files TO {reader_role}")
    try:
        service = sql_tool(postgres, user=reader_role)
        result = await call(service, "sql_query", {"query": "SELECT 1"})
    finally:
        await connection.execute(f"REVOKE pg_read_server_files FROM {reader_role}")
        await connection.close()
    assert result.status == "error"
    assert f"role '{reader_role}' is a member of pg_read_server_files" in result.content
    # Revoked: the next health check sees it and the tool is up again, without a restart.
    health = (await service.health()).model_dump(exclude_none=True)
    assert health["tools"]["sql_query"]["status"] == "up"
    assert (await call(service, "sql_query", {"query": "SELECT 1"})).status == "ok"
    await service.close()


@pytest.mark.postgres
async def test_sql_restricted_role_runs_ordinary_queries(postgres, reader_role):  # noqa: F811
    service = sql_tool(postgres, user=reader_role)
    query = f"SELECT current_user AS who, count(*) AS n FROM {postgres.schema}.docs"
    result = await call(service, "sql_query", {"query": query})
    assert result.status == "ok", result.content
    assert result.structured["rows"] == [[reader_role, 4]]
    health = (await service.health()).model_dump(exclude_none=True)
    assert health["tools"]["sql_query"]["status"] == "up"
    await service.close()


@pytest.mark.postgres
async def test_sql_set_role_runs_each_query_as_that_role(postgres, reader_role):  # noqa: F811
    # A superuser login, but queries run as the reader: the check and the query agree.
    service = sql_tool(postgres, set_role=reader_role, allow_privileged_role=False)
    result = await call(service, "sql_query", {"query": "SELECT current_user, session_user"})
    assert result.status == "ok", result.content
    assert result.structured["rows"] == [[reader_role, postgres.user]]
    denied = await call(service, "sql_query", {"query": "SELECT * FROM pg_stat_file('/')"})
    assert denied.status == "error"
    await service.close()


@pytest.mark.postgres
async def test_sql_huge_cell_comes_back_cut_and_small(postgres):  # noqa: F811
    service = sql_tool(postgres, max_cell_bytes=1000, statement_timeout_ms=10_000)
    query = "SELECT 1 AS n, repeat('x', 100000000) AS big, decode(repeat('ab', 5000), 'hex') AS raw"
    result = await call(service, "sql_query", {"query": query})
    assert result.status == "ok", result.content[:200]
    body = result.structured
    assert body["truncated"] and "2 cell(s) cut to max_cell_bytes=1000" in body["notice"]
    n, big, raw = body["rows"][0]
    assert n == 1 and big == "x" * 1000 and len(raw) <= 1000
    assert len(result.content) < 4000
    await service.close()


@pytest.mark.postgres
async def test_sql_result_bytes_are_capped(postgres):  # noqa: F811
    service = sql_tool(postgres, max_rows=10_000, max_result_bytes=2048, max_cell_bytes=512)
    query = "SELECT n, repeat('y', 100) AS pad FROM generate_series(1, 5000) AS n"
    result = await call(service, "sql_query", {"query": query})
    body = result.structured
    assert body["truncated"] and "result larger than max_result_bytes=2048" in body["notice"]
    assert 0 < body["row_count"] < 30
    assert body["rows"][0] == [1, "y" * 100]
    assert len(json.dumps(body["rows"])) <= 2048
    await service.close()


async def test_sql_down_database_does_not_stop_other_tools(monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRET_SQL_DOWN_PASSWORD", SECRET)
    connection = {
        "host": "127.0.0.1",
        "port": free_port(),
        "database": "test",
        "credentials": {"secret_name": "sql-down"},
    }
    service = tools(
        {"name": "sql_query", "config": {"connection": connection}}, {"name": "calculator"}
    )
    result = await call(service, "sql_query", {"query": "SELECT 1"})
    assert result.status == "error" and "cannot connect to postgresql://" in result.content
    assert (await call(service, "calculator", {"expression": "2*3"})).content == "6"
    health = (await service.health()).model_dump(exclude_none=True)
    assert health["status"] == "degraded"
    assert health["tools"]["sql_query"]["status"] == "down"
    assert SECRET not in json.dumps(health) + result.model_dump_json()


# -- vector_search --------------------------------------------------------------------------


async def test_vector_search(tmp_path):
    settings = ChromaSettings(path=str(tmp_path), collection="docs")
    await ChromaProvider("seed", settings, 30).add_documents(
        [d[0] for d in DOCUMENTS], [d[2] for d in DOCUMENTS]
    )
    service = tools(
        {
            "name": "vector_search",
            "timeout_s": 30,
            "config": {"chroma": settings.model_dump(exclude_none=True), "n_results": 2},
        }
    )
    result = await call(service, "vector_search", {"query": "puppies", "n_results": 2})
    assert result.status == "ok"
    assert [r["id"] for r in result.structured["results"]] == ["4", "1"]
    too_many = await call(service, "vector_search", {"query": "x", "n_results": 1000})
    assert "less than or equal to 100" in too_many.content


# -- web_fetch / web_search -----------------------------------------------------------------


def fetcher(**config) -> ToolService:
    return tools({"name": "web_fetch", "timeout_s": 5, "config": config})


async def test_web_fetch_extracts_text(http_server):  # noqa: F811
    result = await call(
        fetcher(allow_private=True), "web_fetch", {"url": f"{http_server.url}/page.html"}
    )
    assert result.status == "ok"
    assert result.content == "Test Page\n\nHello MCP\nFirst paragraph & more.\nSecond paragraph."
    assert result.structured["title"] == "Test Page"


async def test_web_fetch_refuses_private_addresses_by_default(http_server):  # noqa: F811
    result = await call(fetcher(), "web_fetch", {"url": f"{http_server.url}/page.html"})
    assert result.status == "error" and "127.0.0.1 is not public" in result.content


async def test_web_fetch_redirect_to_metadata_service(http_server):  # noqa: F811
    service = fetcher(allow_networks=["127.0.0.1/32"])
    url = f"{http_server.url}/redirect?to=http://169.254.169.254/latest/meta-data/"
    result = await call(service, "web_fetch", {"url": url})
    assert "169.254.169.254 is not public" in result.content


async def test_web_fetch_domain_allowlist(http_server):  # noqa: F811
    service = fetcher(allow_private=True, allowedDomains=["example.com"])
    result = await call(service, "web_fetch", {"url": f"{http_server.url}/page.html"})
    assert "host '127.0.0.1' is not in the allowed domains" in result.content


async def test_web_fetch_truncates_large_pages(http_server):  # noqa: F811
    service = fetcher(allow_private=True, max_bytes=10_000, max_chars=500)
    result = await call(service, "web_fetch", {"url": f"{http_server.url}/big"})
    assert result.status == "ok" and result.content.endswith("\n[truncated]")
    assert len(result.content) == 500 + len("\n[truncated]")


async def test_web_fetch_refuses_binary(http_server):  # noqa: F811
    result = await call(
        fetcher(allow_private=True), "web_fetch", {"url": f"{http_server.url}/binary"}
    )
    assert "unsupported content type 'image/png'" in result.content


async def test_web_fetch_timeout(http_server):  # noqa: F811
    service = tools({"name": "web_fetch", "timeout_s": 0.5, "config": {"allow_private": True}})
    result = await call(service, "web_fetch", {"url": f"{http_server.url}/slow"})
    assert (result.status, result.content) == ("timeout", "web_fetch did not finish within 0.5s")


async def test_web_fetch_schema_rejects_other_schemes():
    result = await call(fetcher(), "web_fetch", {"url": "file:///etc/passwd"})
    assert result.content.startswith("invalid arguments: url: String should match pattern")


async def test_web_search_searxng(http_server):  # noqa: F811
    service = tools(
        {
            "name": "web_search",
            "config": {
                "endpoint": f"{http_server.url}/searx",
                "allow_private": True,
                "max_results": 3,
            },
        }
    )
    result = await call(service, "web_search", {"query": "mi300x"})
    assert result.status == "ok"
    assert [r["url"] for r in result.structured["results"]] == [
        "https://example.org/1",
        "https://example.org/2",
        "https://example.org/3",
    ]
    assert result.content.startswith("1. Result 1 for mi300x\n   https://example.org/1\n   S1")
    two = await call(service, "web_search", {"query": "x", "max_results": 2})
    assert len(two.structured["results"]) == 2


async def test_web_search_endpoint_on_loopback_needs_allow_private(http_server):  # noqa: F811
    service = tools({"name": "web_search", "config": {"endpoint": f"{http_server.url}/searx"}})
    result = await call(service, "web_search", {"query": "x"})
    assert "is not public" in result.content


def test_html_to_text():
    title, text = html_to_text("<title>T</title><div>a<br>b</div><script>x()</script><p>c</p>")
    assert (title, text) == ("T", "a\nb\nc")


# -- remote_mcp -----------------------------------------------------------------------------


def remote(server, **config) -> dict:
    settings = {
        "url": f"{server.url}/mcp",
        "allow_private": True,
        "secret_headers": {"X-Api-Key": {"secret_name": "remote-mcp"}},
        **config,
    }
    return {"name": "docs", "type": "remote_mcp", "timeout_s": 5, "config": settings}


@pytest.fixture
def remote_key(monkeypatch):
    monkeypatch.setenv("AIM_RAY_SECRET_REMOTE_MCP_TOKEN", REMOTE_MCP_KEY)


async def test_remote_tools_are_listed_and_called(remote_mcp_server, remote_key):  # noqa: F811
    service = tools(remote(remote_mcp_server, prefix="kb"), {"name": "calculator"})
    specs = {spec.name: spec for spec in await service.list_tools()}
    assert set(specs) == {"calculator", "kb__add", "kb__echo", "kb__fail", "kb__nap"}
    assert specs["kb__add"].source == "remote_mcp:docs"
    assert specs["kb__add"].input_schema["required"] == ["a", "b"]
    result = await call(service, "kb__add", {"a": 2, "b": 40})
    assert (result.status, result.content, result.structured) == ("ok", "42", {"result": 42})
    concurrent = await asyncio.gather(
        *(call(service, "kb__echo", {"text": f"t{n}"}) for n in range(5))
    )
    assert [r.content for r in concurrent] == [f"t{n}" for n in range(5)]
    assert (await service.health()).remote_servers["docs"].status == "up"
    await service.close()


async def test_remote_errors_come_back_as_results(remote_mcp_server, remote_key):  # noqa: F811
    entry = remote(remote_mcp_server, include=["fail", "nap", "add"])
    entry["timeout_s"] = 1
    service = tools(entry)
    failed = await call(service, "docs__fail", {})
    assert failed.status == "error" and failed.is_error
    assert (await call(service, "docs__echo", {"text": "x"})).content == "unknown tool docs__echo"
    bad = await call(service, "docs__add", {"a": "two"})
    assert bad.status == "error"
    slow = await call(service, "docs__nap", {"seconds": 30})
    assert slow.status == "timeout"
    # The session survives a timed-out call.
    assert (await call(service, "docs__add", {"a": 1, "b": 1})).content == "2"
    await service.close()


async def test_remote_without_the_key_is_down_and_the_rest_works(remote_mcp_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AIM_RAY_SECRET_REMOTE_MCP_TOKEN", SECRET)
    service = tools(remote(remote_mcp_server), {"name": "calculator"})
    assert [s.name for s in await service.list_tools()] == ["calculator"]
    result = await call(service, "docs__add", {"a": 1, "b": 2})
    assert result.status == "error"
    assert "cannot connect to remote MCP server 'docs'" in result.content
    assert result.latency_ms < 50  # no reconnect attempt right after a failure
    health = (await service.health()).model_dump(exclude_none=True)
    assert health["status"] == "degraded" and health["remote_servers"]["docs"]["status"] == "down"
    assert (await call(service, "calculator", {"expression": "1+1"})).content == "2"
    assert SECRET not in json.dumps(health) + result.model_dump_json()
    await service.close()


async def test_remote_on_loopback_needs_allow_private(remote_mcp_server, remote_key):  # noqa: F811
    service = tools(remote(remote_mcp_server, allow_private=False))
    result = await call(service, "docs__add", {"a": 1, "b": 2})
    assert "127.0.0.1 is not public" in result.content


async def test_remote_server_restart_reconnects(remote_key):
    port = free_port()
    server = ServerThread(remote_mcp_app(), port=port).start()
    service = tools(
        {
            "name": "docs",
            "type": "remote_mcp",
            "timeout_s": 5,
            "config": {
                "url": f"http://127.0.0.1:{port}/mcp",
                "allow_private": True,
                "list_ttl_s": 0.1,
            },
        }
    )
    assert (await call(service, "docs__add", {"a": 1, "b": 2})).content == "3"
    server.stop()
    down = await call(service, "docs__add", {"a": 1, "b": 2})
    assert down.status == "error"
    server = ServerThread(remote_mcp_app(), port=port).start()
    await asyncio.sleep(0.2)  # past the retry pause that follows a failure
    try:
        assert (await call(service, "docs__add", {"a": 2, "b": 2})).content == "4"
    finally:
        await service.close()
        server.stop()


async def test_remote_rate_limit_is_shared_by_its_tools(remote_mcp_server, remote_key):  # noqa: F811
    entry = remote(remote_mcp_server)
    entry["rate_limit"] = {"requests": 2, "window": "1m"}
    service = tools(entry)
    first = await call(service, "docs__add", {"a": 1, "b": 1})
    second = await call(service, "docs__echo", {"text": "x"})
    third = await call(service, "docs__add", {"a": 1, "b": 1})
    assert [first.status, second.status, third.status] == ["ok", "ok", "rate_limited"]
    await service.close()


# -- a one-off session (what `aim-ray mcp list-tools/call` needs) ----------------------------


KEY = {"X-Api-Key": REMOTE_MCP_KEY}


async def test_connect_lists_and_calls(remote_mcp_server):  # noqa: F811
    async with connect(f"{remote_mcp_server.url}/mcp", KEY, timeout_s=10) as session:
        assert {t.name for t in await session.list_tools()} == {"add", "echo", "fail", "nap"}
        result = await session.call_tool("add", {"a": 2, "b": 40})
        assert not result.is_error and result.structured_content == {"result": 42}
        failed = await session.call_tool("fail")
        assert failed.is_error  # the tool's own error is a result, not an exception


async def test_connect_unknown_tool_names_the_known_ones(remote_mcp_server):  # noqa: F811
    with pytest.raises(MCPClientError, match=r"unknown tool 'subtract' .*add, echo, fail, nap"):
        async with connect(f"{remote_mcp_server.url}/mcp", KEY, timeout_s=10) as session:
            await session.call_tool("subtract", {})


@pytest.mark.parametrize(
    ("path", "headers", "message"),
    [
        ("/mcp", {}, "answered HTTP 401 Unauthorized"),
        ("/elsewhere", KEY, "HTTP 404 Not Found (is this the MCP endpoint"),
    ],
)
async def test_connect_http_errors_are_one_line(remote_mcp_server, path, headers, message):  # noqa: F811
    with pytest.raises(MCPClientError, match=re.escape(message)) as caught:
        async with connect(f"{remote_mcp_server.url}{path}", headers, timeout_s=10) as session:
            await session.list_tools()
    assert "\n" not in str(caught.value)


async def test_connect_refused_and_not_a_url():
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(MCPClientError, match=f"cannot connect to {url}: Connection refused"):
        async with connect(url, timeout_s=10) as session:
            await session.list_tools()
    with pytest.raises(MCPClientError, match="is not an http"):
        async with connect("127.0.0.1:8000/mcp") as session:
            await session.list_tools()


async def test_connect_timeout(remote_mcp_server):  # noqa: F811
    with pytest.raises(MCPTimeoutError, match=r"no answer within 0\.5s"):
        async with connect(f"{remote_mcp_server.url}/mcp", KEY, timeout_s=0.5) as session:
            await session.call_tool("nap", {"seconds": 10})
