"""The SQL guard of ``sql_query``: which statements PostgreSQL's parser lets through."""

from __future__ import annotations

import pytest

from aim_ray.mcp.backends.sql_guard import SqlRefused, check_read_only_sql

ALLOWED = [
    "SELECT 1",
    "select title from docs where id = 1;",
    "  -- a comment\n SELECT 1",
    "WITH t AS (SELECT 1 AS a) SELECT a FROM t",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT * FROM t",
    "VALUES (1, 'a'), (2, 'b')",
    "TABLE docs",
    "EXPLAIN SELECT * FROM docs",
    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1",
    "SELECT lower(title), count(*) OVER () FROM docs ORDER BY 1 LIMIT 3",
    "SELECT now(), current_user, repeat('x', 3), json_build_object('a', 1)",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT rolname FROM pg_roles",
    "SELECT 1 -- trailing comment",
]

REFUSED = [
    ("INSERT INTO docs VALUES (1)", "not INSERT"),
    ("UPDATE docs SET title = 'x'", "not UPDATE"),
    ("DELETE FROM docs", "not DELETE"),
    ("DROP TABLE docs", "not DROP"),
    ("COPY docs TO '/tmp/x'", "not COPY"),
    ("SHOW data_directory", "not VARIABLESHOW"),
    ("SET ROLE postgres", "not VARIABLESET"),
    ("DO $$ BEGIN END $$", "not DO"),
    ("SELECT 1; SELECT 2", "got 2 statements"),
    ("SELECT 1; DROP TABLE docs", "got 2 statements"),
    ("", "got 0 statements"),
    ("SELEC 1", 'not valid SQL: syntax error at or near "SELEC"'),
    ("EXPLAIN ANALYZE DELETE FROM docs", "EXPLAIN is allowed of a query only, not of DELETE"),
    ("EXPLAIN INSERT INTO docs VALUES (1)", "not of INSERT"),
    ("WITH gone AS (DELETE FROM docs RETURNING *) SELECT * FROM gone", "(DELETE)"),
    ("WITH x AS (INSERT INTO docs VALUES (1) RETURNING 1) SELECT 1", "(INSERT)"),
    ("WITH x AS (UPDATE docs SET id = 1 RETURNING 1) SELECT 1", "(UPDATE)"),
    ("SELECT * INTO copy FROM docs", "SELECT INTO is not allowed"),
    ("SELECT * FROM docs FOR UPDATE", "locking clauses"),
    ("SELECT * FROM docs FOR SHARE SKIP LOCKED", "locking clauses"),
    ("SELECT * FROM (SELECT * FROM docs FOR KEY SHARE) s", "locking clauses"),
    ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file() is not allowed"),
    ("SELECT pg_catalog.pg_read_binary_file('/etc/passwd')", "pg_read_binary_file()"),
    ("SELECT * FROM pg_ls_dir('/')", "pg_ls_dir()"),
    ("SELECT pg_stat_file('/etc/passwd')", "pg_stat_file()"),
    ("SELECT lo_import('/etc/passwd')", "lo_import()"),
    ("SELECT lo_export(lo_from_bytea(0, 'x'), '/tmp/x')", "lo_export()"),
    ("SELECT LO_FROM_BYTEA(0, 'x')", "lo_from_bytea()"),
    ("SELECT loread(0, 1)", "loread()"),
    ("SELECT pg_terminate_backend(1)", "pg_terminate_backend()"),
    ("SELECT pg_cancel_backend(1)", "pg_cancel_backend()"),
    ("SELECT pg_reload_conf()", "pg_reload_conf()"),
    ("SELECT set_config('role', 'postgres', true)", "set_config()"),
    ("SELECT pg_sleep(10)", "pg_sleep()"),
    ("SELECT pg_sleep_for('1 minute')", "pg_sleep_for()"),
    ("SELECT pg_advisory_lock(1)", "pg_advisory_lock()"),
    ("SELECT pg_try_advisory_xact_lock(1)", "pg_try_advisory_xact_lock()"),
    ("SELECT dblink_exec('x', 'DROP TABLE docs')", "dblink_exec()"),
    ("SELECT * FROM dblink('x', 'SELECT 1') AS t(a int)", "dblink()"),
    ("SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, true, '')", "query_to_xml"),
    ("SELECT nextval('s')", "nextval()"),
    ("SELECT * FROM docs WHERE id = (SELECT pg_read_file('x')::int)", "pg_read_file()"),
    ("SELECT * FROM pg_authid", "reading pg_authid is not allowed"),
    ("SELECT * FROM pg_catalog.pg_shadow", "reading pg_shadow"),
    ('SELECT * FROM "pg_authid"', "reading pg_authid"),
    ("TABLE pg_authid", "reading pg_authid"),
    ("SELECT (SELECT rolpassword FROM pg_authid LIMIT 1)", "reading pg_authid"),
    ("SELECT * FROM pg_user_mappings", "reading pg_user_mappings"),
    ("SELECT * FROM pg_hba_file_rules", "reading pg_hba_file_rules"),
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_read_only_statements_pass(sql):
    assert check_read_only_sql(sql).text.strip()


@pytest.mark.parametrize(("sql", "message"), REFUSED)
def test_other_statements_are_refused(sql, message):
    with pytest.raises(SqlRefused) as refused:
        check_read_only_sql(sql)
    assert message in str(refused.value)


def test_the_statement_loses_its_semicolon_and_explain_is_marked():
    assert check_read_only_sql("SELECT 1 ;  ") == ("SELECT 1 ", False)
    assert check_read_only_sql("EXPLAIN SELECT 1").explain
