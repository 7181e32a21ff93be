"""The README's first command on a fresh checkout, then its MCP examples as written.

``aim-ray serve run serve_configs/local.yaml`` is started from a copy of the repo's default
config and ``docs/`` (the Serve port changed to a free one): the first start fills the
Chroma collection from the docs, ``/health`` covers the engine and MCP, and every code
block of the README's "MCP out of the box" runs unchanged but for the port."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import serve_run
import yaml
from mcp_fixtures import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 600
README_PORT = "127.0.0.1:8000"


class DefaultApp:
    def __init__(self, base_url: str, log: Path) -> None:
        self.base_url = base_url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DefaultApp]:
    checkout = tmp_path_factory.mktemp("checkout")
    shutil.copytree(REPO / "docs", checkout / "docs")
    config = yaml.safe_load((REPO / "serve_configs" / "local.yaml").read_text())
    port = free_port()
    config["http_options"]["port"] = port
    (checkout / "serve_configs").mkdir()
    (checkout / "serve_configs" / "local.yaml").write_text(yaml.safe_dump(config))
    log = checkout / "serve-run.log"
    with log.open("wb") as output:
        child = serve_run.start(Path("serve_configs/local.yaml"), checkout, output)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_healthy(base_url, child, log)
            yield DefaultApp(base_url, log)
        finally:
            serve_run.stop(child)


def _wait_healthy(base_url: str, child: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.fail(f"serve run exited with {child.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/health", timeout=10).json().get("status") == "healthy":
                return
        except (httpx.HTTPError, ValueError):
            pass  # not listening yet, or Serve's own 404 before the app is deployed
        time.sleep(2)
    pytest.fail(f"not healthy within {READY_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def readme_examples() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### MCP out of the box\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 2, "the section's examples: the openai client, then an MCP client"
    return blocks


def run_example(code: str, base_url: str) -> str:
    assert README_PORT in code
    done = subprocess.run(
        [sys.executable, "-c", code.replace(f"http://{README_PORT}", base_url)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_first_start_fills_the_docs_collection_and_says_so(default_app: DefaultApp) -> None:
    # Ray forwards a replica's output to `serve run` by polling its log files: wait for it.
    deadline = time.monotonic() + 60
    while "documents\n" not in default_app.output() and time.monotonic() < deadline:
        time.sleep(1)
    output = default_app.output()
    assert "aim-ray: ingesting docs into 'docs' (first start)\n" in output
    assert "aim-ray: docs: docs/architecture.md" in output
    summary = re.search(
        r"aim-ray: docs: (\d+) files, (\d+) chunks written.* 0 -> (\d+) docu", output
    )
    assert summary is not None, output[-3000:]
    files, chunks, documents = map(int, summary.groups())
    assert files == len(list((REPO / "docs").glob("*.md"))) and chunks == documents > files


def test_health_covers_the_engine_and_mcp(default_app: DefaultApp) -> None:
    response = httpx.get(f"{default_app.base_url}/health", timeout=30)
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "models": {"smollm2-135m-instruct": "healthy"},
        "mcp": "healthy",
    }


def test_the_readme_chat_examples_use_the_docs(default_app: DefaultApp) -> None:
    chat_example, _ = readme_examples()
    lines = run_example(chat_example, default_app.base_url).splitlines()
    items = [line.split() for line in lines if line.startswith("docs docs/")]
    assert items, "mcp.context.items name the shipped docs"
    assert all(re.fullmatch(r"docs/\w+\.md#\d+", item[1]) for item in items)
    # Run inside the cluster, whatever the tiny model made of the arguments: a call the
    # tool refuses ends as `error` (the model's numerics differ between CPUs).
    (call,) = [line for line in lines if line.startswith("vector_search ")]
    assert call.rsplit(" ", 1)[1] in {"ok", "error"}


def test_the_readme_mcp_client_example(default_app: DefaultApp) -> None:
    _, client_example = readme_examples()
    output = run_example(client_example, default_app.base_url)
    assert output.startswith("['calculator', 'file_reader', 'vector_search']\n")
    assert re.search(r"^\[docs/\w+\.md#\d+\] \(score [0-9.]+\)", output.splitlines()[1])
