"""`aim-ray mcp ...`: config entries written with the real schema, and a real MCP server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mcp_fixtures import REMOTE_MCP_KEY, free_port, remote_mcp_server  # noqa: F401
from typer.testing import CliRunner

from aim_ray.cli import mcp_options
from aim_ray.cli.main import app
from aim_ray.config import edit
from aim_ray.config.mcp import load_mcp_config
from aim_ray.config.mcp_providers import PROVIDER_TYPES
from aim_ray.config.mcp_tools import TOOL_TYPES

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner(env={"COLUMNS": "200"})
AUTH = ["--header", f"X-Api-Key: {REMOTE_MCP_KEY}"]


def invoke(*args: str):
    return runner.invoke(app, ["mcp", *args])


def assert_user_error(result, *fragments: str) -> None:
    """Exit 2 with one `error: ...` line naming the problem, never a traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


# -- create-provider / create-tool: printed entries ---------------------------------------

PROVIDERS = {
    "postgresql": [
        "--host", "db.internal", "--port", "5433", "--database", "ai_context",
        "--user", "reader", "--secret-name", "db-credentials",
        "--table", "docs", "--columns", "title, body",
    ],
    "chroma": [
        "--host", "127.0.0.1", "--port", "8010", "--collection", "docs",
        "--auth-type", "bearer", "--secret-name", "chroma-token",
    ],
    "rest": [
        "--base-url", "https://api.example.com", "--path", "/search",
        "--auth-type", "api_key", "--secret-name", "api-key",
        "--allowed-domain", "api.example.com", "--allowed-domain", "cdn.example.com",
    ],
    "filesystem": ["--root", "/workspace/docs", "--root", "/srv/kb", "--timeout", "2s"],
}  # fmt: skip

TOOLS = {
    "calculator": ["--rate-limit", "100/1m", "--timeout", "10"],
    "file_reader": ["--allowed-path", "/workspace/data", "--allowed-path", "/tmp/shared"],
    "sql_query": ["--provider", "database", "--max-rows", "50"],
    "vector_search": ["--provider", "vectors", "--n-results", "3"],
    "web_fetch": ["--allowed-domain", "example.com", "--rate-limit", "10/30s"],
    "web_search": ["--endpoint", "https://searx.example.com", "--max-results", "3"],
    "remote_mcp": [
        "--url", "http://docs.internal:8080/mcp", "--prefix", "docs", "--allow-private",
        "--auth-type", "api_key", "--auth-header", "X-Api-Key", "--secret-name", "docs-key",
    ],
}  # fmt: skip

# Providers the tools above refer to, so that a section holding them validates.
REFERENCED = [
    {"name": "database", "type": "postgresql", "config": {"database": "x", "query": "$1"}},
    {"name": "vectors", "type": "chroma", "config": {"collection": "docs"}},
]


def created(command: str, name: str, kind: str, options: list[str]) -> dict:
    result = invoke(command, name, "--type", kind, *options)
    assert result.exit_code == 0, result.output
    entries = yaml.safe_load(result.stdout)
    assert isinstance(entries, list) and len(entries) == 1
    return entries[0]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_create_provider_prints_a_valid_entry(kind: str) -> None:
    entry = created("create-provider", f"my-{kind}", kind, PROVIDERS[kind])
    provider = load_mcp_config({"mcp": {"providers": [entry]}}).providers[0]
    assert (provider.name, provider.type) == (f"my-{kind}", kind)
    settings = provider.config
    if kind == "postgresql":
        assert (settings.host, settings.port, settings.user) == ("db.internal", 5433, "reader")
        assert settings.columns == ["title", "body"]
        assert settings.credentials.secret_name == "db-credentials"
    elif kind == "chroma":
        assert (settings.mode, settings.port, settings.collection) == ("http", 8010, "docs")
        assert (settings.auth.type, settings.auth.secret_name) == ("bearer", "chroma-token")
    elif kind == "rest":
        assert settings.base_url == "https://api.example.com" and settings.path == "/search"
        assert settings.allowed_domains == ["api.example.com", "cdn.example.com"]
        assert settings.auth.header_name() == "X-API-Key"
    else:
        assert settings.roots == ["/workspace/docs", "/srv/kb"]
        assert provider.timeout_s == 2.0


