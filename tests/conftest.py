"""Shared fixtures: one running aim-ray application for every end-to-end test.

Starting Ray, Serve and the CPU vLLM engine costs about a minute, so the application
from ``serve_configs/local.yaml`` is started once per session, on its own local Ray
cluster and a free port, with API-key auth switched on so that auth is exercised too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
LOCAL_CONFIG = REPO / "serve_configs" / "local.yaml"
TEST_API_KEY = "sk-aim-ray-test-key"
READY_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_app_args() -> dict:
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    return config["applications"][0]["args"]


class RunningApp:
    """Where the session's application listens, and how to reach it."""

    def __init__(self, base_url: str, model: str) -> None:
        self.base_url = base_url
        self.model = model
        self.api_key = TEST_API_KEY

    def openai(self):
        from openai import OpenAI

        return OpenAI(base_url=f"{self.base_url}/v1", api_key=self.api_key, max_retries=0)

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=120)


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    # Ray's local clusters turn on token auth by default; this cluster is ours alone.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    from aim_ray.app import build_app

    keys = tmp_path_factory.mktemp("auth") / "api-keys"
    keys.write_text(f"{TEST_API_KEY}\n")
    args = local_app_args()
    args.setdefault("gateway", {})["auth"] = {"enabled": True, "api_keys_file": str(keys)}

    port = free_port()
    ray.init(address="local", num_cpus=8, include_dashboard=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(args), name="aim-ray", route_prefix="/", blocking=False)
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url)
        yield RunningApp(base_url, model=_served_model(base_url))
    finally:
        serve.shutdown()
        ray.shutdown()


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
