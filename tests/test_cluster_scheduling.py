"""Multi-node scheduling, simulated: where aim-ray's deployments land on a Ray cluster.

A real Ray cluster is started on this machine with ``ray start``, shaped like the KubeRay
``RayService`` that ``aim_ray.deploy.rayservice.render_rayservice`` writes: a head with no CPUs for
replicas, a CPU ``services`` node labelled ``aim-ray.io/role=services``, and engine nodes
with the GPU count, ``accelerator_type:<type>`` resource, labels and CPUs of the rendered
engine groups (4 x MI300X, 2 x MI300X and 8 x MI325X), plus the ``ray.io/accelerator-type``
label Ray adds by itself on a real AMD node. The application is the rendered one too: the
``serveConfigV2`` args, with the gateway and MCP services pinned to the services role.

vLLM cannot run on fake GPUs, so every deployment of ``build_app(args)`` is replaced by a
stand-in with exactly its options (ray actor options, and for the engine the placement
group bundles and strategy ``LLMServer.get_deployment_options`` derives from the recipe),
and raw placement groups are made from the bundles of other recipe profiles. Stand-ins
report their node and the nodes of their placement group. Bare actors with a service's
actor options (with and without the rendered label selector) show where one more service
replica would go.

The checks run in a driver process of their own (this file run as a script): the test
session may already hold a Ray connection (the end-to-end app fixture), and a process joins
one cluster only.

Cleanup is scoped to this cluster: each node is a ``ray start --block`` in its own session;
SIGTERM makes it stop its node's processes, then SIGKILL to the session's process group
takes any leftover (raylet, agents and Ray workers all stay in that group). Never
``ray stop``: it kills every Ray process on the machine, other people's clusters included.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from pydantic import BaseModel, Field
from ray import serve
from ray.serve.deployment import Application
from ray.serve.llm import LLMServer
from ray.util import (
    get_current_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

from aim_ray.config.app import ModelSpec
from aim_ray.config.mcp import MCPConfig
from aim_ray.deploy.cluster_env import SYNC_DRIVER_ENV
from aim_ray.deploy.options import ROLE_LABEL, SERVICES_ROLE, RayServiceOptions
from aim_ray.deploy.rayservice import render_rayservice
from aim_ray.serving.app import SERVICE_DEFAULTS, build_app, build_llm_config

MODEL = "Qwen/Qwen3-32B"
NODE_LABEL = "aim-ray-test/node"
REPORT_PREFIX = "SCHEDULING-REPORT "
DRIVER_TIMEOUT_S = 600
# Generous: a node's start is a few seconds on a quiet machine, but far more on two busy cores.
NODE_START_TIMEOUT_S = 300
WORKER_PORTS = 40
PROBE_WAIT_S = 90
PROBE_SETTLE_S = 5
ENGINE = "LLMServer:Qwen--Qwen3-32B"
SERVICES = ("Gateway", "ToolService", "ContextService")
# More than one replica of the CPU services, so that SPREAD scheduling has a choice.
MCP = {
    "tools": [{"name": "calculator"}],
    "deployments": {"tools": {"autoscaling_config": {"min_replicas": 2}}},
}
GATEWAY = {"deployment_config": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0.1}}}
# Scaled down from the rendered 4 CPUs so that a handful of replicas fills it.
SERVICES_NODE_CPUS = 1


class SimNode(BaseModel):
    """One simulated node; its loopback IP also names it (``node:<ip>`` resource)."""

    name: str
    ip: str
    cpus: float
    gpus: int = 0
    resources: dict[str, float] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def accelerator(self) -> str | None:
        return self.labels.get("ray.io/accelerator-type")


class Layout(BaseModel):
    nodes: list[SimNode]
    app_args: dict[str, Any]


# The MI325X engine runs the general recipe, which knows no model's tool-call format: the
# entry names Qwen's, as a user serving registry tools on it must.
TOOL_CALLING = {"enable_auto_tool_choice": True, "tool_call_parser": "hermes"}


def _rendered(hardware: str, gpus: int) -> dict[str, Any]:
    spec = ModelSpec(model_id=MODEL, hardware=hardware, gpus=gpus, engine_kwargs=TOOL_CALLING)
    mcp = MCPConfig.model_validate(MCP)
    documents, _ = render_rayservice(spec, RayServiceOptions(), mcp=mcp, gateway=GATEWAY)
    return documents[0]["spec"]


def _node(name: str, ip: str, group: dict[str, Any]) -> SimNode:
    """What KubeRay's ``ray start`` makes of a group: CPUs from the pod's limit unless
    rayStartParams say, GPUs from ``num-gpus``, its resources and labels."""
    params = group.get("rayStartParams", {})
    limits = group["template"]["spec"]["containers"][0].get("resources", {}).get("limits", {})
    resources = {key: float(value) for key, value in (group.get("resources") or {}).items()}
    labels = {**(group.get("labels") or {}), NODE_LABEL: name}
    accelerators = [key.split(":", 1)[1] for key in resources if key.startswith("accelerator_")]
    if accelerators:
        # Ray labels a node whose AMD GPUs it detects (resource_and_label_spec.py).
        labels["ray.io/accelerator-type"] = accelerators[0]
    return SimNode(
        name=name,
        ip=ip,
        cpus=float(params.get("num-cpus", limits.get("cpu", 0))),
        gpus=int(params.get("num-gpus", 0)),
        resources=resources,
        labels=labels,
    )


def _engine_group(spec: dict[str, Any]) -> dict[str, Any]:
    groups = spec["rayClusterConfig"]["workerGroupSpecs"]
    return next(g for g in groups if g["labels"][ROLE_LABEL] != SERVICES_ROLE)


@functools.cache
def layout() -> Layout:
    """The cluster and app of the rendered TP 4 RayService, plus two more engine nodes.

    Distinct loopback addresses: Ray rewrites 127.0.0.1 to the host's outward address
    (services.resolve_ip_for_localhost), other 127.x addresses stay on loopback.
    """
    main = _rendered("MI300X", 4)
    cluster = main["rayClusterConfig"]
    services = next(
        g for g in cluster["workerGroupSpecs"] if g["labels"][ROLE_LABEL] == SERVICES_ROLE
    )
    nodes = [
        _node("head", "127.0.0.11", cluster["headGroupSpec"]),
        _node("services", "127.0.0.12", services).model_copy(update={"cpus": SERVICES_NODE_CPUS}),
        _node("mi300x-4", "127.0.0.13", _engine_group(main)),
        _node("mi300x-2", "127.0.0.14", _engine_group(_rendered("MI300X", 2))),
        _node("mi325x-8", "127.0.0.15", _engine_group(_rendered("MI325X", 8))),
    ]
    app_args = yaml.safe_load(main["serveConfigV2"])["applications"][0]["args"]
    return Layout(nodes=nodes, app_args=app_args)


class Replica(BaseModel):
    replica: str
    node: str
    bundle_nodes: list[str] = []


class Report(BaseModel):
    """What the driver saw; ``None`` for a placement group that stayed pending."""

    deployments: dict[str, list[Replica]]
    engine_bundles: list[dict[str, float]]
    engine_strategy: str
    tp2_nodes: list[str] | None
    tp4_strict_nodes_when_split: list[str] | None
    tp4_pack_nodes_when_split: list[str] | None
    tp8_nodes: list[str] | None
    tp8_any_gpu_nodes: list[str] | None
    extra_replicas_unpinned: list[str | None]
    extra_replicas_pinned: list[str | None]


# -- the cluster (test process side) ---------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    # Hold every socket until all are chosen, so that no port is handed out twice.
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _free_port_range(size: int) -> int:
    """The first of ``size`` free ports, below the kernel's ephemeral range (32768-)."""
    for _ in range(50):
        base = random.randrange(20000, 32000 - size)
        if all(_bindable(port) for port in range(base, base + size)):
            return base
    raise RuntimeError(f"no {size} consecutive free ports for Ray workers")


