"""Shared fixtures: one running aim-ray application for every end-to-end test.

Starting Ray, Serve and the CPU vLLM engine costs about a minute, so the application
from ``serve_configs/local.yaml`` is started once per session, on its own local Ray
cluster and a free port, with what the end-to-end tests exercise switched on: API-key
auth, two gateway replicas, and, instead of the default's own MCP section, one in a file of
its own (``mcp_config_file``) with every provider and tool against real services
(PostgreSQL, Chroma, a loopback HTTP server, a remote MCP server), plus one provider that
is down on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fault_fixtures import (  # noqa: F401 - fixtures used by the app fixture below
    FAULT_PG_SECRET,
    LateServer,
    StoppablePg,
    fault_postgres,
    late_remote_mcp,
)
from mcp_fixtures import (  # noqa: F401 - fixtures used by the app fixture below
    DOCUMENTS,
    REMOTE_MCP_KEY,
    REST_TOKEN,
    PgServer,
    ServerThread,
    chroma_server,
    http_server,
    postgres,
    remote_mcp_server,
)
from sql_roles import reader_name

from aim_ray.config import SERVE_CONFIG_DIR_ENV
from aim_ray.deploy.cluster_env import local_cluster_env, new_haproxy_dir

# Every Ray cluster the suite starts runs with the environment aim-ray ships with; set here,
# before any test module imports Ray, so this process reads the same settings as the cluster.
os.environ.update(local_cluster_env(os.environ, os.cpu_count(), new_haproxy_dir()))

REPO = Path(__file__).resolve().parent.parent
LOCAL_CONFIG = REPO / "serve_configs" / "local.yaml"
TEST_API_KEY = "sk-aim-ray-test-key"
READY_TIMEOUT_S = 600
# A client-defined tool: not in the registry, so it comes back as tool_calls.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_app_args() -> dict:
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    return config["applications"][0]["args"]


class RunningApp:
    """Where the session's application listens, how to reach it, and what it serves."""

    def __init__(self, base_url: str, model: str, services: MCPServices, metrics_url: str) -> None:
        self.base_url = base_url
        self.metrics_url = metrics_url
        self.model = model
        self.api_key = TEST_API_KEY
        self.services = services

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def openai(self):
        from openai import OpenAI

        return OpenAI(base_url=f"{self.base_url}/v1", api_key=self.api_key, max_retries=0)

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=120)


class MCPServices:
    """The real services behind the session app's providers and tools."""

    def __init__(
        self,
        pg: PgServer,
        http: ServerThread,
        remote: ServerThread,
        root: Path,
        chroma_address: tuple[str, int],
    ) -> None:
        self.pg = pg
        self.http = http
        self.remote = remote
        self.docs = root / "docs"
        self.chroma = root / "chroma"
        # Empty until a test ingests into them (`aim-ray mcp ingest`), while the app runs.
        self.chroma_server = chroma_address
        # For the fault tests: a database they may stop, a remote server that starts late.
        self.fault_pg: StoppablePg | None = None
        self.late_remote: LateServer | None = None


