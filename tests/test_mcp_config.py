"""The `mcp:` config section: seed shapes, aliases, and every problem reported with its place."""

from __future__ import annotations

import pickle
import textwrap

import httpx
import pytest

from aim_ray.config.mcp import (
    MCPConfig,
    MCPConfigError,
    load_mcp_config,
    validation_problems,
)
from aim_ray.config.mcp_base import parse_duration, url_host
from aim_ray.config.mcp_providers import ChromaProviderConfig, PostgresProviderConfig
from aim_ray.config.mcp_tools import FileReaderToolConfig, RemoteMCPToolConfig, WebSearchToolConfig

# The seed's `mcp:` example (seed-aim-mcp-strategy.md, 1.2), minus its port 8001 and with
# Chroma moved off 8000 (the Serve port), plus the seed's tool/context keys from its CRD.
SEED = textwrap.dedent(
    """
    mcp:
      enabled: true
      providers:
        - name: "database"
          type: "postgresql"
          config:
            host: "localhost"
            port: 5432
            database: "ai_context"
            credentials:
              secret_name: "db-credentials"
            table: docs
            columns: [title, body]
        - name: "api"
          type: "rest"
          config:
            base_url: "https://api.example.com"
            auth:
              type: "bearer"
              secret_name: "api-token"
        - name: "vector_store"
          type: "chroma"
          config:
            host: "localhost"
            port: 8010
            collection: "documents"
      tools:
        - name: "web_search"
          description: "Search the web for current information"
          parameters:
            query:
              type: "string"
              description: "Search query"
          config:
            endpoint: "https://searx.example.com"
        - name: "file_reader"
          description: "Read files from the filesystem"
          enabled: true
          rateLimit: {requests: 100, window: "1m"}
          config:
            allowedPaths: ["/workspace/data"]
      context:
        maxLength: 8192
        retrievalStrategy: "semantic_search"
        cacheEnabled: true
        cacheTTL: "1h"
    """
)


@pytest.fixture
def seed_file(tmp_path):
    path = tmp_path / "mcp.yaml"
    path.write_text(SEED)
    return path


def test_the_seed_shape_loads(seed_file):
    config = load_mcp_config(seed_file)
    database, api, vectors = config.providers
    assert isinstance(database, PostgresProviderConfig)
    assert database.config.credentials.secret_name == "db-credentials"
    assert database.config.credentials.key == "password"
    assert api.config.auth.header_name() == "Authorization"
    assert api.config.allowed_domains == ["api.example.com"]
    assert isinstance(vectors, ChromaProviderConfig) and vectors.config.mode == "http"
    search, reader = config.tools
    assert isinstance(search, WebSearchToolConfig)
    assert search.parameters["query"].description == "Search query"
    assert isinstance(reader, FileReaderToolConfig)
    assert reader.config.allowed_paths == ["/workspace/data"]
    assert reader.rate_limit.requests == 100 and reader.rate_limit.window == 60
    assert config.context.max_length == 8192
    assert config.context.cache.enabled and config.context.cache.ttl_seconds == 3600


def test_snake_case_works_too():
    config = MCPConfig.model_validate(
        {
            "tools": [
                {
                    "name": "reader",
                    "type": "file_reader",
                    "rate_limit": {"requests": 2, "window": 30},
                    "config": {"allowed_paths": ["/data"], "max_bytes": 10},
                }
            ],
            "context": {"max_length": 100, "cache": {"enabled": False, "ttl_seconds": "5m"}},
        }
    )
    assert config.tools[0].config.allowed_paths == ["/data"]
    assert config.context.cache.ttl_seconds == 300 and not config.context.cache.enabled


def test_a_mapping_with_or_without_the_mcp_key():
    assert load_mcp_config({"mcp": {"enabled": False}}).enabled is False
    assert load_mcp_config({"enabled": False}).enabled is False


def test_the_config_pickles_for_ray(seed_file):
    config = load_mcp_config(seed_file)
    assert pickle.loads(pickle.dumps(config)) == config


