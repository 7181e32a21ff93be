"""``aim-ray render rayservice/examples``: KubeRay manifests from a recipe.

Owns turning the cluster options (node selectors, tolerations, group sizes) into
``RayServiceOptions``; the manifests themselves come from ``aim_ray.deploy`` (import-light:
rendering never loads Ray's runtime or vLLM), imported inside the commands so that the CLI's
start and ``--help`` do not load the config schemas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from aim_ray.cli.output import size, user_errors
from aim_ray.errors import AimRayError, validation_problems

render_app = typer.Typer(
    help="Kubernetes manifests: a KubeRay RayService from a recipe.", no_args_is_help=True
)


@render_app.command("rayservice")
def render_rayservice_command(
    from_config: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="A serve config: its aim-ray application (every model, the gateway settings, "
            "the mcp section or mcp_config_file) instead of --model/--hardware.",
        ),
    ] = None,
    app_name: Annotated[
        str | None, typer.Option("--app", help="With --from: which aim-ray application.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="The model id to serve, as in the recipes.")
    ] = None,
    hardware: Annotated[str | None, typer.Option(help="MI300X, MI325X, MI355X or CPU.")] = None,
    gpus: Annotated[int | None, typer.Option(min=1, help="GPUs a replica (default: fit).")] = None,
    precision: Annotated[str, typer.Option(help="auto, bf16, fp8, ...")] = "auto",
    metric: Annotated[str | None, typer.Option(help="latency or throughput.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Weights: a hub id or a path inside the image.")
    ] = None,
    mcp_config: Annotated[
        Path | None, typer.Option(help="YAML with an `mcp:` section (providers, tools).")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="Image with aim-ray (kuberay/Dockerfile.*).")
    ] = None,
    name: Annotated[str, typer.Option(help="The RayService's name.")] = "aim-ray",
    namespace: Annotated[str | None, typer.Option()] = None,
    min_engine_workers: Annotated[int, typer.Option(min=0)] = 1,
    max_engine_workers: Annotated[int, typer.Option(min=1)] = 1,
    min_service_workers: Annotated[int, typer.Option(min=0)] = 1,
    max_service_workers: Annotated[int, typer.Option(min=1)] = 1,
    upgrade_strategy: Annotated[
        str, typer.Option(help="NewCluster (zero-downtime) or None.")
    ] = "NewCluster",
    autoscaling: Annotated[bool, typer.Option(help="KubeRay's in-tree autoscaler.")] = True,
    node_selector: Annotated[
        list[str] | None, typer.Option(help="Repeatable key=value for the engine pods.")
    ] = None,
    toleration: Annotated[
        list[str] | None, typer.Option(help="Repeatable key[=value]:Effect for engine pods.")
    ] = None,
    shm_size: Annotated[str, typer.Option(help="/dev/shm of an engine pod.")] = "16Gi",
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Repeatable Host header to accept besides loopback and the Serve Service's "
            "own names, e.g. an Ingress hostname."
        ),
    ] = None,
    hf_token_secret: Annotated[
        str | None, typer.Option(help="Secret with key `token`; '' for none.")
    ] = "hf-token",
    api_keys_secret: Annotated[
        str | None, typer.Option(help="Secret with key `keys` (one API key a line).")
    ] = None,
    engine_cpu: Annotated[
        str | None, typer.Option(help="CPU of an engine pod (default: what the recipe needs).")
    ] = None,
    engine_memory: Annotated[
        str | None, typer.Option(help="Memory of an engine pod, e.g. 32Gi (default: 64Gi a GPU).")
    ] = None,
    services_cpu: Annotated[
        str | None, typer.Option(help="CPU of a gateway/MCP pod (default 4).")
    ] = None,
    services_memory: Annotated[
        str | None, typer.Option(help="Memory of a gateway/MCP pod (default 8Gi).")
    ] = None,
    service_type: Annotated[
        str, typer.Option(help="The Serve Service: ClusterIP, NodePort or LoadBalancer.")
    ] = "ClusterIP",
    ingress_namespace: Annotated[
        list[str] | None,
        typer.Option(
            help="Repeatable: only pods in these namespaces reach the Serve port "
            "(NetworkPolicy); default: any source."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Write a RayService (plus NetworkPolicy and PodMonitor) for a serve config's app
    (--from) or for MODEL on HARDWARE."""
    from aim_ray.config.app import AppArgs, ModelSpec
    from aim_ray.config.mcp import load_mcp_config
    from aim_ray.deploy.from_config import app_args_from, local_paths
    from aim_ray.deploy.manifests import dump_manifests
    from aim_ray.deploy.options import GroupSize, PodResources, RayServiceOptions
    from aim_ray.deploy.rayservice import render_rayservice_app

    with user_errors():
        try:
            options = RayServiceOptions(
                name=name,
                namespace=namespace,
                image=image,
                engine_workers=GroupSize(
                    min_replicas=min_engine_workers, max_replicas=max_engine_workers
                ),
                service_workers=GroupSize(
                    min_replicas=min_service_workers, max_replicas=max_service_workers
                ),
                upgrade_strategy=upgrade_strategy,
                autoscaling=autoscaling,
                node_selector=dict(_pair(p, "--node-selector") for p in node_selector or []),
                tolerations=[_toleration(t) for t in toleration or []],
                shm_size=shm_size,
                hf_token_secret=hf_token_secret or None,
                api_keys_secret=api_keys_secret,
                allowed_hosts=allowed_host or [],
                engine_resources=PodResources(cpu=engine_cpu, memory=engine_memory),
                services_resources=PodResources(cpu=services_cpu, memory=services_memory),
                service_type=service_type,
                ingress_namespaces=ingress_namespace or [],
            )
        except ValidationError as error:
            raise AimRayError("; ".join(validation_problems(error))) from None
        if from_config is not None:
            if model or hardware or mcp_config:
                raise AimRayError(
                    "--from takes the models and MCP config from the file: "
                    "leave out --model, --hardware and --mcp-config"
                )
            args = app_args_from(from_config, app_name)
        else:
            if not (model and hardware):
                raise AimRayError("give --from SERVE_CONFIG, or --model and --hardware")
            spec = ModelSpec(
                model_id=model,
                source=source,
                hardware=hardware,
                gpus=gpus,
                precision=precision,
                metric=metric,
            )
            mcp = load_mcp_config(mcp_config) if mcp_config else None
            args = AppArgs(models=[spec], mcp=mcp)
        documents, selections = render_rayservice_app(args, options)
    recipes = ", ".join(selection.recipe.id for selection in selections)
    text = dump_manifests(documents, f"# Written by `aim-ray render rayservice` ({recipes}).\n")
    if args.gateway.auth.enabled and not api_keys_secret:
        typer.echo(
            "note: API keys are on but no --api-keys-secret: the pods need the keys in "
            f"${args.gateway.auth.api_keys_env} or gateway.auth.api_keys_file",
            err=True,
        )
    for path in local_paths(args):
        typer.echo(f"note: {path} is a path in the pods: put it in the image or mount it", err=True)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    replicas = "; ".join(
        f"{s.recipe.id}, {size(s.hardware.kind, s.gpu_count)} an engine replica" for s in selections
    )
    typer.echo(f"wrote {output} ({replicas})")


@render_app.command("examples")
def render_examples(
    directory: Annotated[Path, typer.Option(help="Where the examples live.")] = Path("kuberay"),
) -> None:
    """Rewrite the committed examples in kuberay/ from the current recipes and code."""
    from aim_ray.config.mcp import load_mcp_config
    from aim_ray.deploy.examples import EXAMPLES, render_example

    with user_errors():
        for example in EXAMPLES:
            mcp = load_mcp_config(directory / example.mcp_config) if example.mcp_config else None
            (directory / example.file).write_text(render_example(example, mcp))
            typer.echo(f"wrote {directory / example.file}")


def _pair(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise AimRayError(f"{flag} takes key=value, not {text!r}")
    return key, value


def _toleration(text: str) -> dict[str, str]:
    spec, sep, effect = text.rpartition(":")
    effects = ("NoSchedule", "PreferNoSchedule", "NoExecute")
    if not sep or effect not in effects:
        raise AimRayError(f"--toleration takes key[=value]:Effect with Effect one of {effects}")
    key, has_value, value = spec.partition("=")
    if has_value:
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}