def _node_command(node: SimNode, head: SimNode, gcs_port: int, root: Path) -> list[str]:
    """``ray start --block`` for one node, every port its own (several nodes, one host)."""
    ray_cli = str(Path(sys.executable).with_name("ray"))
    agent, agent_grpc, env_agent, metrics, manager, objects = _free_ports(6)
    base = _free_port_range(WORKER_PORTS)
    labels = ",".join(f"{key}={value}" for key, value in node.labels.items())
    command = [ray_cli, "start", "--block", "--disable-usage-stats", "--node-ip-address", node.ip]
    command += ["--temp-dir", str(root / node.name), "--object-store-memory", str(100 * 2**20)]
    command += ["--num-cpus", f"{node.cpus:g}", "--num-gpus", str(node.gpus)]
    command += ["--resources", json.dumps(node.resources), "--labels", labels]
    command += ["--node-manager-port", str(manager), "--object-manager-port", str(objects)]
    command += ["--min-worker-port", str(base), "--max-worker-port", str(base + WORKER_PORTS - 1)]
    command += ["--dashboard-agent-listen-port", str(agent)]
    command += ["--dashboard-agent-grpc-port", str(agent_grpc)]
    command += ["--runtime-env-agent-port", str(env_agent), "--metrics-export-port", str(metrics)]
    if node is head:
        client, dashboard = _free_ports(2)
        # Never 6379 (Redis here), nor 8265/10001 (another Ray's dashboard, client server).
        command += ["--head", "--port", str(gcs_port), "--include-dashboard=false"]
        command += ["--dashboard-port", str(dashboard), "--ray-client-server-port", str(client)]
    else:
        command += ["--address", f"{head.ip}:{gcs_port}"]
    return command