def test_every_problem_is_reported_with_its_location():
    data = {
        "mcp": {
            "port": 8001,
            "providers": [
                {"name": "ok", "type": "filesystem", "config": {"roots": ["/data"]}},
                {"name": "db", "type": "postgresql", "config": {"database": "x", "port": "abc"}},
                {"name": "x", "type": "mysql", "config": {}},
            ],
            "tools": [
                {"name": "calculator", "typo": 1},
                {"name": "mystery"},
                {"name": "file_reader", "config": {"allowedPaths": []}},
                {"name": "w", "type": "web_fetch", "rate_limit": {"requests": 0, "window": "1x"}},
            ],
            "context": {"retrieval_strategy": "magic"},
        }
    }
    problems = validation_problems(data)
    expected = [
        "mcp.providers[1].config.port: Input should be a valid integer, unable to parse string "
        "as an integer",
        "mcp.providers[2]: Input tag 'mysql' found using 'type' does not match any of the "
        "expected tags: 'postgresql', 'chroma', 'rest', 'filesystem'",
        "mcp.tools[0].typo: Extra inputs are not permitted",
        "mcp.tools[1]: unknown tool type: set `type` to one of calculator, file_reader, "
        "sql_query, vector_search, web_fetch, web_search, remote_mcp, python",
        "mcp.tools[2].config.allowed_paths: List should have at least 1 item after validation, "
        "not 0",
        "mcp.tools[3].rate_limit.requests: Input should be greater than or equal to 1",
        "mcp.tools[3].rate_limit.window: expected seconds or a duration like '30s', '5m', '1h'",
        "mcp.context.retrieval_strategy: Input should be 'semantic_search', 'keyword' or "
        "'round_robin'",
        "mcp.port: not supported: MCP is served at /mcp on the Ray Serve HTTP port; remove it",
    ]
    # A model's own checks (here: `query` or `table`) run once its fields are valid, so
    # providers[1] shows only its bad port for now.
    assert problems == expected


def test_load_raises_with_all_problems(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("mcp:\n  tools:\n    - name: calculator\n      timeout_s: -1\n")
    with pytest.raises(MCPConfigError) as caught:
        load_mcp_config(path)
    assert caught.value.problems == ["mcp.tools[0].timeout_s: Input should be greater than 0"]


def test_unreadable_or_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("mcp: [unclosed")
    with pytest.raises(MCPConfigError, match="broken.yaml"):
        load_mcp_config(path)
    with pytest.raises(MCPConfigError, match="missing.yaml"):
        load_mcp_config(tmp_path / "missing.yaml")


def test_cross_references_between_tools_and_providers():
    data = {
        "providers": [
            {"name": "files", "type": "filesystem", "config": {"roots": ["/d"]}},
            {"name": "files", "type": "filesystem", "config": {"roots": ["/e"]}},
        ],
        "tools": [
            {"name": "sql", "type": "sql_query", "config": {"provider": "files"}},
            {"name": "vs", "type": "vector_search", "config": {"provider": "nope"}},
            {"name": "sql", "type": "calculator"},
        ],
    }
    (problem,) = validation_problems(data)
    assert problem.startswith("mcp: ")
    assert "duplicate provider name 'files'" in problem
    assert "duplicate tool name 'sql'" in problem
    assert "tool 'sql': config.provider 'files' is not a postgresql provider" in problem
    assert "tool 'vs': config.provider 'nope' is not defined (providers: " in problem


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"collection": "docs", "host": "127.0.0.1", "port": 8000},
            "port 8000 on this host is the Ray Serve HTTP port",
        ),
        ({"collection": "docs", "mode": "http", "host": "chroma"}, "needs `host` and `port`"),
    ],
)
def test_chroma_settings(config, message):
    data = {"providers": [{"name": "v", "type": "chroma", "config": config}]}
    assert any(message in p for p in validation_problems(data))


def test_chroma_on_8000_elsewhere_is_fine():
    data = {
        "providers": [
            {
                "name": "v",
                "type": "chroma",
                "config": {"host": "chroma-svc", "port": 8000, "collection": "docs"},
            }
        ]
    }
    assert validation_problems(data) == []


