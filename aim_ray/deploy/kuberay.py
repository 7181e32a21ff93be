"""Kubernetes manifests: a KubeRay ``RayService`` from the same recipe and config as a laptop.

Owns ``render_rayservice`` and the manifests that go beside it (``NetworkPolicy``,
Prometheus ``PodMonitor``). The ``serveConfigV2`` inside is written by
``deploy.serve_config.render_serve_config``, the code that writes ``serve_configs/``; what the
cluster adds is placement, never a different application:

- the **head** runs Ray's control plane and the Serve controller and no replicas
  (``num-cpus: 0``), so a busy proxy or a crashed replica never takes the GCS down;
- a **services** group (CPU only) runs the gateway and the MCP deployments: the app
  args ask for Ray nodes labelled ``aim-ray.io/role=services`` (a Ray label selector), so
  these replicas never take CPUs a GPU node's engine needs;
- an **engine** group runs the vLLM replicas: one pod per engine replica with the
  recipe's GPU count as ``amd.com/gpu``, the accelerator type as a Ray resource (what
  the engine's ``accelerator_type`` asks for), the ROCm env of the recipe, and
  ``/dev/shm`` as memory for tensor-parallel workers. A CPU recipe gets a CPU group.

Secrets are referenced, never inlined: each ``secret_name`` in the MCP config, the
gateway's API keys and the Hugging Face token are Kubernetes Secrets mounted where
``aim_ray.mcp.backends.secrets`` looks (``/var/run/secrets/aim-ray/<name>/<key>``).

Readiness: KubeRay routes the ``<name>-serve-svc`` Service only to pods whose Serve
proxy answers its health check and marks the RayService ready only when every Serve
application is RUNNING (which our gateway reaches only once each engine is healthy), so
no probe of our own is added: one would replace KubeRay's.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aim_ray.config.mcp import MCPConfig
from aim_ray.config.merge import deep_merge as deep_merge_dicts
from aim_ray.deploy.serve_config import dump_yaml, pin_model, render_serve_config
from aim_ray.engine.llm_config import ModelSpec
from aim_ray.mcp.backends.secrets import DEFAULT_SECRETS_DIR
from aim_ray.recipes.recipe import Selection
from aim_ray.serving.app import AppArgs

RAY_VERSION = "2.60.0"
SERVE_PORT = 8000
METRICS_PORT = 8080
DASHBOARD_PORT = 8265
ROLE_LABEL = "aim-ray.io/role"
SERVICES_ROLE = "services"
# Images built from kuberay/Dockerfile.{cpu,rocm}; push them and pass --image.
DEFAULT_IMAGES = {"CPU": "aim-ray:0.1.0-cpu", "GPU": "aim-ray:0.1.0-rocm"}
API_KEYS_KEY = "keys"
HF_TOKEN_KEY = "token"
# AMD's vLLM Docker guide runs with --shm-size 16G; tensor-parallel workers exchange
# activations through /dev/shm. https://rocm.docs.amd.com/en/latest/how-to/rocm-for-ai/inference/benchmark-docker/vllm.html
DEFAULT_SHM = "16Gi"
# The AMD GPU device plugin's resource; the GPU operator taints GPU nodes with this key.
# https://instinct.docs.amd.com/projects/gpu-operator/en/latest/
AMD_GPU_RESOURCE = "amd.com/gpu"


class GroupSize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> GroupSize:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


class RayServiceOptions(BaseModel):
    """Everything about the cluster that is not the application."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="aim-ray", pattern=r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
    namespace: str | None = None
    image: str | None = Field(default=None, description="Default: by hardware, see README.")
    engine_workers: GroupSize = Field(default_factory=GroupSize)
    service_workers: GroupSize = Field(default_factory=GroupSize)
    upgrade_strategy: Literal["NewCluster", "None"] = "NewCluster"
    autoscaling: bool = Field(default=True, description="KubeRay's in-tree autoscaler.")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    shm_size: str = DEFAULT_SHM
    hf_token_secret: str | None = Field(default="hf-token", description="Secret key `token`.")
    api_keys_secret: str | None = Field(default=None, description="Secret key `keys`.")


