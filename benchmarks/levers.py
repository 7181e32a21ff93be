"""What each serving lever buys: the gateway with one lever at a time, against bare vLLM.

One run of this script starts, one after the other (never two at once on a small box):

- the gateway as it was before the levers (``--baseline-rev``, checked out into a temporary
  git worktree and run with Ray's own settings): the "before" row;
- that same code with one lever switched on, a row per lever: Ray Serve LLM's stream
  batching off, the HAProxy ingress, throughput-optimized Serve;
- the current code with Ray's own settings and Ray's 50 ms window (its code levers alone:
  plain-ASGI middleware, the first chunk sent at once);
- the current code as it ships (``aim_ray.deploy.cluster_env`` and its stream window),
  and the same with a 20 ms window;
- vLLM's own OpenAI server, the baseline every ratio is taken against.

Each gateway row is ``benchmarks/serving.py --targets gateway`` of that code in a subprocess
(so every row has its own Ray cluster and imports); the table gives output tok/s, TTFT p50
and ITL p50 of each row as a ratio to vLLM's, per concurrency level. Not a test: nothing
is asserted.

    .venv/bin/python benchmarks/levers.py --concurrency 1,8 --json-out /tmp/levers.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table
from serving import console, fmt, ratio

from aim_ray.deploy.cluster_env import cluster_env

REPO = Path(__file__).resolve().parent.parent
BATCH_WINDOW_ENV = "RAYLLM_MODEL_RESPONSE_BATCH_TIMEOUT_MS"
# Unset in every row, so each row's settings are exactly the ones it names.
CONTROLLED_ENV = (*cluster_env(os.cpu_count()), BATCH_WINDOW_ENV)
FIGURES = (("output tok/s", "output_tok_s"), ("TTFT p50", "ttft_ms_p50"), ("ITL p50", "itl_ms_p50"))


@dataclass(frozen=True)
class Row:
    name: str
    code: str  # "baseline" or "current"
    env: dict[str, str] = field(default_factory=dict)
    ray_defaults: bool = True


def rows(cores: int) -> list[Row]:
    haproxy = {"RAY_SERVE_ENABLE_HA_PROXY": "1"} | {
        k: v for k, v in cluster_env(cores).items() if k == "RAY_SERVE_HAPROXY_NBTHREAD"
    }
    return [
        Row("before (baseline code, Ray defaults)", "baseline"),
        Row("stream batching off", "baseline", {BATCH_WINDOW_ENV: "0"}),
        Row("HAProxy ingress", "baseline", haproxy),
        Row("throughput-optimized Serve", "baseline", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}),
        Row("ASGI middleware, first chunk now, 50 ms", "current", {BATCH_WINDOW_ENV: "50"}),
        Row("aim-ray as shipped (all levers)", "current", ray_defaults=False),
        # The window is the one lever with a value to choose: the shipped one against 20 ms.
        Row("as shipped, 20 ms stream window", "current", {BATCH_WINDOW_ENV: "20"}, False),
    ]


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """The baseline revision in a temporary worktree, removed on exit."""
    path = Path(tempfile.mkdtemp(prefix="aim-ray-baseline-"))
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), rev], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False
        )


def run_serving(
    code: Path, target: str, env: dict[str, str], args, work: Path, ray_defaults: bool = False
) -> dict:
    """One ``serving.py`` run of ``code`` for one target; its per-level results.

    ``ray_defaults`` asks the current code for Ray's own cluster settings; the baseline
    code knows no other."""
    out, log = work / "out.json", work / "serving.log"
    work.mkdir(parents=True)
    command = [
        sys.executable,
        str(code / "benchmarks" / "serving.py"),
        "--targets",
        target,
        "--concurrency",
        args.concurrency,
        "--max-tokens",
        str(args.max_tokens),
        "--json-out",
        str(out),
    ]
    if args.requests:
        command += ["--requests", str(args.requests)]
    if args.config:
        command += ["--config", str(args.config)]
    if ray_defaults and code == REPO:
        command.append("--ray-defaults")
    base = {k: v for k, v in os.environ.items() if k not in CONTROLLED_ENV}
    full_env = base | env | {"PYTHONPATH": str(code)}
    with log.open("w") as sink:
        # Ray puts the driver's working directory first on its workers' path: run in ``code``.
        done = subprocess.run(
            command, cwd=code, env=full_env, stdout=sink, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise SystemExit(f"serving.py failed for {target} ({code}); log {log}:\n{tail}")
    data = json.loads(out.read_text())
    return {"results": data["results"][target], "contended_by": data.get("contended_by", [])}


def table(measured: dict[str, dict], direct: dict, levels: list[str]) -> Table:
    result = Table(title="gateway / bare vLLM, one lever at a time")
    result.add_column("row")
    for level in levels:
        for label, _ in FIGURES:
            result.add_column(f"c={level}\n{label}", justify="right")
    for name, data in measured.items():
        cells = []
        for level in levels:
            mine, theirs = data["results"].get(level, {}), direct["results"].get(level, {})
            cells += [fmt(ratio(mine.get(key), theirs.get(key)), 2) for _, key in FIGURES]
        result.add_row(name, *cells)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default="99aa653", help="the code before the levers")
    parser.add_argument("--concurrency", default="1,8", help="levels (default 1,8)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=0, help="per level (serving.py's rule)")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="serve config for every row and vLLM (default serving.py's); pin the model's "
        "precision here when the baseline code would choose another dtype on this CPU",
    )
    parser.add_argument("--only", default="", help="comma-separated row numbers (1-based)")
    parser.add_argument("--json-out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    work = Path(tempfile.mkdtemp(prefix="aim-ray-levers-"))
    chosen = rows(os.cpu_count() or 1)
    if args.only:
        chosen = [chosen[int(i) - 1] for i in args.only.split(",")]
    measured: dict[str, dict] = {}
    with baseline_tree(args.baseline_rev) as baseline:
        for number, row in enumerate(chosen, 1):
            console.log(f"[{number}/{len(chosen)}] {row.name}: {row.env or 'no extra env'}")
            code = baseline if row.code == "baseline" else REPO
            result = run_serving(
                code, "gateway", row.env, args, work / f"row{number}", row.ray_defaults
            )
            measured[row.name] = result | {"row": row.__dict__}
    console.log("bare vLLM (the baseline of every ratio)")
    direct = run_serving(REPO, "direct", {}, args, work / "direct")
    levels = [level.strip() for level in args.concurrency.split(",")]
    Console().print(table(measured, direct, levels))
    contended = {n: d["contended_by"] for n, d in measured.items() if d["contended_by"]}
    if contended or direct["contended_by"]:
        console.print(f"[yellow]others were running during: {sorted(contended)}[/]")
    if args.json_out:
        data = {"date": started, "command": " ".join(sys.argv), "logs": str(work)}
        data |= {"rows": measured, "direct": direct}
        args.json_out.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from serving import run_main

    run_main(main)
