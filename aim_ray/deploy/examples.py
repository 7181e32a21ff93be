"""The committed examples in ``kuberay/``: what ``aim-ray render examples`` writes, and how.

``tests/test_kuberay.py`` checks that each file is byte for byte what the renderer writes now.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from aim_ray.config.app import ModelSpec
from aim_ray.config.mcp import MCPConfig
from aim_ray.deploy.manifests import dump_manifests
from aim_ray.deploy.options import GroupSize, RayServiceOptions
from aim_ray.deploy.rayservice import render_rayservice


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