def secret_names(mcp: MCPConfig | None) -> list[str]:
    """Every ``secret_name`` the MCP config refers to, in order, once each."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("secret_name"), str):
                found.append(node["secret_name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if mcp is not None:
        walk(mcp.model_dump(mode="json"))
    return list(dict.fromkeys(found))


def cluster_app_args(args: AppArgs, options: RayServiceOptions) -> AppArgs:
    """The app args with the services pinned to the services group (and API keys on)."""
    pin = {"ray_actor_options": {"label_selector": {ROLE_LABEL: SERVICES_ROLE}}}
    gateway = args.gateway.model_copy(deep=True)
    gateway.deployment_config = deep_merge_dicts(gateway.deployment_config, pin)
    if options.api_keys_secret:
        keys_file = DEFAULT_SECRETS_DIR / options.api_keys_secret / API_KEYS_KEY
        gateway.auth = gateway.auth.model_copy(
            update={"enabled": True, "api_keys_file": str(keys_file)}
        )
    mcp = args.mcp.model_copy(deep=True) if args.mcp else None
    if mcp is not None:
        # Only the pin: build_service lays SERVICE_DEFAULTS under these options when the
        # app is built, as it does on a laptop.
        mcp.deployments.context = deep_merge_dicts(mcp.deployments.context, pin)
        mcp.deployments.tools = deep_merge_dicts(mcp.deployments.tools, pin)
    return args.model_copy(update={"gateway": gateway, "mcp": mcp})


def render_rayservice(
    spec: ModelSpec,
    options: RayServiceOptions,
    *,
    mcp: MCPConfig | None = None,
    gateway: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], Selection]:
    """The RayService, NetworkPolicy and PodMonitor for one model, and the recipe choice."""
    pinned, selection = pin_model(spec)
    local = AppArgs.model_validate({"models": [pinned], "gateway": gateway or {}, "mcp": mcp})
    serve_config = render_serve_config(
        cluster_app_args(local, options), host="0.0.0.0", port=SERVE_PORT
    )
    profile = selection.llm_config()
    secrets = secret_names(mcp)
    if options.api_keys_secret:
        secrets.append(options.api_keys_secret)
    cluster = {
        "rayVersion": RAY_VERSION,
        "enableInTreeAutoscaling": options.autoscaling,
        "headGroupSpec": _head_group(options),
        "workerGroupSpecs": [
            _services_group(options, secrets),
            _engine_group(selection, profile, options),
        ],
    }
    if options.autoscaling:
        cluster["autoscalerOptions"] = {"upscalingMode": "Default", "idleTimeoutSeconds": 300}
    service = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": _metadata(options, {"aim-ray.io/recipe": selection.recipe.id}),
        "spec": {
            "upgradeStrategy": {"type": options.upgrade_strategy},
            "serveConfigV2": dump_yaml(serve_config),
            "rayClusterConfig": cluster,
        },
    }
    documents = [_without_empty(service), network_policy(options, mcp), pod_monitor(options)]
    return documents, selection


class _ManifestDumper(yaml.SafeDumper):
    """Block style for multi-line strings, so ``serveConfigV2`` reads as the YAML it is,
    and no anchors: every manifest reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _str_representer)


def dump_manifests(documents: list[dict[str, Any]], header: str) -> str:
    dumped = [yaml.dump(d, Dumper=_ManifestDumper, sort_keys=False) for d in documents]
    return header + "---\n".join(dumped)


# -- groups ----------------------------------------------------------------------------------


def _pod_labels(options: RayServiceOptions, role: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "aim-ray",
        "app.kubernetes.io/instance": options.name,
        ROLE_LABEL: role,
    }


def _metadata(options: RayServiceOptions, annotations: dict[str, str] | None = None):
    metadata: dict[str, Any] = {"name": options.name, "labels": _pod_labels(options, "cluster")}
    metadata["labels"].pop(ROLE_LABEL)
    if options.namespace:
        metadata["namespace"] = options.namespace
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def _head_group(options: RayServiceOptions) -> dict[str, Any]:
    ports = [
        ("gcs-server", 6379),
        ("dashboard", DASHBOARD_PORT),
        ("client", 10001),
        ("serve", SERVE_PORT),
        ("metrics", METRICS_PORT),
    ]
    container = _container(
        "ray-head", options.image or DEFAULT_IMAGES["CPU"], ports, {"cpu": "2", "memory": "8Gi"}
    )
    # The head builds the app (resolving model sources); the secrets stay with the services.
    _add_hf_token(container, options)
    return {
        # No replicas on the head: Ray's control plane stays out of the data path.
        "rayStartParams": {"num-cpus": "0", "metrics-export-port": str(METRICS_PORT)},
        "template": {
            "metadata": {"labels": _pod_labels(options, "head")},
            "spec": {"containers": [container]},
        },
    }


def _services_group(options: RayServiceOptions, secrets: list[str]) -> dict[str, Any]:
    ports = [("serve", SERVE_PORT), ("metrics", METRICS_PORT)]
    container = _container(
        "ray-worker", options.image or DEFAULT_IMAGES["CPU"], ports, {"cpu": "4", "memory": "8Gi"}
    )
    # Only the gateway and the MCP services read secrets, so only their pods mount them.
    _mount_secrets(container, secrets)
    return {
        "groupName": SERVICES_ROLE,
        **_size(options.service_workers),
        "rayStartParams": {"metrics-export-port": str(METRICS_PORT)},
        "labels": {ROLE_LABEL: SERVICES_ROLE},
        "template": {
            "metadata": {"labels": _pod_labels(options, SERVICES_ROLE)},
            "spec": {"containers": [container], "volumes": _secret_volumes(secrets)},
        },
    }


