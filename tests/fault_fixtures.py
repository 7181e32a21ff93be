"""Fault fixtures for the session app: a PostgreSQL cluster of its own that the fault tests
may stop and start, and a remote MCP server that is not listening until a test starts it.

``tests/conftest.py`` wires both into the session app (``fault_db``, ``late``);
``tests/test_e2e_faults.py`` drives them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Iterator

import pytest
from mcp.server.mcpserver import MCPServer
from mcp_fixtures import (
    REMOTE_MCP_KEY,
    PgServer,
    RequireHeader,
    ServerThread,
    _seed,
    _throwaway_cluster,
    free_port,
    in_ci,
)

FAULT_PG_SECRET = "pg-fault"


class StoppablePg:
    """A throwaway cluster the fault tests may stop and start (never the shared server)."""

    def __init__(self, pg: PgServer) -> None:
        self.pg = pg
        self.stopped = False

    def _ctl(self, action: str) -> None:
        assert self.pg.cluster, "only a throwaway cluster may be stopped"
        subprocess.run(
            ["pg_ctlcluster", "15", self.pg.cluster, action], check=True, capture_output=True
        )

    def stop(self) -> None:
        self._ctl("stop")
        self.stopped = True

    def start(self) -> None:
        if self.stopped:
            self._ctl("start")
            self.stopped = False


@pytest.fixture(scope="session")
def fault_postgres() -> Iterator[StoppablePg | None]:
    """A PostgreSQL cluster of its own (seeded ``faults.docs``) for the session app, or None
    where one cannot be made (not root, no PostgreSQL 15): a failure in CI, where it must
    exist. Its password reaches the replicas as the ``pg-fault`` secret."""
    with _throwaway_cluster("aimrayfault") as pg:
        if pg is None:
            if in_ci():
                pytest.fail("cannot create the throwaway PostgreSQL cluster the fault tests stop")
            yield None
            return
        pg.schema = "faults"
        os.environ["AIM_RAY_SECRET_PG_FAULT_PASSWORD"] = pg.password or ""
        asyncio.run(_seed(pg))
        try:
            yield StoppablePg(pg)
        finally:
            os.environ.pop("AIM_RAY_SECRET_PG_FAULT_PASSWORD", None)


class LateServer:
    """A remote MCP server on a reserved port that is not listening until ``start``.

    Besides ``add``, its ``hold`` tool signals ``entered`` and then waits for ``released``:
    a test knows exactly when calls are in flight and ends them when it likes.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.entered = threading.Semaphore(0)
        self.released = threading.Event()
        self._thread: ServerThread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self):
        server = MCPServer("late-test")

        @server.tool()
        def add(a: int, b: int) -> int:
            """Add two integers."""
            return a + b

        @server.tool()
        async def hold() -> str:
            """Wait until the test lets go."""
            self.entered.release()
            await asyncio.to_thread(self.released.wait, 60)
            return "released"

        # Closed schema: constrained decoding must give `{}`, or a small model rambles
        # extra keys until max_tokens and the chat never makes the call.
        hold_tool = server._tool_manager.get_tool("hold")
        assert hold_tool is not None
        hold_tool.parameters["additionalProperties"] = False
        return server.streamable_http_app(stateless_http=True)

    def start(self) -> None:
        self.released.clear()
        app = RequireHeader(self._app(), "X-Api-Key", REMOTE_MCP_KEY)
        self._thread = ServerThread(app, port=self.port).start()

    def stop(self) -> None:
        self.released.set()
        if self._thread is not None:
            self._thread.stop()
            self._thread = None


@pytest.fixture(scope="session")
def late_remote_mcp() -> Iterator[LateServer]:
    server = LateServer()
    yield server
    server.stop()
