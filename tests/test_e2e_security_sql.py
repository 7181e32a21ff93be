"""End to end: ``sql_query`` hardening through ``/mcp`` and through chat.

The session app (tests/conftest.py) logs in to PostgreSQL as a superuser: ``sql_query``
has ``allow_privileged_role: true``, ``sql_superuser`` has not (so it is down), and
``sql_reader`` logs in as a role with SELECT on the test schema only (``reader_role``).
"""

from __future__ import annotations

import json

import httpx
import pytest
from sql_roles import reader_role  # noqa: F401
from test_e2e_mcp import mcp_client

pytestmark = pytest.mark.slow

PASSWD_LINE = "root:x:0:0"


async def call(app, name: str, query: str) -> tuple[bool, str]:
    async with mcp_client(app, timeout_s=120) as client:
        result = await client.call_tool(name, {"query": query})
    return result.is_error, result.content[0].text


def tools_health(app) -> dict:
    return httpx.get(f"{app.base_url}/mcp/health", timeout=60).json()["mcp"]["tools"]


def forced_chat(app, tool: str, question: str) -> dict:
    response = app.openai().chat.completions.create(
        model=app.model,
        temperature=0,
        max_tokens=300,
        messages=[{"role": "user", "content": question}],
        tools=[{"type": "function", "function": {"name": tool}}],
        tool_choice={"type": "function", "function": {"name": tool}},
    )
    return response.to_dict()


async def test_a_superuser_tool_without_the_flag_is_down_and_refuses(app):
    health = tools_health(app)["sql_superuser"]
    assert health["status"] == "down"
    assert "role 'postgres' is a superuser" in health["detail"]
    is_error, text = await call(app, "sql_superuser", "SELECT 1")
    assert is_error
    assert "sql_superuser is disabled: role 'postgres' is a superuser" in text
    assert "Traceback" not in text


def test_chat_with_the_down_tool_gets_the_refusal(app):
    body = forced_chat(app, "sql_superuser", "Run the SQL query: SELECT 1")
    [tool_call] = body["mcp"]["tool_calls"]
    assert tool_call["name"] == "sql_superuser"
    assert tool_call["status"] == "error"
    assert "is a superuser" in tool_call["content"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file() is not allowed"),
        ("SELECT pg_read_binary_file('/etc/passwd')", "pg_read_binary_file() is not allowed"),
        ("SELECT * FROM pg_ls_dir('/')", "function pg_ls_dir() is not allowed"),
        ("SELECT lo_import('/etc/passwd')", "function lo_import() is not allowed"),
        ("SELECT lo_export(lo_from_bytea(0, 'x'), '/tmp/aimray-x')", "lo_export() is not"),
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
            "function pg_terminate_backend() is not allowed",
        ),
        ("SELECT rolname, rolpassword FROM pg_authid", "reading pg_authid is not allowed"),
        ("SELECT * FROM pg_shadow", "reading pg_shadow is not allowed"),
        (
            "WITH gone AS (DELETE FROM {s}.docs RETURNING *) SELECT count(*) FROM gone",
            "data-modifying statements are not allowed (DELETE)",
        ),
        ("SELECT * INTO {s}.stolen FROM {s}.docs", "SELECT INTO is not allowed"),
        ("SELECT set_config('role', 'none', false)", "function set_config() is not allowed"),
    ],
)
async def test_the_privileged_tool_still_refuses_what_a_role_cannot_stop(app, query, message):
    schema = app.services.pg.schema
    is_error, text = await call(app, "sql_query", query.format(s=schema))
    assert is_error, text
    assert message in text
    assert PASSWD_LINE not in text
    is_error, text = await call(app, "sql_query", f"SELECT count(*) FROM {schema}.docs")
    assert not is_error and json.loads(text)["rows"] == [[4]]


def test_chat_cannot_read_server_files_through_sql(app):
    body = forced_chat(
        app, "sql_query", "Run SELECT pg_read_file('/etc/passwd') and show me the file."
    )
    calls = body["mcp"]["tool_calls"]
    assert calls and all(call["name"] == "sql_query" for call in calls)
    assert PASSWD_LINE not in json.dumps(body)


async def test_a_restricted_role_runs_ordinary_queries(app, reader_role):  # noqa: F811
    schema = app.services.pg.schema
    query = f"SELECT current_user AS who, title FROM {schema}.docs ORDER BY id LIMIT 2"
    is_error, text = await call(app, "sql_reader", query)
    assert not is_error, text
    body = json.loads(text)
    assert body["columns"] == ["who", "title"]
    assert [row[0] for row in body["rows"]] == [reader_role, reader_role]
    assert body["truncated"] is False
    assert tools_health(app)["sql_reader"]["status"] == "up"
    # The parser refuses whatever the role could do.
    is_error, text = await call(app, "sql_reader", "SELECT pg_sleep(30)")
    assert is_error and "function pg_sleep() is not allowed" in text


async def test_a_huge_cell_comes_back_truncated_and_small(app):
    is_error, text = await call(app, "sql_query", "SELECT repeat('x', 100000000) AS big")
    assert not is_error, text[:300]
    assert len(text) < 100_000
    body = json.loads(text)
    assert body["truncated"] is True
    assert "1 cell(s) cut to max_cell_bytes=65536" in body["notice"]
    assert body["rows"] == [["x" * 65536]]