def _engine_group(
    selection: Selection, profile: dict[str, Any], options: RayServiceOptions
) -> dict[str, Any]:
    gpus = selection.gpu_count if selection.hardware.is_gpu else 0
    cpus = _engine_cpus(profile)
    limits = {"cpu": str(cpus), "memory": f"{max(16, 64 * gpus)}Gi"}
    if gpus:
        limits[AMD_GPU_RESOURCE] = str(gpus)
    image = options.image or DEFAULT_IMAGES["GPU" if gpus else "CPU"]
    container = _container("ray-worker", image, [("metrics", METRICS_PORT)], limits)
    env = (profile.get("runtime_env") or {}).get("env_vars") or {}
    container["env"] += [{"name": k, "value": str(v)} for k, v in env.items()]
    container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})
    _add_hf_token(container, options)
    shm = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": options.shm_size}}
    pod_spec: dict[str, Any] = {"containers": [container], "volumes": [shm]}
    tolerations = list(options.tolerations)
    if gpus:
        tolerations.insert(
            0, {"key": AMD_GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        )
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if options.node_selector:
        pod_spec["nodeSelector"] = dict(options.node_selector)
    group: dict[str, Any] = {
        "groupName": "engine" if not gpus else selection.hardware.kind.lower(),
        **_size(options.engine_workers),
        "rayStartParams": {"metrics-export-port": str(METRICS_PORT)},
        "labels": {ROLE_LABEL: "engine"},
        "template": {"metadata": {"labels": _pod_labels(options, "engine")}, "spec": pod_spec},
    }
    accelerator = profile.get("accelerator_type")
    if accelerator:
        # Ray detects this itself from amd-smi; stating it keeps scheduling right when
        # detection fails in a container, and is what the engine's options ask for.
        group["rayStartParams"]["num-gpus"] = str(gpus)
        group["resources"] = {f"accelerator_type:{accelerator}": "1"}
    return group


def _engine_cpus(profile: dict[str, Any]) -> int:
    """CPUs one engine replica reserves (its placement group), plus two for Ray itself."""
    placement = profile.get("placement_group_config") or {}
    bundle = placement.get("bundle_per_worker") or {}
    workers = (profile.get("engine_kwargs") or {}).get("tensor_parallel_size", 1)
    actor = ((profile.get("deployment_config") or {}).get("ray_actor_options") or {}).get(
        "num_cpus", 1
    )
    return int(bundle.get("CPU", 1) * workers + actor + 2)


def _size(size: GroupSize) -> dict[str, int]:
    return {
        "replicas": size.min_replicas,
        "minReplicas": size.min_replicas,
        "maxReplicas": size.max_replicas,
    }


def _container(
    name: str, image: str, ports: list[tuple[str, int]], limits: dict[str, str]
) -> dict[str, Any]:
    requests = {k: v for k, v in limits.items() if k != AMD_GPU_RESOURCE}
    return {
        "name": name,
        "image": image,
        "ports": [{"name": n, "containerPort": p} for n, p in ports],
        "resources": {"limits": dict(limits), "requests": requests},
        "env": [],
        "volumeMounts": [],
    }


def _mount_secrets(container: dict[str, Any], secrets: list[str]) -> None:
    for name in secrets:
        container["volumeMounts"].append(
            {
                "name": _secret_volume_name(name),
                "mountPath": str(DEFAULT_SECRETS_DIR / name),
                "readOnly": True,
            }
        )


def _add_hf_token(container: dict[str, Any], options: RayServiceOptions) -> None:
    if options.hf_token_secret:
        reference = {"name": options.hf_token_secret, "key": HF_TOKEN_KEY, "optional": True}
        container["env"].append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": reference}})


def _secret_volumes(secrets: list[str]) -> list[dict[str, Any]]:
    return [{"name": _secret_volume_name(n), "secret": {"secretName": n}} for n in secrets]


def _secret_volume_name(secret: str) -> str:
    # Volume names are DNS labels: at most 63 characters, no dots.
    return f"secret-{secret.replace('.', '-')}"[:63].rstrip("-")


def _without_empty(node: Any) -> Any:
    """The pod specs are built up field by field; leave out the fields that stayed empty."""
    if isinstance(node, dict):
        return {k: _without_empty(v) for k, v in node.items() if v not in ([], {})}
    if isinstance(node, list):
        return [_without_empty(v) for v in node]
    return node


# -- beside the RayService ----------------------------------------------------------------------


def provider_endpoints(mcp: MCPConfig | None) -> list[tuple[str, int]]:
    """(host, port) of every configured service the cluster must reach, in order."""
    if mcp is None:
        return []
    found: list[tuple[str, int]] = []
    entries = [p.model_dump(mode="json") for p in mcp.providers if p.enabled]
    entries += [t.model_dump(mode="json") for t in mcp.tools if t.enabled]
    for entry in entries:
        config = entry.get("config") or {}
        if config.get("host") and config.get("port"):
            found.append((config["host"], int(config["port"])))
        for key in ("base_url", "url", "endpoint"):
            if isinstance(config.get(key), str):
                url = urlsplit(config[key])
                if url.hostname:
                    found.append((url.hostname, url.port or _default_port(url.scheme)))
    return list(dict.fromkeys(found))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def network_policy(options: RayServiceOptions, mcp: MCPConfig | None) -> dict[str, Any]:
    """Ingress: the Serve port from anywhere, Ray's ports only among the cluster's own pods,
    the dashboard for the KubeRay operator, metrics for Prometheus. Egress: the cluster's
    pods, DNS, the configured providers and 443."""
    own = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": options.name}}}
    in_namespace = lambda name: {  # noqa: E731 - a tiny selector factory
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}
    }
    egress = [
        {"to": [own]},
        {
            "to": [in_namespace("kube-system")],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        # Model hubs, web_fetch/web_search targets and the Kubernetes API (autoscaler).
        {"ports": [{"protocol": "TCP", "port": 443}]},
    ]
    for host, port in provider_endpoints(mcp):
        rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
        if _is_ip(host):
            rule["to"] = [{"ipBlock": {"cidr": f"{host}/32"}}]
        egress.append(rule)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(options) | {"name": f"{options.name}-network"},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/instance": options.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"ports": [{"protocol": "TCP", "port": SERVE_PORT}]},
                {"from": [own]},
                {
                    "from": [in_namespace("kuberay-system")],
                    "ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}],
                },
                {
                    "from": [in_namespace("monitoring")],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                },
            ],
            "egress": egress,
        },
    }


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def pod_monitor(options: RayServiceOptions) -> dict[str, Any]:
    """Prometheus Operator scrape of every Ray pod's metrics port (ours, Serve's, vLLM's)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _metadata(options) | {"name": f"{options.name}-metrics"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/instance": options.name}},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
        },
    }


# -- the committed examples ----------------------------------------------------------------------


class Example(BaseModel):
    """One file of ``kuberay/``: what ``aim-ray render rayservice`` is given to write it."""

    file: str
    model: str
    hardware: str
    gpus: int | None = None
    precision: str = "auto"
    source: str | None = None
    mcp_config: str | None = Field(default=None, description="Relative to kuberay/.")
    options: RayServiceOptions = Field(default_factory=RayServiceOptions)


EXAMPLES = [
    Example(
        file="cpu-demo.yaml",
        model="HuggingFaceTB/SmolLM2-135M-Instruct",
        hardware="CPU",
        # Explicit: the pods' CPU is not the rendering machine's, whose flags "auto" reads.
        precision="bf16",
        source="embedded:smollm2-135m-instruct",
        options=RayServiceOptions(name="aim-ray-cpu-demo", hf_token_secret=None),
    ),
    Example(
        file="qwen3-32b-mi300x-1.yaml",
        model="Qwen/Qwen3-32B",
        hardware="MI300X",
        gpus=1,
        options=RayServiceOptions(
            name="aim-ray-qwen3-32b", engine_workers=GroupSize(min_replicas=1, max_replicas=4)
        ),
    ),
    Example(
        file="llama-3.3-70b-fp8-mi300x-8.yaml",
        model="meta-llama/Llama-3.3-70B-Instruct",
        hardware="MI300X",
        gpus=8,
        precision="fp8",
        mcp_config="mcp-providers.yaml",
        options=RayServiceOptions(
            name="aim-ray-llama-70b",
            api_keys_secret="aim-ray-api-keys",
            service_workers=GroupSize(min_replicas=1, max_replicas=4),
            engine_workers=GroupSize(min_replicas=1, max_replicas=2),
        ),
    ),
]


def render_example(example: Example, mcp: MCPConfig | None) -> str:
    spec = ModelSpec(
        model_id=example.model,
        source=example.source,
        hardware=example.hardware,
        gpus=example.gpus,
        precision=example.precision,
    )
    documents, selection = render_rayservice(spec, example.options, mcp=mcp)
    header = f"# Written by `aim-ray render examples` ({selection.recipe.id}); do not edit.\n"
    return dump_manifests(documents, header)
