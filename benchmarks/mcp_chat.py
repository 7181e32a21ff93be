"""MCP-aware chat benchmark: what ``mcp_context`` and a server-side tool round add.

One run starts the application from a serve config (as ``serving.py`` does) with an
``mcp:`` section of its own: a filesystem provider over a few generated documents, a
PostgreSQL provider over a seeded table when a server answers at ``--postgres``, and the
calculator tool. It then sends the same short chat in four ways, interleaved request by
request so drift hits them alike:

- ``plain``: no MCP (the baseline);
- ``context cold``: ``mcp_context`` with a query never asked before (every provider hit);
- ``context warm``: ``mcp_context`` with one repeated query (answered from the cache);
- ``plain, same prompt``: no MCP, but the very system message the gateway built for the
  warm way (from its ``mcp.context.items``): the same prompt tokens, so ``context warm``
  minus this is what retrieval costs beyond prefilling the longer prompt (the residual);
- ``tool round``: ``tools`` naming ``calculator`` with ``tool_choice`` forcing it: the
  gateway asks the engine for the arguments, runs the tool, and asks again.

Every answer decodes exactly ``--max-tokens`` tokens (vLLM's ``ignore_eos``), so the
differences are retrieval, the longer prompt, the tool and the extra engine round. It
prints p50/p90 latency per way, the added milliseconds and the ratio against ``plain``.
Not a test: nothing is asserted; loopback only, bounded request counts.

    .venv/bin/python benchmarks/mcp_chat.py --requests 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from serving import (
    DEFAULT_CONFIG,
    console,
    fmt,
    gateway_server,
    load_app_args,
    pct,
    run_main,
)

from aim_ray.mcp.chat.context import CONTEXT_HEADER

WAYS = ("plain", "context cold", "context warm", "plain, same prompt", "tool round")
QUESTION = "In one sentence, what do the notes say about the Paris office?"
PG_SCHEMA = "aim_ray_bench"
NOTES = [
    ("paris", "The Paris office opened in 2019 and hosts the inference platform team."),
    ("berlin", "The Berlin office runs the GPU lab with eight MI300X nodes."),
    ("austin", "The Austin office builds the ROCm kernels used by vLLM."),
    ("tokyo", "The Tokyo office supports customers in Japan and Korea."),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--requests", type=int, default=12, help="Measured requests per way.")
    parser.add_argument("--warmup", type=int, default=2, help="Dropped requests per way.")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="A PostgreSQL to seed a provider table in; 'none' for the filesystem only.",
    )
    parser.add_argument("--ready-timeout", type=float, default=600)
    parser.add_argument("--json-out", type=Path)
    return parser.parse_args(argv)


# -- the services behind the providers -------------------------------------------------


def write_notes(root: Path) -> Path:
    docs = root / "notes"
    docs.mkdir()
    for name, text in NOTES:
        (docs / f"{name}.md").write_text(f"# {name.title()}\n\n{text}\n")
    return docs


async def seed_postgres(dsn: str) -> dict[str, Any] | None:
    """Create the notes table; the provider's settings, or None if there is no server."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        console.print(f"[yellow]no PostgreSQL at {dsn} ({error}); filesystem provider only")
        return None
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE; CREATE SCHEMA {PG_SCHEMA}")
        await conn.execute(f"CREATE TABLE {PG_SCHEMA}.notes (id text PRIMARY KEY, body text)")
        await conn.executemany(f"INSERT INTO {PG_SCHEMA}.notes VALUES ($1, $2)", NOTES)
        params = conn._params  # noqa: SLF001 - the resolved connection settings
        host, port = conn._addr  # noqa: SLF001
    finally:
        await conn.close()
    return {
        "host": host,
        "port": port,
        "user": params.user,
        "database": params.database,
        "table": f"{PG_SCHEMA}.notes",
        "columns": ["body"],
        "id_column": "id",
    }


async def drop_postgres(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
    finally:
        await conn.close()


def mcp_section(docs: Path, postgres: dict[str, Any] | None) -> dict[str, Any]:
    providers: list[dict[str, Any]] = [
        {"name": "notes", "type": "filesystem", "config": {"roots": [str(docs)]}}
    ]
    if postgres is not None:
        providers.append({"name": "notes_db", "type": "postgresql", "config": postgres})
    return {
        "providers": providers,
        "tools": [{"name": "calculator"}],
        "context": {"max_length": 256, "cache": {"enabled": True, "ttl_seconds": 600}},
    }


# -- the requests ------------------------------------------------------------------------


def request_body(
    way: str, model: str, providers: list[str], index: int, max_tokens: int, context_text: str
):
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
    }
    if way.startswith("context"):
        # Cold: the same words (so the same items) in a form the cache has not seen.
        query = "Paris office" + ("!" * (index + 1) if way == "context cold" else "")
        body["mcp_context"] = {"providers": providers, "query": query}
    if way == "plain, same prompt":
        body["messages"].insert(0, {"role": "system", "content": context_text})
    if way == "tool round":
        body["messages"] = [{"role": "user", "content": "What is 1234 times 5678?"}]
        body["tools"] = [{"type": "function", "function": {"name": "calculator"}}]
        body["tool_choice"] = {"type": "function", "function": {"name": "calculator"}}
    return body