class SimCluster:
    """The simulated cluster's ``ray start --block`` processes, and how to end only them."""

    def __init__(self, root: Path, nodes: list[SimNode]) -> None:
        self.root = root
        self.nodes = nodes
        self.gcs_port = _free_ports(1)[0]
        self.processes: list[subprocess.Popen] = []
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}

    @property
    def address(self) -> str:
        return f"{self.nodes[0].ip}:{self.gcs_port}"

    def _start(self, node: SimNode) -> Path:
        log = self.root / f"{node.name}.log"
        command = _node_command(node, self.nodes[0], self.gcs_port, self.root)
        with log.open("w") as out:
            self.processes.append(
                subprocess.Popen(
                    command,
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, for a scoped cleanup
                )
            )
        return log

    def start(self) -> None:
        """Start the nodes one after another, each once the one before says it runs.

        Starting them all at once on two slow cores left a raylet still starting when the
        driver gave up (4 of 5 joined); one at a time, each gets the machine to itself.
        """
        for node in self.nodes:
            self._wait_started(node, self._start(node), self.processes[-1])

    @staticmethod
    def _wait_started(node: SimNode, log: Path, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while "Ray runtime started" not in log.read_text():
            if process.poll() is not None:
                raise RuntimeError(
                    f"node {node.name} exited ({process.returncode}):\n{log.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"node {node.name} not started after {NODE_START_TIMEOUT_S}s; its log "
                    f"ends:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {node.name}:\n{(self.root / f'{node.name}.log').read_text()[-1500:]}"
            for node in self.nodes
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        for process in self.processes:
            # A group outlives its leader while any member is left: kill those.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def leftovers(self) -> list[int]:
        """Processes still in one of the nodes' process groups."""
        groups = {process.pid for process in self.processes}
        left = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.getpgid(int(entry.name)) in groups:
                        left.append(int(entry.name))
        return left


@pytest.fixture(scope="module")
def report() -> Iterator[Report]:
    # A short root: Ray's Unix socket paths under it must stay within 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="aimray-", dir="/tmp"))
    cluster = SimCluster(root, layout().nodes)
    try:
        cluster.start()
        yield _run_driver(cluster)
    finally:
        cluster.stop()
        deadline = time.monotonic() + 10
        while cluster.leftovers() and time.monotonic() < deadline:
            time.sleep(0.5)
        left = cluster.leftovers()
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"Ray processes of the simulated cluster left behind: {left}"


def _run_driver(cluster: SimCluster) -> Report:
    done = subprocess.run(
        [sys.executable, __file__, cluster.address],
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
        # The driver calls handles from synchronous code; the cluster keeps the fast paths.
        env={**os.environ, **SYNC_DRIVER_ENV, "RAY_AUTH_MODE": "disabled"},
    )
    print(done.stdout)  # the driver's placement table, shown by pytest on failure
    lines = [line for line in done.stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"scheduling driver failed ({done.returncode}):\n{done.stderr[-5000:]}\n"
            f"node logs:\n{cluster.log_tails()}"
        )
    return Report.model_validate_json(lines[-1].removeprefix(REPORT_PREFIX))


# -- the checks ------------------------------------------------------------------------------


def _gpu_nodes() -> set[str]:
    return {node.name for node in layout().nodes if node.gpus}


@pytest.mark.slow
def test_engine_lands_only_on_the_mi300x_node_its_recipe_needs(report: Report) -> None:
    # The recipe's bundles carry the accelerator type, and the replica rides in bundle 0.
    mi300x = layout().nodes[2].accelerator
    assert report.engine_strategy == "STRICT_PACK"
    assert len(report.engine_bundles) == 4
    assert all(bundle[f"accelerator_type:{mi300x}"] > 0 for bundle in report.engine_bundles)
    (engine,) = report.deployments[ENGINE]
    # The 8-GPU MI325X node had more room, and the 2-GPU MI300X node too little: neither.
    assert engine.node == "mi300x-4"
    assert engine.bundle_nodes == ["mi300x-4"] * 4


@pytest.mark.slow
def test_a_second_recipe_goes_to_the_other_mi300x_node_never_the_mi325x(report: Report) -> None:
    # TP 2 while the engine holds all four GPUs of mi300x-4.
    assert report.tp2_nodes == ["mi300x-2", "mi300x-2"]


@pytest.mark.slow
def test_strict_pack_keeps_tp4_on_one_node_rather_than_split(report: Report) -> None:
    # Two GPUs free on mi300x-4 and two on mi300x-2: four MI300X GPUs, but on two nodes.
    assert report.tp4_strict_nodes_when_split is None
    # The same bundles under PACK do fit, split: STRICT_PACK is what keeps them together,
    # and even split they never touch the MI325X node.
    split = report.tp4_pack_nodes_when_split
    assert split is not None
    assert set(split) == {"mi300x-4", "mi300x-2"}


@pytest.mark.slow
def test_tp8_without_an_8_gpu_mi300x_node_stays_pending(report: Report) -> None:
    assert report.tp8_nodes is None
    # The MI325X node has 8 free GPUs and CPUs enough: only the accelerator type kept it off.
    assert report.tp8_any_gpu_nodes == ["mi325x-8"] * 8


@pytest.mark.slow
def test_gateway_and_mcp_services_land_on_the_services_node(report: Report) -> None:
    for name in SERVICES:
        nodes = [replica.node for replica in report.deployments[name]]
        assert nodes and set(nodes) == {"services"}, f"{name}: {nodes}"
    assert len(report.deployments["Gateway"]) == 2
    assert len(report.deployments["ToolService"]) == 2


@pytest.mark.slow
def test_unpinned_service_replicas_spread_onto_gpu_nodes(report: Report) -> None:
    # Without a label selector (the laptop defaults, SERVICE_DEFAULTS) Serve's SPREAD puts
    # replicas on every node with a free CPU, GPU nodes included, even while the services
    # node has room: more of them land on GPU nodes than the two that do not fit there.
    unpinned = report.extra_replicas_unpinned
    assert None not in unpinned and "head" not in unpinned
    assert sum(node in _gpu_nodes() for node in unpinned) > 2, unpinned


@pytest.mark.slow
def test_pinned_service_replicas_wait_for_room_on_a_services_node(report: Report) -> None:
    # Pinned by the rendered label selector: never a GPU node; what does not fit waits.
    pinned = report.extra_replicas_pinned
    assert pinned.count("services") == 5, pinned
    assert pinned.count(None) == 2, pinned


# -- the driver (a process of its own) -------------------------------------------------------


class StandIn:
    """Takes a deployment's place with the same options, and says where it runs."""

    def where(self) -> dict[str, Any]:
        group = get_current_placement_group()
        bundles = placement_group_table(group)["bundles_to_node_id"] if group else {}
        return {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "node": ray.get_runtime_context().get_node_id(),
            "bundle_nodes": [bundles[index] for index in sorted(bundles)],
        }


class Probe:
    """A bare actor with a service's actor options: where would one more replica go?"""

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()


class Driver:
    def __init__(self) -> None:
        self.names = self._wait_for_nodes(len(layout().nodes))

    @staticmethod
    def _wait_for_nodes(count: int) -> dict[str, str]:
        """Every node started before the driver; this waits for the GCS to see them alive."""
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while True:
            alive = [node for node in ray.nodes() if node["Alive"]]
            if len(alive) == count:
                return {node["NodeID"]: node["Labels"][NODE_LABEL] for node in alive}
            if time.monotonic() > deadline:
                joined = {node["Labels"].get(NODE_LABEL) for node in alive}
                missing = [node.name for node in layout().nodes if node.name not in joined]
                raise TimeoutError(f"{len(alive)} of {count} nodes alive; missing: {missing}")
            time.sleep(1)

    # -- the app's own deployments

    @staticmethod
    def app_deployments() -> dict[str, Any]:
        """Every deployment of the rendered app, by name, with its real options."""
        found: dict[str, Any] = {}

        def walk(app: Application) -> None:
            deployment = app._bound_deployment
            found[deployment.name] = deployment
            for value in [*deployment.init_args, *deployment.init_kwargs.values()]:
                for item in value.values() if isinstance(value, dict) else [value]:
                    if isinstance(item, Application):
                        walk(item)

        walk(build_app(layout().app_args))
        return found

    def deploy_stand_in(self, deployment: Any) -> list[Replica]:
        app = deployment.options(func_or_class=StandIn, _init_args=(), _init_kwargs={}).bind()
        serve.run(app, name=deployment.name, route_prefix=None)
        states = serve.status().applications[deployment.name].deployments[deployment.name]
        running = states.replica_states.get("RUNNING", 0)
        handle = serve.get_app_handle(deployment.name)
        seen: dict[str, Replica] = {}
        for _ in range(200):  # random routing reaches every replica long before this
            if len(seen) == running:
                break
            where = handle.where.remote().result(timeout_s=30)
            seen[where["replica"]] = Replica(
                replica=where["replica"],
                node=self.names[where["node"]],
                bundle_nodes=[self.names[node] for node in where["bundle_nodes"]],
            )
        return list(seen.values())

    # -- raw placement groups from the recipe's bundles

    @staticmethod
    def engine_placement(hardware: str, gpus: int) -> tuple[list[dict[str, float]], str]:
        """The bundles and strategy Ray Serve LLM derives for the model's recipe."""
        spec = ModelSpec(model_id=MODEL, hardware=hardware, gpus=gpus)
        options = LLMServer.get_deployment_options(build_llm_config(spec))
        return options["placement_group_bundles"], options["placement_group_strategy"]

    @contextlib.contextmanager
    def reserved(
        self, bundles: list[dict[str, float]], strategy: str, wait_s: float = 20
    ) -> Iterator[list[str] | None]:
        """The node of each bundle once placed, or None if still pending after ``wait_s``."""
        group = placement_group(bundles, strategy=strategy)
        try:
            if not group.wait(timeout_seconds=wait_s):
                yield None
                return
            nodes = placement_group_table(group)["bundles_to_node_id"]
            yield [self.names[nodes[index]] for index in sorted(nodes)]
        finally:
            remove_placement_group(group)

    def probes(self, count: int, options: dict[str, Any], fits: int) -> list[str | None]:
        """Where ``count`` actors with ``options`` land (Serve's SPREAD); None: pending.

        Waits for the ``fits`` expected to be placeable (worker processes start slowly on
        a busy machine), then a few seconds more for any other.
        """
        actor = ray.remote(Probe).options(scheduling_strategy="SPREAD", **options)
        actors = [actor.remote() for _ in range(count)]
        refs = [probe.node.remote() for probe in actors]
        ready, rest = ray.wait(refs, num_returns=fits, timeout=PROBE_WAIT_S)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=PROBE_SETTLE_S)
            ready += more
        nodes = [self.names[ray.get(ref)] if ref in ready else None for ref in refs]
        for probe in actors:
            ray.kill(probe)
        return nodes


def _without_accelerator(bundles: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in b.items() if not k.startswith("accelerator_type:")} for b in bundles]