@pytest.mark.parametrize("kind", TOOLS)
def test_create_tool_prints_a_valid_entry(kind: str) -> None:
    entry = created("create-tool", f"my_{kind}", kind, TOOLS[kind])
    tool = load_mcp_config({"providers": REFERENCED, "tools": [entry]}).tools[0]
    assert (tool.name, tool.type) == (f"my_{kind}", kind)
    if kind == "calculator":
        assert (tool.rate_limit.requests, tool.rate_limit.window) == (100, 60.0)
        assert tool.timeout_s == 10.0
        assert entry["timeout_s"] == 10  # a number in the YAML, not the string '10'
    elif kind == "file_reader":
        assert tool.config.allowed_paths == ["/workspace/data", "/tmp/shared"]
    elif kind in ("sql_query", "vector_search"):
        assert tool.config.provider in ("database", "vectors")
    elif kind == "web_fetch":
        assert tool.config.allowed_domains == ["example.com"]
        assert tool.rate_limit.window == 30.0
    elif kind == "web_search":
        assert tool.config.endpoint == "https://searx.example.com"
        assert tool.config.max_results == 3
    else:
        assert tool.prefix == "docs" and tool.config.allow_private
        header = tool.config.secret_headers["X-Api-Key"]
        assert (header.secret_name, header.prefix) == ("docs-key", "")


def test_tool_type_defaults_to_its_name() -> None:
    result = invoke("create-tool", "calculator")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == [{"name": "calculator", "type": "calculator"}]


def test_secrets_are_only_named() -> None:
    entry = created("create-tool", "docs", "remote_mcp", ["--url", "https://docs.example.com/mcp"])
    assert "secret_headers" not in entry["config"]
    bearer = created(
        "create-tool",
        "docs",
        "remote_mcp",
        ["--url", "https://docs.example.com/mcp", "--auth-type", "bearer", "--secret-name", "tok"],
    )
    assert bearer["config"]["secret_headers"] == {
        "Authorization": {"secret_name": "tok", "prefix": "Bearer "}
    }
    # There is no option that takes a secret's value.
    result = invoke("create-provider", "db", "--type", "postgresql", "--password", "hunter2")
    assert result.exit_code == 2
    assert "hunter2" not in result.stdout


def test_type_choices_match_the_schema() -> None:
    assert tuple(mcp_options.ProviderType) == PROVIDER_TYPES == tuple(mcp_options.PROVIDER_OPTIONS)
    assert tuple(mcp_options.ToolType) == TOOL_TYPES == tuple(mcp_options.TOOL_OPTIONS)