async def one_request(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    response = await client.post("/v1/chat/completions", json=body)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    data = response.json()
    report = data.get("mcp") or {}
    context = report.get("context") or {}
    calls = report.get("tool_calls") or []
    return {
        "seconds": seconds,
        "prompt_tokens": data["usage"]["prompt_tokens"],
        "context_ms": max((p["latency_ms"] for p in context.get("providers", [])), default=0.0),
        "cached": all(p.get("cached") for p in context.get("providers", [])) and bool(context),
        "tool_ms": sum(c["latency_ms"] for c in calls),
        "tool_ok": all(c["status"] == "ok" for c in calls),
        "context_text": injected_text(context.get("items", [])),
    }


def injected_text(items: list[dict[str, Any]]) -> str:
    """The system message the gateway built from these context items (its own format)."""
    lines = [f"[{item['provider']}:{item['id']}] {item['content'].strip()}" for item in items]
    return CONTEXT_HEADER + "\n".join(lines)


async def run_all(base_url: str, model: str, providers: list[str], args) -> dict[str, list]:
    results: dict[str, list] = {way: [] for way in WAYS}
    total = (args.warmup + args.requests) * len(WAYS)
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("requests", total=total)
            context_text = ""
            for index in range(args.warmup + args.requests):
                for way in WAYS:
                    body = request_body(way, model, providers, index, args.max_tokens, context_text)
                    result = await one_request(client, body)
                    if way == "context warm":
                        context_text = result["context_text"]
                    if index >= args.warmup:
                        results[way].append(result)
                    progress.advance(task)
    return results


# -- the report --------------------------------------------------------------------------


def summarize(results: dict[str, list]) -> dict[str, dict[str, Any]]:
    base = pct([r["seconds"] for r in results["plain"]], 50)
    summary = {}
    for way, runs in results.items():
        p50 = pct([r["seconds"] for r in runs], 50)
        summary[way] = {
            "p50_ms": p50 * 1000,
            "p90_ms": pct([r["seconds"] for r in runs], 90) * 1000,
            "added_ms": (p50 - base) * 1000,
            "ratio": p50 / base,
            "prompt_tokens": pct([r["prompt_tokens"] for r in runs], 50),
            "context_ms": pct([r["context_ms"] for r in runs], 50),
            "tool_ms": pct([r["tool_ms"] for r in runs], 50),
            "cache_hits": sum(r["cached"] for r in runs),
            "tool_ok": sum(r["tool_ok"] for r in runs),
            "requests": len(runs),
        }
    return summary


def table(summary: dict[str, dict[str, Any]]) -> Table:
    out = Table(title="MCP-aware chat latency (non-streamed, one at a time)")
    for column in ("way", "p50 ms", "p90 ms", "added ms", "× plain", "prompt tok", "notes"):
        out.add_column(column, justify="left" if column in ("way", "notes") else "right")
    for way, s in summary.items():
        notes = ""
        if way.startswith("context"):
            notes = f"retrieval {fmt(s['context_ms'])} ms, {s['cache_hits']}/{s['requests']} cached"
        elif way == "tool round":
            notes = f"tool {fmt(s['tool_ms'], 2)} ms, {s['tool_ok']}/{s['requests']} ok"
        out.add_row(
            way,
            fmt(s["p50_ms"]),
            fmt(s["p90_ms"]),
            fmt(s["added_ms"]),
            fmt(s["ratio"], 2),
            fmt(s["prompt_tokens"], 0),
            notes,
        )
    return out


@contextlib.contextmanager
def mcp_app(args, root: Path) -> Iterator[tuple[str, str, list[str]]]:
    postgres = None if args.postgres == "none" else asyncio.run(seed_postgres(args.postgres))
    try:
        app_args = load_app_args(args.config)
        app_args["mcp"] = mcp_section(write_notes(root), postgres)
        providers = [p["name"] for p in app_args["mcp"]["providers"]]
        with gateway_server(app_args, args.ready_timeout, None) as endpoint:
            yield endpoint.base_url, endpoint.model, providers
    finally:
        if postgres is not None:
            asyncio.run(drop_postgres(args.postgres))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory() as tmp, mcp_app(args, Path(tmp)) as app:
        base_url, model, providers = app
        console.print(f"providers: {', '.join(providers)}; model: {model}")
        results = asyncio.run(run_all(base_url, model, providers, args))
    summary = summarize(results)
    out = Console(width=120)  # the figures go to stdout, progress to stderr
    out.print(table(summary))
    warm, same = summary["context warm"], summary["plain, same prompt"]
    summary["residual_ms"] = warm["p50_ms"] - same["p50_ms"]
    out.print(
        f"residual: context warm - plain with the same prompt = {summary['residual_ms']:.1f} ms "
        f"p50 ({fmt(warm['prompt_tokens'], 0)} vs {fmt(same['prompt_tokens'], 0)} prompt "
        "tokens): what mcp_context costs beyond prefilling its extra tokens"
    )
    if args.json_out:
        report = {"started": started, "args": vars(args) | {"config": str(args.config)}}
        report |= {"summary": summary, "runs": results}
        args.json_out.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    run_main(main)