def mcp_section(services: MCPServices) -> dict:
    """Every provider type and tool type, as a user would write them."""
    pg = services.pg
    chroma = {"path": str(services.chroma), "collection": "docs"}
    loopback = {"allow_private": True}
    return {
        "providers": [
            {
                "name": "docs_db",
                "type": "postgresql",
                "config": {
                    **pg.connection(),
                    "table": f"{pg.schema}.docs",
                    "columns": ["title", "body"],
                    "id_column": "id",
                },
            },
            {"name": "vectors", "type": "chroma", "timeout_s": 30, "config": chroma},
            {
                "name": "api",
                "type": "rest",
                "config": {
                    "base_url": services.http.url,
                    "path": "/api/search",
                    "results_field": "data.results",
                    "auth": {"type": "bearer", "secret_name": "test-rest"},
                    **loopback,
                },
            },
            {"name": "files", "type": "filesystem", "config": {"roots": [str(services.docs)]}},
            {
                "name": "down_db",
                "type": "postgresql",
                "timeout_s": 2,
                "config": {
                    "host": "127.0.0.1",
                    "port": free_port(),
                    "database": "test",
                    "table": "docs",
                    "columns": ["body"],
                },
            },
            *_ingest_targets(services),
            *_fault_providers(services),
        ],
        "tools": [
            {"name": "calculator", "rate_limit": {"requests": 1000, "window": "1m"}},
            {"name": "file_reader", "config": {"allowedPaths": [str(services.docs)]}},
            # The test login is a superuser: sql_query accepts it, sql_superuser stays down,
            # sql_reader logs in as a SELECT-only role (tests/sql_roles.py creates it).
            {
                "name": "sql_query",
                "config": {"provider": "docs_db", "max_rows": 50, "allow_privileged_role": True},
            },
            {"name": "sql_superuser", "type": "sql_query", "config": {"provider": "docs_db"}},
            {
                "name": "sql_reader",
                "type": "sql_query",
                "config": {"connection": {**pg.connection(), "user": reader_name(pg)}},
            },
            {"name": "vector_search", "timeout_s": 30, "config": {"provider": "vectors"}},
            # One network, not allow_private: the guard still judges everything else.
            {"name": "web_fetch", "config": {"allow_networks": ["127.0.0.1/32"]}},
            {
                "name": "web_search",
                "config": {"endpoint": f"{services.http.url}/searx", **loopback},
            },
            {
                "name": "knowledge",
                "type": "remote_mcp",
                "config": {
                    "url": f"{services.remote.url}/mcp",
                    "prefix": "kb",
                    "secret_headers": {"X-Api-Key": {"secret_name": "remote-mcp"}},
                    **loopback,
                },
            },
            # A typed function in tests/python_tools.py (PYTHONPATH: see the app fixture).
            {
                "name": "convert_length",
                "type": "python",
                "import_path": "python_tools:convert_length",
            },
            *_fault_tools(services),
        ],
        "prompts": [
            {
                "name": "summarize_doc",
                "description": "Summarize one document for a reader",
                "arguments": [
                    {"name": "path", "description": "A file under the docs"},
                    {"name": "audience", "required": False},
                ],
                "template": "Summarize the file {path} for {audience}.",
            }
        ],
        "context": {"max_length": 512, "cache": {"enabled": True, "ttl_seconds": 60}},
    }


def _ingest_targets(services: MCPServices) -> list[dict]:
    """A table and a Chroma server collection that do not exist until a test ingests."""
    pg = services.pg
    host, port = services.chroma_server
    return [
        {
            "name": "ingested_db",
            "type": "postgresql",
            "config": {
                **pg.connection(),
                "table": f"{pg.schema}.ingested",
                "columns": ["title", "body"],
                "id_column": "id",
            },
        },
        {
            "name": "ingested_vectors",
            "type": "chroma",
            "timeout_s": 30,
            "config": {"host": host, "port": port, "collection": "ingested"},
        },
    ]


def _fault_providers(services: MCPServices) -> list[dict]:
    if services.fault_pg is None:
        return []
    pg = services.fault_pg.pg
    connection = {"host": pg.host, "port": pg.port, "user": pg.user, "database": pg.database}
    return [
        {
            "name": "fault_db",
            "type": "postgresql",
            "timeout_s": 5,
            "config": {
                **connection,
                "credentials": {"secret_name": FAULT_PG_SECRET},
                "connect_timeout_s": 2,
                "table": f"{pg.schema}.docs",
                "columns": ["title", "body"],
                "id_column": "id",
            },
        }
    ]


def _fault_tools(services: MCPServices) -> list[dict]:
    if services.late_remote is None:
        return []
    return [
        {
            "name": "late",
            "type": "remote_mcp",
            "timeout_s": 30,
            "config": {
                "url": f"{services.late_remote.url}/mcp",
                "prefix": "late",
                "secret_headers": {"X-Api-Key": {"secret_name": "remote-mcp"}},
                # Short: the tests wait for it to appear, and for it to go once stopped.
                "list_ttl_s": 1,
                "connect_timeout_s": 2,
                "allow_private": True,
            },
        }
    ]


