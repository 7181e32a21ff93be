"""Kubernetes: a KubeRay ``RayService`` from the same recipe and config as a laptop.

Owns ``render_rayservice`` and its worker groups; the manifests beside it (``NetworkPolicy``,
Prometheus ``PodMonitor``) are ``deploy.manifests``, the cluster options ``deploy.options``.
The ``serveConfigV2`` inside is written by
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

from typing import Any

from aim_ray.config.app import AppArgs, ModelSpec
from aim_ray.config.gateway import GatewaySettings
from aim_ray.config.mcp import MCPConfig
from aim_ray.config.merge import deep_merge
from aim_ray.deploy.cluster_env import cluster_env
from aim_ray.deploy.manifests import network_policy, pod_monitor
from aim_ray.deploy.options import (
    AMD_GPU_RESOURCE,
    API_KEYS_KEY,
    DASHBOARD_PORT,
    DEFAULT_IMAGES,
    HF_TOKEN_KEY,
    METRICS_PORT,
    RAY_VERSION,
    ROLE_LABEL,
    SERVE_PORT,
    SERVICES_ROLE,
    GroupSize,
    RayServiceOptions,
    metadata,
    pod_labels,
    service_hosts,
)
from aim_ray.deploy.serve_config import dump_yaml, pin_model, render_serve_config
from aim_ray.engine.llm_config import llm_config_dict
from aim_ray.engine.mcp_fit import fit_mcp
from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.secrets import DEFAULT_SECRETS_DIR
from aim_ray.recipes.selection import Selection


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
    gateway.deployment_config = deep_merge(gateway.deployment_config, pin)
    if options.api_keys_secret:
        keys_file = DEFAULT_SECRETS_DIR / options.api_keys_secret / API_KEYS_KEY
        gateway.auth = gateway.auth.model_copy(
            update={"enabled": True, "api_keys_file": str(keys_file)}
        )
    gateway = _accepting_service_hosts(gateway, options)
    mcp = args.mcp.model_copy(deep=True) if args.mcp else None
    if mcp is not None:
        # Only the pin: build_service lays SERVICE_DEFAULTS under these options when the
        # app is built, as it does on a laptop.
        mcp.deployments.context = deep_merge(mcp.deployments.context, pin)
        mcp.deployments.tools = deep_merge(mcp.deployments.tools, pin)
    return args.model_copy(update={"gateway": gateway, "mcp": mcp})


def _accepting_service_hosts(
    gateway: GatewaySettings, options: RayServiceOptions
) -> GatewaySettings:
    """The gateway accepting the Host headers of its Service and of ``options.allowed_hosts``:
    its default accepts loopback only (DNS-rebinding guard), which in a pod no client sends."""
    hosts = [*gateway.allowed_hosts, *service_hosts(options), *options.allowed_hosts]
    settings = gateway.model_dump(exclude_unset=True)
    settings["allowed_hosts"] = list(dict.fromkeys(hosts))
    # The old spelling's lists were folded into the gateway's when it was validated.
    transport = settings.pop("mcp_transport", {})
    transport = {
        k: v for k, v in transport.items() if k not in ("allowed_hosts", "allowed_origins")
    }
    if transport:
        settings["mcp_transport"] = transport
    settings.setdefault("allowed_origins", gateway.allowed_origins)
    return GatewaySettings.model_validate(settings)


def render_rayservice(
    spec: ModelSpec,
    options: RayServiceOptions,
    *,
    mcp: MCPConfig | None = None,
    gateway: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], Selection]:
    """The RayService, NetworkPolicy and PodMonitor for one model, and the recipe choice."""
    args = AppArgs.model_validate({"models": [spec], "gateway": gateway or {}, "mcp": mcp})
    documents, selections = render_rayservice_app(args, options)
    return documents, selections[0]


def render_rayservice_app(
    args: AppArgs, options: RayServiceOptions
) -> tuple[list[dict[str, Any]], list[Selection]]:
    """The manifests for a whole application (a serve config's args, its ``mcp:`` section
    read in): one engine group per model, the gateway settings and MCP section as written,
    checked against the recipes as ``build_app`` would."""
    for index, spec in enumerate(args.models):
        if spec.hardware == "auto":
            raise AimRayError(
                f"models[{index}] ({spec.model_id}): hardware is auto; name the cluster's "
                "(MI300X, MI325X, MI355X or CPU): it cannot be detected from here"
            )
    pinned = [pin_model(spec) for spec in args.models]
    selections = [selection for _, selection in pinned]
    local = fit_mcp(args.model_copy(update={"models": [spec for spec, _ in pinned]}), selections)
    serve_config = render_serve_config(
        cluster_app_args(local, options), host="0.0.0.0", port=SERVE_PORT
    )
    secrets = secret_names(local.mcp)
    if options.api_keys_secret:
        secrets.append(options.api_keys_secret)
    engines = [
        _engine_group(
            selection,
            llm_config_dict(spec, selection),
            options,
            _engine_group_name(selection, index if len(pinned) > 1 else None),
        )
        for index, (spec, selection) in enumerate(pinned)
    ]
    cluster = {
        "rayVersion": RAY_VERSION,
        "enableInTreeAutoscaling": options.autoscaling,
        "headGroupSpec": _head_group(options),
        "workerGroupSpecs": [_services_group(options, secrets), *engines],
    }
    if options.autoscaling:
        cluster["autoscalerOptions"] = {"upscalingMode": "Default", "idleTimeoutSeconds": 300}
    recipes = ", ".join(dict.fromkeys(selection.recipe.id for selection in selections))
    spec: dict[str, Any] = {
        "upgradeStrategy": {"type": options.upgrade_strategy},
        "serveConfigV2": dump_yaml(serve_config),
        "rayClusterConfig": cluster,
    }
    if options.service_type != "ClusterIP":
        # KubeRay keeps the selector and the serve port of its own Service; only the type.
        spec["serveService"] = {
            "metadata": {"name": f"{options.name}-serve-svc"},
            "spec": {"type": options.service_type},
        }
    service = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": metadata(options, {"aim-ray.io/recipe": recipes}),
        "spec": spec,
    }
    documents = [_without_empty(service), network_policy(options, local.mcp), pod_monitor(options)]
    return documents, selections


# -- groups ----------------------------------------------------------------------------------


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
            "metadata": {"labels": pod_labels(options, "head")},
            "spec": {"containers": [container]},
        },
    }


def _services_group(options: RayServiceOptions, secrets: list[str]) -> dict[str, Any]:
    ports = [("serve", SERVE_PORT), ("metrics", METRICS_PORT)]
    limits = options.services_resources.over({"cpu": "4", "memory": "8Gi"})
    container = _container("ray-worker", options.image or DEFAULT_IMAGES["CPU"], ports, limits)
    # Only the gateway and the MCP services read secrets, so only their pods mount them.
    _mount_secrets(container, secrets)
    return {
        "groupName": SERVICES_ROLE,
        **_size(options.service_workers),
        "rayStartParams": {"metrics-export-port": str(METRICS_PORT)},
        "labels": {ROLE_LABEL: SERVICES_ROLE},
        "template": {
            "metadata": {"labels": pod_labels(options, SERVICES_ROLE)},
            "spec": {"containers": [container], "volumes": _secret_volumes(secrets)},
        },
    }


def _engine_group_name(selection: Selection, index: int | None) -> str:
    base = selection.hardware.kind.lower() if selection.hardware.is_gpu else "engine"
    return base if index is None else f"{base}-{index}"


def _engine_group(
    selection: Selection, profile: dict[str, Any], options: RayServiceOptions, name: str
) -> dict[str, Any]:
    gpus = selection.gpu_count if selection.hardware.is_gpu else 0
    cpus = _engine_cpus(profile)
    limits = {"cpu": str(cpus), "memory": f"{max(16, 64 * gpus)}Gi"}
    limits = options.engine_resources.over(limits)
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
        "groupName": name,
        **_size(options.engine_workers),
        "rayStartParams": {"metrics-export-port": str(METRICS_PORT)},
        "labels": {ROLE_LABEL: "engine"},
        "template": {"metadata": {"labels": pod_labels(options, "engine")}, "spec": pod_spec},
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
        # Every Ray process of the pod reads these when it starts.
        "env": [{"name": k, "value": v} for k, v in cluster_env().items()],
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