def drive() -> Report:
    driver = Driver()
    serve.start(proxy_location="Disabled")  # no HTTP: one proxy per node would share a port
    deployments = driver.app_deployments()
    placed = {name: driver.deploy_stand_in(d) for name, d in deployments.items()}
    engine = deployments[ENGINE]._replica_config

    with driver.reserved(*driver.engine_placement("MI300X", 2)) as tp2:
        tp2_nodes = tp2
    serve.delete(ENGINE)  # frees mi300x-4
    # Hold two of mi300x-4's GPUs, so four MI300X GPUs are free only across two nodes.
    holder = [{"GPU": 1, f"node:{layout().nodes[2].ip}": 0.001}] * 2
    tp4_bundles, tp4_strategy = driver.engine_placement("MI300X", 4)
    with driver.reserved(holder, "STRICT_PACK", wait_s=60) as held:
        if held != ["mi300x-4", "mi300x-4"]:
            raise RuntimeError(f"could not hold two GPUs of mi300x-4: {held}")
        with driver.reserved(tp4_bundles, tp4_strategy, wait_s=10) as strict:
            tp4_strict = strict
        with driver.reserved(tp4_bundles, "PACK") as pack:
            tp4_pack = pack
    tp8_bundles, tp8_strategy = driver.engine_placement("MI300X", 8)
    with driver.reserved(tp8_bundles, tp8_strategy, wait_s=10) as tp8:
        tp8_nodes = tp8
    with driver.reserved(_without_accelerator(tp8_bundles), tp8_strategy) as any_gpu:
        tp8_any_gpu = any_gpu

    # Seven more tool replicas: the services node has 1 CPU and the services hold 0.5 of it,
    # so five fit there.
    unpinned = driver.probes(7, SERVICE_DEFAULTS["ray_actor_options"], fits=7)
    pinned = driver.probes(7, deployments["ToolService"].ray_actor_options, fits=5)
    return Report(
        deployments=placed,
        engine_bundles=engine.placement_group_bundles,
        engine_strategy=engine.placement_group_strategy,
        tp2_nodes=tp2_nodes,
        tp4_strict_nodes_when_split=tp4_strict,
        tp4_pack_nodes_when_split=tp4_pack,
        tp8_nodes=tp8_nodes,
        tp8_any_gpu_nodes=tp8_any_gpu,
        extra_replicas_unpinned=unpinned,
        extra_replicas_pinned=pinned,
    )


def _print_table(report: Report) -> None:
    for name, replicas in report.deployments.items():
        for replica in replicas:
            bundles = f" bundles on {replica.bundle_nodes}" if replica.bundle_nodes else ""
            print(f"{name:28} replica {replica.replica[:8]} on {replica.node}{bundles}")
    for field in Report.model_fields:
        if field not in {"deployments", "engine_bundles"}:
            print(f"{field:28} {getattr(report, field)}")


def main(address: str) -> None:
    head = layout().nodes[0]
    ray.init(
        address=address,
        _node_ip_address=head.ip,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        report = drive()
    finally:
        serve.shutdown()
        ray.shutdown()
    _print_table(report)
    print(REPORT_PREFIX + report.model_dump_json())


if __name__ == "__main__":
    main(sys.argv[1])
