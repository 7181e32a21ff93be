"""What SQL the ``sql_query`` tool lets through, decided on PostgreSQL's own parse tree.

``check_read_only_sql`` parses the text with libpg_query (``pglast``), the parser of the
server itself, and admits exactly one SELECT / WITH / VALUES / TABLE statement, or an
EXPLAIN of one. Anywhere in the tree it refuses data-modifying statements (a DELETE in a
CTE), ``SELECT INTO``, locking clauses, functions of the denied families (server files,
large objects, signals and admin, ``dblink``, ``set_config``, sleeps, advisory locks,
functions that run a query given as a string) and credential or server-config catalogs.

This is defence in depth beside the role check, the READ ONLY transaction and the
statement timeout: a denylist cannot know the functions a database defines itself.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pglast.parser import ParseError, parse_sql_json

from aim_ray.errors import AimRayError

DENIED_FUNCTIONS = frozenset(
    {
        # server files and logs
        "pg_stat_file",
        "pg_current_logfile",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_show_all_file_settings",
        # large objects without the lo_ prefix
        "loread",
        "lowrite",
        # signals, configuration, WAL and backups
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_log_backend_memory_contexts",
        "pg_import_system_collations",
        "pg_notify",
        "set_config",
        # sequence state is not transactional
        "nextval",
        "setval",
        # these run a query given as a string, out of this parser's sight
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "ts_stat",
    }
)
DENIED_PREFIXES = (
    "pg_read_",  # pg_read_file, pg_read_binary_file
    "pg_ls_",  # pg_ls_dir, pg_ls_logdir, pg_ls_waldir, ...
    "pg_file_",  # adminpack's pg_file_write and friends
    "lo_",  # lo_import, lo_export, lo_from_bytea, lo_get, lo_put, lo_unlink, ...
    "dblink",
    "pg_sleep",
    "pg_advisory",
    "pg_try_advisory",
    "pg_backup_",
    "pg_wal_",
    "pg_stat_reset",
    "pg_replication_",
    "pg_create_",
    "pg_drop_",
    "pg_copy_",
    "pg_logical_",
    "binary_upgrade_",
    "table_to_xml",
    "schema_to_xml",
    "database_to_xml",
)
# Catalogs and views holding credentials, connection strings, raw data samples or server
# configuration, refused by name in any schema.
DENIED_RELATIONS = frozenset(
    {
        "pg_authid",
        "pg_shadow",
        "pg_user_mapping",
        "pg_user_mappings",
        "pg_subscription",
        "pg_largeobject",
        "pg_statistic",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
        "pg_file_settings",
        "pg_config",
    }
)
_WRITES = {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}
ALLOWED = "one SELECT, WITH, VALUES, TABLE or EXPLAIN statement"


class SqlRefused(AimRayError):
    """The statement is not one the tool runs; the message says why."""


class CheckedStatement(NamedTuple):
    text: str  # the one statement, without a trailing ``;``
    explain: bool  # an EXPLAIN, which cannot be wrapped in a subquery


def function_denied(name: str) -> bool:
    name = name.lower()
    return name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES)


def check_read_only_sql(sql: str) -> CheckedStatement:
    """The one statement of ``sql`` if the tool may run it, else ``SqlRefused``."""
    try:
        tree = json.loads(parse_sql_json(sql))
    except ParseError as error:
        raise SqlRefused(f"not valid SQL: {error.args[0]}") from None
    statements = tree.get("stmts", [])
    if len(statements) != 1:
        raise SqlRefused(f"only {ALLOWED} is allowed; got {len(statements)} statements")
    raw = statements[0]
    kind, body = next(iter(raw["stmt"].items()))
    explain = kind == "ExplainStmt"
    if explain:
        kind, _ = next(iter(body["query"].items()))
        if kind != "SelectStmt":
            raise SqlRefused(f"EXPLAIN is allowed of a query only, not of {_statement(kind)}")
    elif kind != "SelectStmt":
        raise SqlRefused(f"only {ALLOWED} is allowed, not {_statement(kind)}")
    _walk(body)
    start = raw.get("stmt_location", 0)
    length = raw.get("stmt_len", 0)
    text = sql[start : start + length] if length else sql[start:].rstrip().rstrip(";")
    return CheckedStatement(text, explain)


def _statement(kind: str) -> str:
    return kind.removesuffix("Stmt").upper() or kind


def _walk(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in _WRITES:
            raise SqlRefused(f"data-modifying statements are not allowed ({_statement(key)})")
        if key == "intoClause":
            raise SqlRefused("SELECT INTO is not allowed")
        if key == "lockingClause":
            raise SqlRefused("locking clauses (FOR UPDATE / FOR SHARE) are not allowed")
        if key == "FuncCall":
            name = value["funcname"][-1]["String"]["sval"]
            if function_denied(name):
                raise SqlRefused(f"function {name}() is not allowed")
        if key == "RangeVar" and value.get("relname", "").lower() in DENIED_RELATIONS:
            raise SqlRefused(f"reading {value['relname']} is not allowed")
        _walk(value)