def seed_documents(services: MCPServices) -> None:
    from aim_ray.config.mcp_providers import ChromaSettings
    from aim_ray.mcp.context.chroma import ChromaProvider

    services.docs.mkdir(parents=True)
    for _, title, body in DOCUMENTS:
        (services.docs / f"{title.lower()}.md").write_text(f"# {title}\n\n{body}\n")
    settings = ChromaSettings(path=str(services.chroma), collection="docs")
    chroma = ChromaProvider("seed", settings, 60)
    asyncio.run(chroma.add_documents([d[0] for d in DOCUMENTS], [d[2] for d in DOCUMENTS]))


@pytest.fixture(scope="session")
def app(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PgServer,  # noqa: F811
    http_server: ServerThread,  # noqa: F811
    remote_mcp_server: ServerThread,  # noqa: F811
    fault_postgres: StoppablePg | None,  # noqa: F811
    late_remote_mcp: LateServer,  # noqa: F811
    chroma_server: tuple[str, int],  # noqa: F811
) -> Iterator[RunningApp]:
    # Ray's local clusters turn on token auth by default; this cluster is ours alone.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Secrets reach the replicas through the environment Ray's workers inherit.
    os.environ["AIM_RAY_SECRET_TEST_REST_TOKEN"] = REST_TOKEN
    os.environ["AIM_RAY_SECRET_REMOTE_MCP_TOKEN"] = REMOTE_MCP_KEY
    import ray
    from ray import serve

    from aim_ray.serving.app import build_app

    root = tmp_path_factory.mktemp("app")
    services = MCPServices(postgres, http_server, remote_mcp_server, root, chroma_server)
    services.fault_pg, services.late_remote = fault_postgres, late_remote_mcp
    seed_documents(services)
    keys = root / "api-keys"
    keys.write_text(f"{TEST_API_KEY}\n")
    args = local_app_args()
    args["gateway"] = {
        "auth": {"enabled": True, "api_keys_file": str(keys)},
        # Two replicas: MCP requests must not depend on which one answers.
        "deployment_config": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0.1}},
    }
    # The mcp: section in a file of its own, named relative to the serve config's folder
    # (what `aim-ray serve run` passes as AIM_RAY_SERVE_CONFIG_DIR), as a user would.
    (root / "mcp.yaml").write_text(yaml.safe_dump({"mcp": mcp_section(services)}))
    args.pop("mcp", None)
    args["mcp_config_file"] = "mcp.yaml"

    # The python tool's module: Ray's processes (workers included) inherit the environment
    # the cluster starts with; only theirs, not the suite's other subprocesses.
    tests_dir = str(Path(__file__).resolve().parent)
    python_path = os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
    port, metrics_port = free_port(), free_port()
    with _env(PYTHONPATH=python_path):
        ray.init(
            address="local", num_cpus=8, include_dashboard=False, _metrics_export_port=metrics_port
        )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        with _env(**{SERVE_CONFIG_DIR_ENV: str(root)}):
            application = build_app(args)
        serve.run(application, name="aim-ray", route_prefix="/", blocking=False)
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url)
        yield RunningApp(
            base_url,
            model=_served_model(base_url),
            services=services,
            metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        serve.shutdown()
        ray.shutdown()


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """These environment variables set for the block, as they were after it."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _wait_healthy(base_url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        # Refused connections just mean the proxy is not listening yet.
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/health", timeout=10).status_code == 200:
                return
        time.sleep(2)
    raise TimeoutError(f"aim-ray did not become healthy within {READY_TIMEOUT_S}s")


def _served_model(base_url: str) -> str:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    models = httpx.get(f"{base_url}/v1/models", headers=headers, timeout=30).json()
    return models["data"][0]["id"]
