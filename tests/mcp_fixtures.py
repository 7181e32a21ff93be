"""Real services for the MCP tests: PostgreSQL, a Chroma server, a loopback HTTP server
(REST API, web pages, a SearxNG-compatible search) and a remote MCP server.

Import the fixtures you use into the test module (``from mcp_fixtures import ...``); the
root conftest belongs to the end-to-end suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

REST_TOKEN = "rest-token-9f8e7d6c5b4a"
REMOTE_MCP_KEY = "remote-key-1a2b3c4d5e6f"
BIG_BYTES = 4 * 1024 * 1024

DOCUMENTS = [
    ("1", "Cats", "Cats are small domesticated felines; a young cat is called a kitten."),
    ("2", "Revenue", "Quarterly revenue grew by twelve percent on strong hardware sales."),
    ("3", "GPUs", "The MI300X accelerator has 192 GB of HBM3 memory for large language models."),
    ("4", "Dogs", "Dogs are loyal companions and a young dog is called a puppy."),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    """Skip locally; in CI a missing service is a failure, not a skip."""
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


class ServerThread:
    """Runs an ASGI app with uvicorn on a free loopback port in a daemon thread."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# -- loopback HTTP: REST API, pages, SearxNG --------------------------------------------


async def api_search(request: Request) -> Response:
    if request.headers.get("authorization") != f"Bearer {REST_TOKEN}":
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    query = request.query_params.get("q", "").lower()
    limit = int(request.query_params.get("limit", "10"))
    hits = [
        {"id": doc_id, "title": title, "content": body, "source": "test-api"}
        for doc_id, title, body in DOCUMENTS
        if any(word in body.lower() for word in query.split())
    ]
    return JSONResponse({"data": {"results": hits[:limit]}})


async def page(request: Request) -> Response:
    return HTMLResponse(
        "<html><head><title>Test Page</title><style>body{color:red}</style></head>"
        "<body><script>var secret = 1;</script><h1>Hello MCP</h1>"
        "<p>First paragraph &amp; more.</p><p>Second paragraph.</p></body></html>"
    )


async def big(request: Request) -> Response:
    async def chunks():
        for _ in range(BIG_BYTES // 65536):
            yield b"a" * 65536

    return StreamingResponse(chunks(), media_type="text/plain")


async def big_declared(request: Request) -> Response:
    return PlainTextResponse("b" * (2 * 1024 * 1024))


async def redirect(request: Request) -> Response:
    return RedirectResponse(request.query_params["to"], status_code=302)


async def loop(request: Request) -> Response:
    return RedirectResponse("/loop", status_code=302)


async def headers(request: Request) -> Response:
    return JSONResponse(dict(request.headers))


async def binary(request: Request) -> Response:
    return Response(b"\x89PNG\r\n\x1a\n\x00\x00", media_type="image/png")


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return PlainTextResponse("finally")


async def searx(request: Request) -> Response:
    if request.query_params.get("format") != "json":
        return PlainTextResponse("html results", status_code=403)
    query = request.query_params.get("q", "")
    results = [
        {"title": f"Result {n} for {query}", "url": f"https://example.org/{n}", "content": f"S{n}"}
        for n in range(1, 11)
    ]
    return JSONResponse({"query": query, "number_of_results": 10, "results": results})


def loopback_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/api/search", api_search),
            Route("/page.html", page),
            Route("/big", big),
            Route("/big-declared", big_declared),
            Route("/redirect", redirect),
            Route("/loop", loop),
            Route("/headers", headers),
            Route("/binary", binary),
            Route("/slow", slow),
            Route("/searx/search", searx),
        ]
    )


@pytest.fixture(scope="session")
def http_server() -> Iterator[ServerThread]:
    server = ServerThread(loopback_app()).start()
    yield server
    server.stop()


# -- a remote MCP server ----------------------------------------------------------------


def remote_mcp_app():
    server = MCPServer("remote-test")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def fail() -> str:
        """Always fails."""
        raise ValueError("remote failure")

    @server.tool()
    async def nap(seconds: float) -> str:
        """Sleep, then answer."""
        await asyncio.sleep(seconds)
        return "rested"

    return server.streamable_http_app(stateless_http=True)


