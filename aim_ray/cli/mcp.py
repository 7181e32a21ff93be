"""``aim-ray mcp``: write provider and tool entries, load documents, and talk to any MCP server.

Owns the commands: ``validate``/``ingest``/``providers`` (``aim_ray.cli.mcp_data``) check a
file, load documents and count them; ``create-provider``/``create-tool`` build an entry from
the options (``aim_ray.cli.mcp_options``), check it with the schema and print it or add it
to a file (``aim_ray.config.edit``); ``list-tools``/``call`` go through the MCP client the tool
registry also uses (``aim_ray.mcp.tools.remote.connect``) and print what came back. The MCP
SDK and the schema are imported when a command runs, so ``aim-ray --help`` stays fast."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from aim_ray.cli.mcp_data import ingest_command, providers_command, validate_command
from aim_ray.cli.mcp_options import (
    PROVIDER_OPTIONS,
    TOOL_OPTIONS,
    AllowedDomainOption,
    AllowPrivateOption,
    AppNameOption,
    AuthHeaderOption,
    AuthTypeOption,
    ClientTimeoutOption,
    ConfigFileOption,
    DescriptionOption,
    DisabledOption,
    HeaderOption,
    ProviderType,
    SecretKeyOption,
    SecretNameOption,
    ToolType,
    UrlArgument,
    build_entry,
    chroma_option,
    fs_option,
    move_auth,
    move_secret_header,
    option_settings,
    parse_rate_limit,
    pg_option,
    pop_keys,
    rename_keys,
    rest_option,
)
from aim_ray.cli.output import console, user_errors
from aim_ray.config.edit import add_entry, dump_yaml
from aim_ray.errors import AimRayError

mcp_app = typer.Typer(
    help="MCP: write provider and tool entries, load documents, talk to any MCP server.",
    no_args_is_help=True,
)


mcp_app.command("validate")(validate_command)
mcp_app.command("ingest")(ingest_command)
mcp_app.command("providers")(providers_command)


@mcp_app.command("create-provider")
def create_provider(
    name: Annotated[str, typer.Argument(help="The provider's name (unique in the config).")],
    type_: Annotated[ProviderType, typer.Option("--type", help="The kind of provider.")],
    description: DescriptionOption = None,
    timeout: Annotated[
        str | None, typer.Option(help="Retrieval timeout: seconds or '500ms', '5s', ...")
    ] = None,
    disabled: DisabledOption = False,
    host: Annotated[str | None, pg_option("The server (chroma: server mode).")] = None,
    port: Annotated[int | None, pg_option("The port (chroma: server mode).")] = None,
    database: Annotated[str | None, pg_option("The database.")] = None,
    user: Annotated[str | None, pg_option("The user (password: --secret-name).")] = None,
    table: Annotated[str | None, pg_option("Full-text search over this table...")] = None,
    columns: Annotated[str | None, pg_option("...and these columns, e.g. title,body.")] = None,
    query: Annotated[str | None, pg_option("Or this SQL: $1 = the query text, $2 = limit.")] = None,
    id_column: Annotated[str | None, pg_option("The id column.")] = None,
    ssl: Annotated[str | None, pg_option("disable, prefer, require, verify-full, ...")] = None,
    path: Annotated[
        str | None, chroma_option("The embedded store's folder (rest: the URL path).")
    ] = None,
    collection: Annotated[str | None, chroma_option("The collection.")] = None,
    n_results: Annotated[int | None, chroma_option("Results a query (default 5).")] = None,
    base_url: Annotated[str | None, rest_option("e.g. https://api.example.com.")] = None,
    method: Annotated[str | None, rest_option("GET (default) or POST.")] = None,
    query_param: Annotated[str | None, rest_option("The query's parameter (default q).")] = None,
    results_field: Annotated[str | None, rest_option("Dot path of the results list.")] = None,
    content_field: Annotated[str | None, rest_option("Default: content.")] = None,
    id_field: Annotated[str | None, rest_option("Default: id.")] = None,
    title_field: Annotated[str | None, rest_option("Default: title.")] = None,
    allowed_domain: AllowedDomainOption = None,
    allow_private: AllowPrivateOption = False,
    auth_type: AuthTypeOption = None,
    secret_name: SecretNameOption = None,
    secret_key: SecretKeyOption = None,
    auth_header: AuthHeaderOption = None,
    root: Annotated[list[str] | None, fs_option("Repeatable: a folder to read.")] = None,
    pattern: Annotated[
        list[str] | None, fs_option("Repeatable: a glob (default **/*.md, **/*.txt, **/*.rst).")
    ] = None,
    config: ConfigFileOption = None,
    app_name: AppNameOption = None,
) -> None:
    """Write a context provider entry (validated) to stdout or into a config file."""
    kind = type_.value
    given = {
        "--host": host,
        "--port": port,
        "--database": database,
        "--user": user,
        "--table": table,
        "--columns": columns,
        "--query": query,
        "--id-column": id_column,
        "--ssl": ssl,
        "--path": path,
        "--collection": collection,
        "--n-results": n_results,
        "--base-url": base_url,
        "--method": method,
        "--query-param": query_param,
        "--results-field": results_field,
        "--content-field": content_field,
        "--id-field": id_field,
        "--title-field": title_field,
        "--allowed-domain": allowed_domain,
        "--allow-private": allow_private,
        "--auth-type": auth_type.value if auth_type else None,
        "--secret-name": secret_name,
        "--secret-key": secret_key,
        "--auth-header": auth_header,
        "--root": root,
        "--pattern": pattern,
    }
    with user_errors():
        settings = option_settings(given, PROVIDER_OPTIONS[kind], f"--type {kind}")
        if kind == "postgresql":
            if "columns" in settings:
                settings["columns"] = [c.strip() for c in columns.split(",") if c.strip()]
            secret = pop_keys(settings, {"secret_name": "secret_name", "secret_key": "key"})
            if secret:
                settings["credentials"] = secret
        elif kind in ("chroma", "rest"):
            move_auth(settings)
        if kind == "rest":
            rename_keys(settings, allowed_domain="allowed_domains")
        if kind == "filesystem":
            rename_keys(settings, root="roots", pattern="patterns")
        entry = build_entry(name, kind, description, timeout, disabled, settings)
        _emit_entry("providers", entry, config, app_name)


@mcp_app.command("create-tool")
def create_tool(
    name: Annotated[str, typer.Argument(help="The tool's name, as MCP clients see it.")],
    type_: Annotated[
        ToolType | None,
        typer.Option("--type", help="The kind of tool (default: NAME, if it is a kind)."),
    ] = None,
    description: DescriptionOption = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(help="At most N calls a window per replica: 100/1m, 10/30s, 5/1h."),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Call timeout: seconds or '500ms', '10s', ...")
    ] = None,
    disabled: DisabledOption = False,
    allowed_path: Annotated[
        list[str] | None,
        typer.Option("--allowed-path", help="file_reader: repeatable; folders it may read."),
    ] = None,
    max_bytes: Annotated[
        int | None, typer.Option(help="file_reader, web_fetch: the most bytes read.")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(help="sql_query: a postgresql provider; vector_search: a chroma one."),
    ] = None,
    max_rows: Annotated[int | None, typer.Option(help="sql_query: rows returned.")] = None,
    n_results: Annotated[int | None, typer.Option(help="vector_search: default results.")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="web_search: a SearxNG-compatible base URL.")
    ] = None,
    max_results: Annotated[int | None, typer.Option(help="web_search: at most.")] = None,
    url: Annotated[
        str | None, typer.Option(help="remote_mcp: the server, e.g. http://docs:8080/mcp.")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="remote_mcp: tools are served as <prefix>__<tool>.")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="remote_mcp: repeatable; only these remote tools."),
    ] = None,
    import_path: Annotated[
        str | None,
        typer.Option(help="python: package.module:function, a typed function to serve."),
    ] = None,
    allowed_domain: AllowedDomainOption = None,
    allow_private: AllowPrivateOption = False,
    auth_type: AuthTypeOption = None,
    secret_name: SecretNameOption = None,
    secret_key: SecretKeyOption = None,
    auth_header: AuthHeaderOption = None,
    config: ConfigFileOption = None,
    app_name: AppNameOption = None,
) -> None:
    """Write a tool entry (validated) to stdout or into a config file."""
    given = {
        "--import-path": import_path,
        "--allowed-path": allowed_path,
        "--max-bytes": max_bytes,
        "--provider": provider,
        "--max-rows": max_rows,
        "--n-results": n_results,
        "--endpoint": endpoint,
        "--max-results": max_results,
        "--url": url,
        "--prefix": prefix,
        "--include": include,
        "--allowed-domain": allowed_domain,
        "--allow-private": allow_private,
        "--auth-type": auth_type.value if auth_type else None,
        "--secret-name": secret_name,
        "--secret-key": secret_key,
        "--auth-header": auth_header,
    }
    with user_errors():
        if type_ is None and name not in TOOL_OPTIONS:
            raise AimRayError(
                f"set --type: {name!r} is not a tool type ({', '.join(TOOL_OPTIONS)})"
            )
        kind = type_.value if type_ else name
        settings = option_settings(given, TOOL_OPTIONS[kind], f"--type {kind}")
        rename_keys(settings, allowed_path="allowed_paths", allowed_domain="allowed_domains")
        if kind == "web_search":
            move_auth(settings)
        if kind == "remote_mcp":
            move_secret_header(settings)
        entry = build_entry(name, kind, description, timeout, disabled, settings)
        if rate_limit is not None:
            entry["rate_limit"] = parse_rate_limit(rate_limit)
        _emit_entry("tools", entry, config, app_name)


@mcp_app.command("list-tools")
def list_tools(
    url: UrlArgument,
    header: HeaderOption = None,
    timeout: ClientTimeoutOption = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print name, description, inputSchema as JSON.")
    ] = False,
) -> None:
    """List the tools of any MCP server (Streamable HTTP)."""
    with user_errors():
        headers = _parse_headers(header or [])
        tools = _with_session(url, headers, timeout, lambda session: session.list_tools())
    if as_json:
        listed = [
            {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
            for t in tools
        ]
        typer.echo(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    if not tools:
        typer.echo("no tools")
        return
    table = Table(
        Column("name", overflow="fold", ratio=1),
        Column("description", overflow="fold", ratio=3),
        Column("required arguments", overflow="fold", ratio=1),
    )
    for tool in tools:
        table.add_row(tool.name, tool.description or tool.title or "", _required_args(tool))
    console.print(table, highlight=False, markup=False)


@mcp_app.command("call")
def call_tool(
    url: UrlArgument,
    tool: Annotated[str, typer.Argument(help="The tool's name, as list-tools prints it.")],
    args: Annotated[
        str, typer.Option("--args", help="The arguments as a JSON object: '{\"a\": 1}'.")
    ] = "{}",
    header: HeaderOption = None,
    timeout: ClientTimeoutOption = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result (content, isError, ...).")
    ] = False,
) -> None:
    """Call a tool of any MCP server; print its text. Exit 1 if the tool reports an error."""
    with user_errors():
        try:
            arguments = json.loads(args)
        except ValueError as error:
            raise AimRayError(f"--args is not valid JSON: {error}") from None
        if not isinstance(arguments, dict):
            raise AimRayError('--args must be a JSON object, e.g. \'{"expression": "2+2"}\'')
        headers = _parse_headers(header or [])
        result = _with_session(
            url, headers, timeout, lambda session: session.call_tool(tool, arguments)
        )
    if as_json:
        dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        typer.echo(json.dumps(dumped, indent=2, ensure_ascii=False))
    else:
        text = _result_text(result)
        typer.echo(f"tool error: {text}" if result.is_error else text, err=result.is_error)
    if result.is_error:
        raise typer.Exit(code=1)


def _emit_entry(
    section: str, entry: dict[str, Any], config: Path | None, app_name: str | None
) -> None:
    """Validate ``entry`` with the real models, then print it or add it to ``config``."""
    from aim_ray.config.mcp import entry_problems

    what = f"{section[:-1]} {entry['name']!r}"
    problems = entry_problems(section, entry)
    if problems:
        raise AimRayError(f"invalid {what}: {'; '.join(problems)}")
    if config is None:
        typer.echo(dump_yaml([entry]), nl=False)
        return
    added = add_entry(config, section, entry, app_name)
    if added.dropped_comments:
        typer.echo(
            f"note: comments in {config} other than the leading ones were not kept", err=True
        )
    typer.echo(f"added {what} to {config} ({added.where}.{section})")


def _with_session(url: str, headers: dict[str, str], timeout: float, work: Any) -> Any:
    """Run ``await work(session)`` in one MCP session (the same client the tool registry
    uses for remote servers); any failure is one line. The MCP SDK loads only here."""
    from aim_ray.mcp.tools.remote import MCPTimeoutError, connect

    async def run() -> Any:
        async with connect(url, headers, timeout_s=timeout) as session:
            return await work(session)

    try:
        return asyncio.run(run())
    except MCPTimeoutError as error:
        raise AimRayError(f"{error} (--timeout)") from None


def _parse_headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        key, sep, rest = value.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", key.strip()):
            raise AimRayError(f"--header {value!r}: expected 'Name: value'")
        headers[key.strip()] = rest.strip()
    return headers


def _required_args(tool: Any) -> str:
    schema = tool.input_schema or {}
    properties = schema.get("properties") or {}
    required = schema.get("required") or []
    return ", ".join(f"{arg}: {(properties.get(arg) or {}).get('type', 'any')}" for arg in required)


def _result_text(result: Any) -> str:
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{block.type} content]")
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)
