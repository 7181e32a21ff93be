"""MCP tool-call benchmark: aim-ray's ``/mcp`` against a plain MCP SDK server, same tool.

One run measures a trivial tool call (the calculator, ``2+3``) three ways:

- ``plain MCP``: the MCP SDK's own ``MCPServer`` with the same calculator code
  (``aim_ray.mcp.tools.calculator.Calculator``), stateless JSON Streamable HTTP under uvicorn on a
  loopback port, in this process: the baseline, what any MCP server costs;
- ``aim-ray /mcp``: the same SDK client against the application (``serve_configs/local-plain.yaml``
  with an ``mcp:`` section of just the calculator): Serve proxy → gateway → ToolService;
- ``direct handle``: ``ToolService.call_tool`` through a Serve deployment handle from this
  driver, without HTTP or MCP: what the Serve hop alone costs.

For each: p50/p99 latency of sequential calls on one open client, and calls/s with
``--concurrency`` clients calling in a closed loop; then the ratios against plain MCP.
Not a test: nothing is asserted; loopback only, bounded call counts.

    .venv/bin/python benchmarks/mcp_tools.py --calls 200 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from serving import (
    APP_NAME,
    DEFAULT_CONFIG,
    console,
    fmt,
    free_port,
    gateway_server,
    load_app_args,
    pct,
    run_main,
)

from aim_ray.mcp.tools.calculator import Calculator

ARGUMENTS = {"expression": "2+3"}
EXPECTED = "5"
WAYS = ("plain MCP", "aim-ray /mcp", "direct handle")

Call = Callable[[], Awaitable[str]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--calls", type=int, default=200, help="Sequential calls per way.")
    parser.add_argument("--concurrency", type=int, default=8, help="Clients for calls/s.")
    parser.add_argument("--seconds", type=float, default=10, help="Length of the calls/s run.")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--ready-timeout", type=float, default=600)
    return parser.parse_args(argv)


# -- the baseline server -------------------------------------------------------------------


def plain_mcp_app():
    server = MCPServer("plain-calculator")
    calculator = Calculator(max_exponent=1000)

    @server.tool()
    def calculator_tool(expression: str) -> str:
        """Evaluate an arithmetic expression."""
        return str(calculator.evaluate(expression))

    return server.streamable_http_app(stateless_http=True, json_response=True)


async def serve_plain(port: int):
    import uvicorn

    config = uvicorn.Config(plain_mcp_app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    return server, task


# -- the measurements ----------------------------------------------------------------------


async def latencies(call: Call, calls: int, warmup: int, progress, task) -> list[float]:
    for _ in range(warmup):
        await call()
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        text = await call()
        seconds.append(time.perf_counter() - start)
        if text != EXPECTED:
            raise RuntimeError(f"unexpected tool result {text!r}")
        progress.advance(task)
    return seconds


async def throughput(make_call: Callable[[], Any], clients: int, seconds: float) -> float:
    """Calls per second of ``clients`` closed-loop clients, each with its own connection."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client_loop() -> None:
        nonlocal done
        async with make_call() as call:
            while time.perf_counter() < deadline:
                await call()
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return done / (time.perf_counter() - start)


def mcp_caller(url: str, tool: str):
    """An async context manager giving a call function over one open SDK client."""

    class Caller:
        async def __aenter__(self) -> Call:
            self._http = httpx2.AsyncClient(timeout=60)
            await self._http.__aenter__()
            self._client = Client(streamable_http_client(url, http_client=self._http))
            client = await self._client.__aenter__()

            async def call() -> str:
                result = await client.call_tool(tool, ARGUMENTS)
                return result.content[0].text

            return call

        async def __aexit__(self, *exc: Any) -> None:
            await self._client.__aexit__(*exc)
            await self._http.__aexit__(*exc)

    return Caller()


def handle_caller(handle):
    class Caller:
        async def __aenter__(self) -> Call:
            async def call() -> str:
                return (await handle.call_tool.remote("calculator", ARGUMENTS)).content

            return call

        async def __aexit__(self, *exc: Any) -> None:
            return None

    return Caller()


async def measure(callers: dict[str, Callable[[], Any]], args) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with Progress(console=console, transient=True) as progress:
        for way, make_call in callers.items():
            task = progress.add_task(way, total=args.calls)
            async with make_call() as call:
                seconds = await latencies(call, args.calls, args.warmup, progress, task)
            progress.update(task, description=f"{way}: calls/s with {args.concurrency} clients")
            rate = await throughput(make_call, args.concurrency, args.seconds)
            results[way] = {
                "p50_ms": pct(seconds, 50) * 1000,
                "p99_ms": pct(seconds, 99) * 1000,
                "calls_per_s": rate,
            }
    return results


async def run(endpoint, args) -> dict[str, dict[str, float]]:
    from ray import serve

    port = free_port()
    server, task = await serve_plain(port)
    try:
        handle = serve.get_deployment_handle("ToolService", app_name=APP_NAME)
        callers = {
            "plain MCP": lambda: mcp_caller(f"http://127.0.0.1:{port}/mcp", "calculator_tool"),
            "aim-ray /mcp": lambda: mcp_caller(f"{endpoint.base_url}/mcp", "calculator"),
            "direct handle": lambda: handle_caller(handle),
        }
        return await measure(callers, args)
    finally:
        server.should_exit = True
        await task
        # The handle's router runs in this loop (throughput-optimized Serve): shut Serve
        # down while the loop lives; the gateway's own cleanup then finds nothing to stop.
        await serve.shutdown_async()


def table(results: dict[str, dict[str, float]], concurrency: int) -> Table:
    base = results["plain MCP"]
    out = Table(title="MCP tool call: calculator 2+3")
    for column in ("way", "p50 ms", "p99 ms", f"calls/s ({concurrency} clients)"):
        out.add_column(column, justify="left" if column == "way" else "right")
    out.add_column("p50 × plain", justify="right")
    out.add_column("calls/s × plain", justify="right")
    for way in WAYS:
        r = results[way]
        out.add_row(
            way,
            fmt(r["p50_ms"], 2),
            fmt(r["p99_ms"], 2),
            fmt(r["calls_per_s"]),
            fmt(r["p50_ms"] / base["p50_ms"], 2),
            fmt(r["calls_per_s"] / base["calls_per_s"], 2),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app_args = load_app_args(args.config)
    app_args["mcp"] = {"tools": [{"name": "calculator"}]}
    with gateway_server(app_args, args.ready_timeout, None) as endpoint:
        results = asyncio.run(run(endpoint, args))
    Console(width=120).print(table(results, args.concurrency))
    return 0


if __name__ == "__main__":
    run_main(main)