class RequireHeader:
    """ASGI wrapper: HTTP requests without ``header: value`` get 401 (lifespan passes)."""

    def __init__(self, app, header: str, value: str) -> None:
        self.app = app
        self.header = header.lower().encode()
        self.value = value.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(self.header) != self.value:
            await PlainTextResponse("unauthorized", status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def remote_mcp_server() -> Iterator[ServerThread]:
    """A real MCP SDK server at ``<url>/mcp`` that wants ``X-Api-Key: REMOTE_MCP_KEY``."""
    server = ServerThread(RequireHeader(remote_mcp_app(), "X-Api-Key", REMOTE_MCP_KEY)).start()
    yield server
    server.stop()


# -- PostgreSQL ---------------------------------------------------------------------------


@dataclass
class PgServer:
    host: str
    port: int
    user: str
    database: str
    password: str | None = None
    schema: str = ""
    cluster: str | None = None

    def connection(self) -> dict:
        """The ``connection``/provider settings for this server (password via a secret)."""
        settings = {"host": self.host, "port": self.port, "user": self.user}
        settings["database"] = self.database
        if self.password:
            settings["credentials"] = {"secret_name": "pg-test"}
        return settings

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            database=self.database,
            password=self.password,
            timeout=5,
        )


def _reachable(pg: PgServer) -> bool:
    async def probe() -> None:
        connection = await pg.connect()
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False
    return True


def _as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)


@contextlib.contextmanager
def _throwaway_cluster(prefix: str = "aimray") -> Iterator[PgServer | None]:
    """A PostgreSQL 15 cluster of our own (pg_createcluster), with a password role, since
    host connections to such a cluster use scram-sha-256."""
    if os.geteuid() != 0 or not shutil.which("pg_createcluster"):
        yield None
        return
    name, port = f"{prefix}{os.getpid()}", free_port()
    password = secrets.token_hex(12)
    try:
        subprocess.run(
            ["pg_createcluster", "15", name, "--port", str(port), "--start"],
            check=True,
            capture_output=True,
        )
        sql = f"CREATE ROLE aimray LOGIN PASSWORD '{password}'"
        _as_postgres("psql", "-p", str(port), "-c", sql)
        _as_postgres("createdb", "-p", str(port), "-O", "aimray", "test")
    except (OSError, subprocess.CalledProcessError):
        yield None
    else:
        yield PgServer("127.0.0.1", port, "aimray", "test", password, cluster=name)
    finally:
        subprocess.run(["pg_dropcluster", "15", name, "--stop"], check=False, capture_output=True)


async def _seed(pg: PgServer) -> None:
    connection = await pg.connect()
    try:
        await connection.execute(f"CREATE SCHEMA {pg.schema}")
        await connection.execute(
            f"CREATE TABLE {pg.schema}.docs (id int PRIMARY KEY, title text, body text)"
        )
        await connection.executemany(
            f"INSERT INTO {pg.schema}.docs VALUES ($1, $2, $3)",
            [(int(i), title, body) for i, title, body in DOCUMENTS],
        )
        await connection.execute(
            f"CREATE TABLE {pg.schema}.numbers AS SELECT generate_series(1, 500) AS n"
        )
    finally:
        await connection.close()


async def _drop(pg: PgServer) -> None:
    connection = await pg.connect()
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {pg.schema} CASCADE")
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """The development server (127.0.0.1:5432, trust auth, database ``test``), else a
    throwaway cluster; a fresh schema (``docs``, ``numbers``) for the session."""
    found = None
    for user in ("postgres", "root"):
        candidate = PgServer("127.0.0.1", 5432, user, "test")
        if _reachable(candidate):
            found = candidate
            break
    with _throwaway_cluster() if found is None else contextlib.nullcontext(found) as pg:
        if pg is None:
            unavailable("no PostgreSQL at 127.0.0.1:5432 and no throwaway cluster possible")
        pg.schema = f"aimray_test_{secrets.token_hex(4)}"
        previous = os.environ.get("AIM_RAY_SECRET_PG_TEST_PASSWORD")
        if pg.password:
            os.environ["AIM_RAY_SECRET_PG_TEST_PASSWORD"] = pg.password
        asyncio.run(_seed(pg))
        try:
            yield pg
        finally:
            asyncio.run(_drop(pg))
            if pg.password and previous is None:
                os.environ.pop("AIM_RAY_SECRET_PG_TEST_PASSWORD", None)


# -- Chroma server ------------------------------------------------------------------------


def chroma_cli() -> str | None:
    venv_bin = Path(sys.executable).parent / "chroma"
    return str(venv_bin) if venv_bin.exists() else shutil.which("chroma")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``chroma run`` on a free loopback port (never 8000, the Serve port)."""
    cli = chroma_cli()
    if cli is None:
        unavailable("the chroma CLI is not installed")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    process = subprocess.Popen(
        [cli, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).is_success:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                unavailable("chroma run did not start")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=10)