def test_cli_import_stays_light() -> None:
    code = (
        "import sys, aim_ray.cli.main; "
        "print([m for m in ('mcp', 'httpx2', 'aim_ray.config.mcp') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- refusals -----------------------------------------------------------------------------

REFUSED = [
    (
        ["create-provider", "db", "--type", "postgresql", "--database", "x", "--collection", "c"],
        "--collection does not apply to --type postgresql",
    ),
    (
        ["create-provider", "db", "--type", "postgresql", "--database", "x", "--query", "$1"]
        + ["--port", "70000"],
        "config.port: Input should be less than or equal to 65535",
    ),
    (
        ["create-provider", "db", "--type", "postgresql", "--database", "x"],
        "set exactly one of `query` or `table`",
    ),
    (["create-provider", "kb", "--type", "filesystem"], "config: Field required"),
    (
        ["create-provider", "api", "--type", "rest", "--base-url", "https://a.example.com"]
        + ["--secret-name", "api-key"],
        "--secret-name needs --auth-type",
    ),
    (
        ["create-provider", "api", "--type", "rest", "--base-url", "https://a.example.com"]
        + ["--allowed-domain", "b.example.com"],
        "is not in allowed_domains",
    ),
    (["create-provider", "bad name", "--type", "filesystem", "--root", "/x"], "name: String"),
    (["create-tool", "calc", "--type", "calculator", "--rate-limit", "5"], "REQUESTS/WINDOW"),
    (["create-tool", "calc", "--type", "calculator", "--rate-limit", "5/soon"], "rate_limit"),
    (["create-tool", "calc", "--type", "calculator", "--timeout", "-1"], "timeout_s"),
    (["create-tool", "calculator", "--url", "http://x.example.com/mcp"], "does not apply"),
    (["create-tool", "reader"], "set --type"),
    (["create-tool", "reader", "--type", "file_reader"], "config: Field required"),
    (["create-tool", "a__b", "--type", "calculator"], "reserved for remote tool names"),
    (["create-tool", "docs", "--type", "remote_mcp", "--url", "ftp://x.example.com"], "url"),
    (
        ["create-tool", "ws", "--type", "web_search", "--endpoint", "https://s.example.com"]
        + ["--allowed-domain", "other.example.com"],
        "is not in allowed_domains",
    ),
]


@pytest.mark.parametrize(("args", "message"), REFUSED)
def test_invalid_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    config = tmp_path / "mcp.yaml"
    original = "# mine\nmcp:\n  tools:\n  - name: calculator\n"
    config.write_text(original)
    for extra in ([], ["--config", str(config)]):
        result = invoke(*args, *extra)
        assert_user_error(result, message)
        assert result.stdout == ""
    assert config.read_text() == original


def test_unknown_type_is_a_usage_error() -> None:
    result = invoke("create-tool", "x", "--type", "nope")
    assert result.exit_code == 2
    assert "--type" in result.output and result.stdout == ""


# -- appending to files -------------------------------------------------------------------

STANDALONE = """\
# Our MCP setup.
# Second header line.

mcp:
  enabled: true
  providers:
  - name: database
    type: postgresql
    config: {database: ai_context, query: "SELECT body AS content FROM docs WHERE body @@ $1"}
  tools:
  - name: calculator
    rateLimit: {requests: 100, window: 1m}
  context: {max_length: 8192, cacheTTL: 1h}
"""


def test_append_to_a_standalone_mcp_file(tmp_path: Path) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text(STANDALONE)
    before = yaml.safe_load(STANDALONE)

    result = invoke(
        "create-provider",
        "kb",
        "--type",
        "filesystem",
        "--root",
        "/srv/kb",
        "--config",
        str(config),
    )
    assert result.exit_code == 0, result.output
    assert "added provider 'kb'" in result.stdout and "mcp.providers" in result.stdout
    result = invoke(
        "create-tool",
        "sql",
        "--type",
        "sql_query",
        "--provider",
        "database",
        "--config",
        str(config),
    )
    assert result.exit_code == 0, result.output

    text = config.read_text()
    assert text.startswith("# Our MCP setup.\n# Second header line.\n")
    after = yaml.safe_load(text)
    # Everything that was there is still there, unchanged and first.
    assert after["mcp"]["providers"][:1] == before["mcp"]["providers"]
    assert after["mcp"]["tools"][:1] == before["mcp"]["tools"]
    assert after["mcp"]["context"] == before["mcp"]["context"]
    loaded = load_mcp_config(config)
    assert [p.name for p in loaded.providers] == ["database", "kb"]
    assert [t.name for t in loaded.tools] == ["calculator", "sql"]
    assert loaded.context.cache.ttl_seconds == 3600


def test_append_creates_a_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "new.yaml"
    result = invoke("create-tool", "calculator", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert [t.name for t in load_mcp_config(config).tools] == ["calculator"]


def test_append_to_a_bare_section_file(tmp_path: Path) -> None:
    config = tmp_path / "section.yaml"
    config.write_text("tools:\n- name: calculator\n")
    result = invoke("create-tool", "fetch", "--type", "web_fetch", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "mcp" not in yaml.safe_load(config.read_text())
    assert [t.name for t in load_mcp_config(config).tools] == ["calculator", "fetch"]


def test_other_comments_are_reported_as_lost(tmp_path: Path) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text("mcp:\n  tools:\n  - name: calculator  # the one we need\n")
    result = invoke("create-tool", "fetch", "--type", "web_fetch", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "comments" in result.stderr and "not kept" in result.stderr


def serve_config(tmp_path: Path) -> Path:
    path = tmp_path / "local.yaml"
    shutil.copy(REPO / "serve_configs" / "local-plain.yaml", path)
    return path


def test_append_to_a_serve_config(tmp_path: Path) -> None:
    config = serve_config(tmp_path)
    original_text = config.read_text()
    original = yaml.safe_load(original_text)
    assert "mcp" not in original["applications"][0]["args"]

    steps = [
        ["create-provider", "database", "--type", "postgresql", "--database", "test"]
        + ["--table", "docs", "--columns", "title,body"],
        ["create-tool", "sql", "--type", "sql_query", "--provider", "database"],
        ["create-tool", "calculator", "--rate-limit", "100/1m"],
    ]
    for step in steps:
        result = invoke(*step, "--config", str(config))
        assert result.exit_code == 0, result.output
        assert "applications[0].args.mcp" in result.stdout

    text = config.read_text()
    assert text.splitlines()[0] == original_text.splitlines()[0]  # the header comment
    data = yaml.safe_load(text)
    args = data["applications"][0].pop("args")
    original_args = original["applications"][0].pop("args")
    assert data == original  # nothing else changed
    assert args["models"] == original_args["models"]
    mcp = load_mcp_config(args["mcp"])
    assert [p.name for p in mcp.providers] == ["database"]
    assert [t.name for t in mcp.tools] == ["sql", "calculator"]


def test_serve_config_application_choice(tmp_path: Path) -> None:
    config = serve_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    aim = data["applications"][0]
    other = {"name": "other", "route_prefix": "/other", "import_path": "other.app:build"}
    second = {**aim, "name": "second", "route_prefix": "/second", "args": {**aim["args"]}}
    data["applications"] = [other, aim, second]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    original = config.read_text()

    result = invoke("create-tool", "calculator", "--config", str(config))
    assert_user_error(result, "several aim-ray applications", "--app")
    result = invoke("create-tool", "calculator", "--config", str(config), "--app", "other")
    assert_user_error(result, "no application named 'other'")
    assert config.read_text() == original

    result = invoke("create-tool", "calculator", "--config", str(config), "--app", "second")
    assert result.exit_code == 0, result.output
    assert "applications[2].args.mcp" in result.stdout
    apps = yaml.safe_load(config.read_text())["applications"]
    assert "mcp" not in apps[1]["args"] and "args" not in apps[0]
    assert [t.name for t in load_mcp_config(apps[2]["args"]["mcp"]).tools] == ["calculator"]


DUPLICATES = [
    (
        ["create-provider", "database", "--type", "filesystem", "--root", "/x"],
        "provider 'database' already exists",
    ),
    (["create-tool", "calculator"], "tool 'calculator' already exists"),
    (
        ["create-tool", "docs2", "--type", "remote_mcp", "--url", "https://b.example.com/mcp"]
        + ["--prefix", "docs"],
        "duplicate remote_mcp prefix 'docs'",
    ),
    (
        ["create-tool", "search", "--type", "vector_search", "--provider", "database"],
        "config.provider 'database' is not a chroma provider",
    ),
]


@pytest.mark.parametrize(("args", "message"), DUPLICATES)
def test_duplicates_and_bad_references_leave_the_file_unchanged(
    tmp_path: Path, args: list[str], message: str
) -> None:
    config = tmp_path / "mcp.yaml"
    original = STANDALONE.replace(
        "  context:",
        "  - name: docs\n    type: remote_mcp\n    config: {url: 'https://a.example.com/mcp'}\n"
        "  context:",
    )
    config.write_text(original)
    assert load_mcp_config(config).tools[1].prefix == "docs"
    for target in (config, serve_config(tmp_path)):
        if target is not config:  # the same refusals inside a Serve config
            data = yaml.safe_load(target.read_text())
            data["applications"][0]["args"]["mcp"] = yaml.safe_load(original)["mcp"]
            target.write_text(yaml.safe_dump(data, sort_keys=False))
        before = target.read_text()
        assert_user_error(invoke(*args, "--config", str(target)), message)
        assert target.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.yaml", "mcp.yaml"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("mcp: [\n", "not valid YAML"),
        ("- a\n- b\n", "expected a YAML mapping"),
        ("models: []\n", "neither an `mcp:` config nor a Serve config"),
        ("mcp:\n  tools:\n  - name: calculator\n    bogus: 1\n", "already invalid"),
        ("mcp:\n  tools: {calculator: {}}\n", "mcp.tools is not a list"),
        ("applications:\n- name: x\n  import_path: other:app\n", "no application"),
    ],
)
def test_unusable_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text(content)
    result = invoke("create-tool", "fetch", "--type", "web_fetch", "--config", str(config))
    assert_user_error(result, message)
    assert config.read_text() == content


def test_a_failed_write_leaves_the_file_whole(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "mcp.yaml"
    config.write_text(STANDALONE)

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(edit.os, "replace", refuse)
    result = invoke("create-tool", "fetch", "--type", "web_fetch", "--config", str(config))
    assert_user_error(result, "cannot write", "Permission denied")
    assert config.read_text() == STANDALONE
    assert [p.name for p in tmp_path.iterdir()] == ["mcp.yaml"]  # no temporary file left


# -- list-tools / call against a real MCP SDK server ----------------------------------------


@pytest.fixture
def mcp_url(remote_mcp_server) -> str:  # noqa: F811
    return f"{remote_mcp_server.url}/mcp"


def test_list_tools_table(mcp_url: str) -> None:
    result = invoke("list-tools", mcp_url, *AUTH)
    assert result.exit_code == 0, result.output
    for text in ("add", "Add two integers.", "a: integer, b: integer", "echo", "text: string"):
        assert text in result.stdout


def test_list_tools_json(mcp_url: str) -> None:
    result = invoke("list-tools", mcp_url, *AUTH, "--json")
    assert result.exit_code == 0, result.output
    tools = {tool["name"]: tool for tool in json.loads(result.stdout)}
    assert set(tools) == {"add", "echo", "fail", "nap"}
    assert tools["add"]["description"] == "Add two integers."
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]


def test_call_prints_the_text(mcp_url: str) -> None:
    result = invoke("call", mcp_url, "add", "--args", '{"a": 2, "b": 40}', *AUTH)
    assert result.exit_code == 0, result.output
    assert result.stdout == "42\n"
    result = invoke("call", mcp_url, "echo", "--args", '{"text": "héllo wörld"}', *AUTH)
    assert result.stdout == "héllo wörld\n"


def test_call_json(mcp_url: str) -> None:
    result = invoke("call", mcp_url, "add", "--args", '{"a": 1, "b": 2}', "--json", *AUTH)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["isError"] is False
    assert answer["structuredContent"] == {"result": 3}
    assert answer["content"] == [{"type": "text", "text": "3"}]


def test_a_tool_error_exits_1(mcp_url: str) -> None:
    result = invoke("call", mcp_url, "fail", *AUTH)
    assert result.exit_code == 1, result.output
    assert "tool error" in result.stderr and "fail" in result.stderr
    # Arguments the tool's schema refuses are the tool's error too.
    result = invoke("call", mcp_url, "add", "--args", '{"a": "x"}', *AUTH)
    assert result.exit_code == 1 and "validation error" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ('{"a": 2', "--args is not valid JSON"),
        ("[1, 2]", "--args must be a JSON object"),
    ],
)
def test_call_with_bad_json(mcp_url: str, args: str, message: str) -> None:
    assert_user_error(invoke("call", mcp_url, "add", "--args", args, *AUTH), message)


def test_call_an_unknown_tool(mcp_url: str) -> None:
    result = invoke("call", mcp_url, "subtract", "--args", "{}", *AUTH)
    assert_user_error(result, "unknown tool 'subtract'", "add, echo, fail, nap")


@pytest.mark.parametrize("command", [["list-tools"], ["call", "--args", "{}"]])
def test_a_closed_port(command: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    argv = [command[0], url, *(["add"] if command[0] == "call" else []), *command[1:]]
    assert_user_error(invoke(*argv), f"cannot connect to {url}", "Connection refused")


def test_http_errors(remote_mcp_server) -> None:  # noqa: F811
    url = f"{remote_mcp_server.url}/mcp"
    assert_user_error(invoke("list-tools", url), "HTTP 401 Unauthorized")
    assert_user_error(
        invoke("call", url, "add", "--args", "{}", "--header", "X-Api-Key: wrong"), "HTTP 401"
    )
    assert_user_error(
        invoke("list-tools", f"{remote_mcp_server.url}/elsewhere", *AUTH),
        "HTTP 404 Not Found",
        "MCP endpoint",
    )


def test_timeout(mcp_url: str) -> None:
    started = time.monotonic()
    result = invoke("call", mcp_url, "nap", "--args", '{"seconds": 10}', "--timeout", "0.5", *AUTH)
    assert_user_error(result, "no answer within 0.5s")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list-tools", "127.0.0.1:8000/mcp"], "is not an http(s) URL"),
        (
            ["list-tools", "http://127.0.0.1:1/mcp", "--header", "no colon"],
            "expected 'Name: value'",
        ),
    ],
)
def test_bad_client_input(argv: list[str], message: str) -> None:
    assert_user_error(invoke(*argv), message)