def test_postgres_query_must_use_the_query_parameter():
    data = {
        "providers": [
            {"name": "db", "type": "postgresql", "config": {"database": "d", "query": "SELECT 1"}}
        ]
    }
    assert validation_problems(data) == [
        "mcp.providers[0].config: `query` must use $1 for the query text (and may use $2 for limit)"
    ]


@pytest.mark.parametrize("name", ["docs; DROP TABLE x", 'a"b', "1abc"])
def test_postgres_identifiers_are_checked(name):
    data = {
        "providers": [
            {
                "name": "db",
                "type": "postgresql",
                "config": {"database": "d", "table": name, "columns": ["body"]},
            }
        ]
    }
    assert any("providers[0].config.table" in p for p in validation_problems(data))


def test_web_search_endpoint_must_be_in_allowed_domains():
    data = {
        "tools": [
            {
                "name": "web_search",
                "config": {"endpoint": "http://127.0.0.1:8888", "allowedDomains": ["*.google.com"]},
            }
        ]
    }
    assert validation_problems(data) == [
        "mcp.tools[0].config: host '127.0.0.1' of 'http://127.0.0.1:8888' is not in allowed_domains"
    ]


def test_parameters_may_only_document_known_arguments():
    data = {"tools": [{"name": "calculator", "parameters": {"expr": {"description": "x"}}}]}
    assert validation_problems(data) == [
        "mcp.tools[0]: parameters: unknown argument 'expr' (arguments: expression)"
    ]
    data = {"tools": [{"name": "calculator", "parameters": {"expression": {"type": "number"}}}]}
    assert validation_problems(data) == [
        "mcp.tools[0]: parameters.expression.type must be 'string'"
    ]


def test_remote_tool_names():
    data = {
        "tools": [
            {"name": "docs", "type": "remote_mcp", "config": {"url": "http://d:1/mcp"}},
            {"name": "x__y", "type": "calculator"},
        ]
    }
    assert validation_problems(data) == [
        "mcp.tools[1].name: '__' is reserved for remote tool names"
    ]
    config = MCPConfig.model_validate({"tools": data["tools"][:1]})
    assert isinstance(config.tools[0], RemoteMCPToolConfig) and config.tools[0].prefix == "docs"


def test_secret_names_follow_kubernetes_rules():
    data = {
        "providers": [
            {
                "name": "db",
                "type": "postgresql",
                "config": {
                    "database": "d",
                    "table": "t",
                    "columns": ["c"],
                    "credentials": {"secretName": "../../etc/passwd"},
                },
            }
        ]
    }
    (problem,) = validation_problems(data)
    assert problem.startswith("mcp.providers[0].config.credentials.secret_name: String should")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(5, 5), ("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h", 3600), ("1d", 86400)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_domains_are_normalised_and_checked():
    data = {
        "tools": [
            {"name": "web_fetch", "config": {"allowed_domains": ["Example.COM.", "bad domain"]}}
        ]
    }
    assert validation_problems(data) == [
        "mcp.tools[0].config.allowed_domains: not a domain name or '*.domain' pattern: bad domain"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://API.Example.com/search",
        "http://127.0.0.1:8888",
        "http://[::1]:8080/mcp",
        "https://user@docs.example.org:8443/x?q=1#f",
        "https://bücher.example/",
        "https://www.bücher.example/",
        "https://xn--bcher-kva.example/",
        "http://example.com./",
    ],
)
def test_url_host_names_the_host_as_httpx_does(url: str) -> None:
    # The config derives allowed_domains from it; the netguard checks httpx's host against them.
    assert url_host(url) == httpx.URL(url).host


@pytest.mark.parametrize("url", ["http://300.1.1.1/", "http://[::zz]/", "http://h:port/"])
def test_url_host_refuses_what_httpx_refuses(url: str) -> None:
    with pytest.raises(httpx.InvalidURL):
        httpx.URL(url)
    with pytest.raises(ValueError, match="invalid URL"):
        url_host(url)
