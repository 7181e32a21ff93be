"""The cluster side of a KubeRay deployment: everything about it that is not the application.

Owns ``RayServiceOptions`` (name, images, group sizes and pod resources, tolerations,
secrets, the Serve Service's type, who may reach it), the ports and
labels every manifest shares, and the metadata and pod labels they are stamped with.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class PodResources(BaseModel):
    """A pod's CPU and memory, as Kubernetes quantities (``8``, ``500m``; ``32Gi``)."""

    model_config = ConfigDict(extra="forbid")

    cpu: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$")
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")

    def over(self, limits: dict[str, str]) -> dict[str, str]:
        """``limits`` with the quantities set here in place of the computed ones."""
        return {**limits, **self.model_dump(exclude_none=True)}


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
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host headers to accept besides loopback and the Serve Service's own "
        "names, e.g. an Ingress hostname ('name' or 'name:*').",
    )
    engine_resources: PodResources = Field(default_factory=PodResources)
    services_resources: PodResources = Field(default_factory=PodResources)
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="The type of KubeRay's <name>-serve-svc Service."
    )
    ingress_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose pods may reach the Serve port (NetworkPolicy); "
        "empty: any source.",
    )


def service_hosts(options: RayServiceOptions) -> list[str]:
    """The Host headers in-cluster clients send to KubeRay's ``<name>-serve-svc`` Service."""
    service = f"{options.name}-serve-svc"
    names = [service]
    if options.namespace:
        names += [
            f"{service}.{options.namespace}.svc",
            f"{service}.{options.namespace}.svc.cluster.local",
        ]
    return [f"{name}:*" for name in names]


def pod_labels(options: RayServiceOptions, role: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "aim-ray",
        "app.kubernetes.io/instance": options.name,
        ROLE_LABEL: role,
    }


def metadata(options: RayServiceOptions, annotations: dict[str, str] | None = None):
    metadata: dict[str, Any] = {"name": options.name, "labels": pod_labels(options, "cluster")}
    metadata["labels"].pop(ROLE_LABEL)
    if options.namespace:
        metadata["namespace"] = options.namespace
    if annotations:
        metadata["annotations"] = annotations
    return metadata
