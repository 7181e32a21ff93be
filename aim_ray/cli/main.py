"""The ``aim-ray`` command line: one tool for recipes, configs, rendering and MCP.

Owns the typer app, its sub-apps and how errors reach the user: an ``AimRayError`` prints
one line and exits with code 2, never a traceback. Commands stay thin; the logic lives in
the modules they call (``aim_ray.recipes``, ``aim_ray.engine``, ...). Add a sub-app with
``app.add_typer(<name>_app, name="<name>")`` and wrap its work in ``user_errors()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Column, Table

from aim_ray.config.edit import add_entry, dump_yaml
from aim_ray.engine.models import DEFAULT_EMBEDDED, prepare_embedded
from aim_ray.errors import AimRayError, dotted_location
from aim_ray.recipes.hardware import resolve_hardware
from aim_ray.recipes.recipe import TIER_LABELS, Recipe, Selection, load_catalog, select_recipe

app = typer.Typer(
    help="LLM inference for AMD Instinct GPUs as a Ray Serve application.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
recipes_app = typer.Typer(
    help="Recipes: how each model runs on each GPU, and which one fits.", no_args_is_help=True
)
app.add_typer(recipes_app, name="recipes")

console = Console()

# Ray Serve LLM sends the root logger to stderr at INFO when imported, and vLLM's import
# then logs start-up notes (Triton missing, ...) that are noise before a CLI's answer.
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
logging.getLogger("vllm").setLevel(logging.WARNING)

_MODEL_PLACEHOLDER = "<model-id>"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an ``AimRayError`` into a one-line message on stderr and exit code 2."""
    try:
        yield
    except AimRayError as exc:
        # typer.echo, not rich: rich would wrap a long message onto several lines.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


@recipes_app.command("list")
def list_recipes(
    model: Annotated[
        str | None, typer.Option(help="Only recipes that can serve this model id.")
    ] = None,
    hardware: Annotated[
        str | None,
        typer.Option(help="Only recipes for this GPU: MI300X, MI325X, MI355X, CPU, auto."),
    ] = None,
) -> None:
    """List the recipes on the search path, in search order."""
    with user_errors():
        kind = resolve_hardware(hardware).kind if hardware else None
        recipes = load_catalog().matching(model, kind)
    if not recipes:
        typer.echo("no recipe matches")
        return
    console.print(_recipe_table(recipes))


@recipes_app.command("show")
def show_recipe(
    recipe_id: Annotated[str, typer.Argument(help="A recipe id, as `recipes list` prints it.")],
    gpus: Annotated[
        int | None, typer.Option(min=1, help="Only the profile for this GPU count.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="For a general recipe: the model to show it for.")
    ] = None,
) -> None:
    """Show a recipe file and the Ray Serve LLMConfig each of its profiles becomes."""
    with user_errors():
        recipe = load_catalog().get(recipe_id)
        bound = recipe.for_model(model or _MODEL_PLACEHOLDER)
        counts = [gpus] if gpus else recipe.gpu_counts
        configs = {count: bound.llm_config(count) for count in counts}
    console.print(f"[bold]{recipe.id}[/bold] ({TIER_LABELS[recipe.tier]}, {recipe.path})")
    if recipe.path:
        typer.echo(Path(recipe.path).read_text())
    for count, config in configs.items():
        console.print(f"[bold]LLMConfig for {_size(recipe.hardware, count)}:[/bold]")
        typer.echo(yaml.safe_dump(config, sort_keys=False))


@recipes_app.command("select")
def select(
    model: Annotated[str, typer.Option(help="The model id to serve, e.g. Qwen/Qwen3-32B.")],
    hardware: Annotated[
        str, typer.Option(help="MI300X, MI325X, MI355X, CPU, or auto to detect.")
    ] = "auto",
    gpus: Annotated[
        int | None, typer.Option(min=1, help="Use exactly this many GPUs a replica.")
    ] = None,
    precision: Annotated[
        str, typer.Option(help="auto (lowest available), or bf16, fp16, fp8, int8, int4, ...")
    ] = "auto",
    metric: Annotated[str | None, typer.Option(help="latency or throughput.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Choose the recipe and GPU count for a model, and explain the choice."""
    with user_errors():
        found = resolve_hardware(hardware)
        selection = select_recipe(model, found, gpu_count=gpus, precision=precision, metric=metric)
        config = selection.llm_config()
    if as_json:
        typer.echo(json.dumps(_selection_json(selection, config), indent=2, ensure_ascii=False))
        return
    recipe = selection.recipe
    console.print(
        f"[bold]{recipe.id}[/bold] on {_size(recipe.hardware, selection.gpu_count)} "
        f"({TIER_LABELS[recipe.tier]}, {recipe.path})"
    )
    for reason in selection.reasons:
        console.print(f"  - {reason}", highlight=False, markup=False)
    console.print("[bold]LLMConfig:[/bold]")
    typer.echo(yaml.safe_dump(config, sort_keys=False))


# ------------------------------------------------------------ models, config, serve-config

models_app = typer.Typer(help="Prepare and locate model weights.", no_args_is_help=True)
config_app = typer.Typer(help="Check Serve configs before a deploy.", no_args_is_help=True)
serve_config_app = typer.Typer(help="Write Serve configs from recipes.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.add_typer(serve_config_app, name="serve-config")


@models_app.command("prepare")
def prepare_model(
    name: Annotated[str, typer.Argument(help="The embedded model to prepare.")] = DEFAULT_EMBEDDED,
) -> None:
    """Turn the packaged GGUF into a cached Hugging Face folder (once; atomic)."""
    with user_errors(), console.status(f"preparing {name}") as status:
        folder = prepare_embedded(name, progress=lambda message: status.update(message))
    console.print(f"[green]ready[/green] {folder}", highlight=False)


@config_app.command("validate")
def validate_config(
    path: Annotated[Path, typer.Argument(help="A Serve config (serve run / serveConfigV2).")],
) -> None:
    """Report every problem in a Serve config with its location; exit 1 if there are any."""
    # Imported here: these pull in ray.serve.llm and vLLM (~10 s), which --help need not pay.
    from aim_ray.deploy.serve_config import validate_serve_config

    with user_errors():
        problems = validate_serve_config(path)
    for problem in problems:
        typer.echo(f"{path}: {problem}", err=True)
    if problems:
        raise typer.Exit(code=1)
    typer.echo(f"{path}: valid")


@serve_config_app.command("render")
def render_config(
    model: Annotated[str, typer.Option(help="The model id to serve, as in the recipes.")],
    hardware: Annotated[str, typer.Option(help="MI300X, MI325X, MI355X, CPU or auto.")] = "auto",
    gpus: Annotated[int | None, typer.Option(min=1, help="GPUs a replica (default: fit).")] = None,
    precision: Annotated[str, typer.Option(help="auto, bf16, fp8, ...")] = "auto",
    metric: Annotated[str | None, typer.Option(help="latency or throughput.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Weights: embedded:<name>, a folder or a hub id.")
    ] = None,
    served_name: Annotated[str | None, typer.Option(help="The id clients send.")] = None,
    host: Annotated[str, typer.Option(help="Serve proxy host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Serve proxy port.")] = 8000,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Write a Serve config that runs aim-ray with the recipe chosen for MODEL."""
    from aim_ray.deploy.serve_config import dump_yaml, pin_model, render_serve_config
    from aim_ray.engine.llm_config import ModelSpec
    from aim_ray.serving.app import AppArgs

    with user_errors():
        spec = ModelSpec(
            model_id=model,
            source=source,
            served_name=served_name,
            hardware=hardware,
            gpus=gpus,
            precision=precision,
            metric=metric,
        )
        pinned, selection = pin_model(spec)
    config = render_serve_config(AppArgs(models=[pinned]), host=host, port=port)
    text = dump_yaml(
        config, f"# Written by `aim-ray serve-config render` ({selection.recipe.id}).\n"
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    typer.echo(
        f"wrote {output} ({selection.recipe.id}, {_size(pinned.hardware, selection.gpu_count)})"
    )


# ------------------------------------------------------------------------------- render

render_app = typer.Typer(
    help="Kubernetes manifests: a KubeRay RayService from a recipe.", no_args_is_help=True
)
app.add_typer(render_app, name="render")


@render_app.command("rayservice")
def render_rayservice_command(
    model: Annotated[str, typer.Option(help="The model id to serve, as in the recipes.")],
    hardware: Annotated[str, typer.Option(help="MI300X, MI325X, MI355X or CPU.")],
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
    hf_token_secret: Annotated[
        str | None, typer.Option(help="Secret with key `token`; '' for none.")
    ] = "hf-token",
    api_keys_secret: Annotated[
        str | None, typer.Option(help="Secret with key `keys` (one API key a line).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Write a RayService (plus NetworkPolicy and PodMonitor) for MODEL on HARDWARE."""
    from pydantic import ValidationError

    from aim_ray.config.mcp import load_mcp_config
    from aim_ray.deploy.kuberay import (
        GroupSize,
        RayServiceOptions,
        dump_manifests,
        render_rayservice,
    )
    from aim_ray.engine.llm_config import ModelSpec

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
            )
        except ValidationError as error:
            raise AimRayError(_options_problems(error)) from None
        mcp = load_mcp_config(mcp_config) if mcp_config else None
        spec = ModelSpec(
            model_id=model,
            source=source,
            hardware=hardware,
            gpus=gpus,
            precision=precision,
            metric=metric,
        )
        documents, selection = render_rayservice(spec, options, mcp=mcp)
    header = f"# Written by `aim-ray render rayservice` ({selection.recipe.id}).\n"
    text = dump_manifests(documents, header)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
    size = _size(selection.hardware.kind, selection.gpu_count)
    typer.echo(f"wrote {output} ({selection.recipe.id}, {size} an engine replica)")


@render_app.command("examples")
def render_examples(
    directory: Annotated[Path, typer.Option(help="Where the examples live.")] = Path("kuberay"),
) -> None:
    """Rewrite the committed examples in kuberay/ from the current recipes and code."""
    from aim_ray.config.mcp import load_mcp_config
    from aim_ray.deploy.kuberay import EXAMPLES, render_example

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


def _options_problems(error: Any) -> str:
    return "; ".join(
        f"{dotted_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )


# ------------------------------------------------------------------------------------- mcp

mcp_app = typer.Typer(
    help="MCP: write provider and tool entries, and talk to any MCP server.",
    no_args_is_help=True,
)
app.add_typer(mcp_app, name="mcp")


class ProviderType(StrEnum):
    postgresql = "postgresql"
    chroma = "chroma"
    rest = "rest"
    filesystem = "filesystem"


class ToolType(StrEnum):
    calculator = "calculator"
    file_reader = "file_reader"
    sql_query = "sql_query"
    vector_search = "vector_search"
    web_fetch = "web_fetch"
    web_search = "web_search"
    remote_mcp = "remote_mcp"


class AuthType(StrEnum):
    bearer = "bearer"
    api_key = "api_key"


# Which type-specific options each type takes; any other one given is refused.
_AUTH_OPTIONS = ("--auth-type", "--secret-name", "--secret-key", "--auth-header")
_PROVIDER_OPTIONS: dict[str, tuple[str, ...]] = {
    "postgresql": (
        "--host", "--port", "--database", "--user", "--secret-name", "--secret-key",
        "--table", "--columns", "--query", "--id-column", "--ssl",
    ),
    "chroma": ("--path", "--host", "--port", "--collection", "--n-results", *_AUTH_OPTIONS),
    "rest": (
        "--base-url", "--path", "--method", "--query-param", "--results-field",
        "--content-field", "--id-field", "--title-field", "--allowed-domain",
        "--allow-private", *_AUTH_OPTIONS,
    ),
    "filesystem": ("--root", "--pattern"),
}  # fmt: skip
_TOOL_OPTIONS: dict[str, tuple[str, ...]] = {
    "calculator": (),
    "file_reader": ("--allowed-path", "--max-bytes"),
    "sql_query": ("--provider", "--max-rows"),
    "vector_search": ("--provider", "--n-results"),
    "web_fetch": ("--allowed-domain", "--allow-private", "--max-bytes"),
    "web_search": (
        "--endpoint", "--allowed-domain", "--allow-private", "--max-results", *_AUTH_OPTIONS,
    ),
    "remote_mcp": ("--url", "--prefix", "--include", "--allow-private", *_AUTH_OPTIONS),
}  # fmt: skip

_CONFIG_HELP = (
    "Append the entry to this YAML file instead of printing it: a standalone `mcp:` config "
    "(created if missing) or a Serve config (the aim-ray application's `args.mcp`). The file "
    "is rewritten with PyYAML: its leading comment block is kept, other comments are not."
)

ConfigFileOption = Annotated[Path | None, typer.Option("--config", help=_CONFIG_HELP)]
AppNameOption = Annotated[
    str | None,
    typer.Option("--app", help="In a Serve config with several aim-ray applications: which."),
]
DescriptionOption = Annotated[str | None, typer.Option(help="What the entry is for.")]
DisabledOption = Annotated[bool, typer.Option("--disabled", help="Write `enabled: false`.")]
_AUTH = "Secrets and auth"
_NETWORK = "Network access"
AuthTypeOption = Annotated[
    AuthType | None,
    typer.Option(
        "--auth-type",
        help="bearer (Authorization: Bearer <secret>) or api_key (<header>: <secret>).",
        rich_help_panel=_AUTH,
    ),
]
SecretNameOption = Annotated[
    str | None,
    typer.Option(
        "--secret-name",
        help="The secret to send (postgresql: the password). Only its name is written; "
        "the value is resolved at run time (aim_ray.mcp.backends.secrets).",
        rich_help_panel=_AUTH,
    ),
]
SecretKeyOption = Annotated[
    str | None,
    typer.Option(
        "--secret-key",
        help="Key inside the secret (default: password for postgresql, else token).",
        rich_help_panel=_AUTH,
    ),
]
AuthHeaderOption = Annotated[
    str | None,
    typer.Option(
        "--auth-header",
        help="Header to send the secret in (default: Authorization / X-API-Key).",
        rich_help_panel=_AUTH,
    ),
]
AllowedDomainOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allowed-domain",
        help="Repeatable: a domain (and its subdomains) or '*.domain' requests may reach.",
        rich_help_panel=_NETWORK,
    ),
]
AllowPrivateOption = Annotated[
    bool,
    typer.Option(
        "--allow-private",
        help="Allow private and loopback addresses (off by default).",
        rich_help_panel=_NETWORK,
    ),
]


def _panel(panel: str) -> Any:
    return lambda help: typer.Option(help=help, rich_help_panel=panel)


_pg = _panel("postgresql")
_chroma = _panel("chroma")
_rest = _panel("rest")
_fs = _panel("filesystem")


@mcp_app.command("create-provider")
def create_provider(
    name: Annotated[str, typer.Argument(help="The provider's name (unique in the config).")],
    type_: Annotated[ProviderType, typer.Option("--type", help="The kind of provider.")],
    description: DescriptionOption = None,
    timeout: Annotated[
        str | None, typer.Option(help="Retrieval timeout: seconds or '500ms', '5s', ...")
    ] = None,
    disabled: DisabledOption = False,
    host: Annotated[str | None, _pg("The server (chroma: server mode).")] = None,
    port: Annotated[int | None, _pg("The port (chroma: server mode).")] = None,
    database: Annotated[str | None, _pg("The database.")] = None,
    user: Annotated[str | None, _pg("The user (password: --secret-name).")] = None,
    table: Annotated[str | None, _pg("Full-text search over this table...")] = None,
    columns: Annotated[str | None, _pg("...and these columns, e.g. title,body.")] = None,
    query: Annotated[str | None, _pg("Or this SQL: $1 = the query text, $2 = limit.")] = None,
    id_column: Annotated[str | None, _pg("The id column.")] = None,
    ssl: Annotated[str | None, _pg("disable, prefer, require, verify-full, ...")] = None,
    path: Annotated[
        str | None, _chroma("The embedded store's folder (rest: the URL path).")
    ] = None,
    collection: Annotated[str | None, _chroma("The collection.")] = None,
    n_results: Annotated[int | None, _chroma("Results a query (default 5).")] = None,
    base_url: Annotated[str | None, _rest("e.g. https://api.example.com.")] = None,
    method: Annotated[str | None, _rest("GET (default) or POST.")] = None,
    query_param: Annotated[str | None, _rest("The query's parameter (default q).")] = None,
    results_field: Annotated[str | None, _rest("Dot path of the results list.")] = None,
    content_field: Annotated[str | None, _rest("Default: content.")] = None,
    id_field: Annotated[str | None, _rest("Default: id.")] = None,
    title_field: Annotated[str | None, _rest("Default: title.")] = None,
    allowed_domain: AllowedDomainOption = None,
    allow_private: AllowPrivateOption = False,
    auth_type: AuthTypeOption = None,
    secret_name: SecretNameOption = None,
    secret_key: SecretKeyOption = None,
    auth_header: AuthHeaderOption = None,
    root: Annotated[list[str] | None, _fs("Repeatable: a folder to read.")] = None,
    pattern: Annotated[
        list[str] | None, _fs("Repeatable: a glob (default **/*.md, **/*.txt, **/*.rst).")
    ] = None,
    config: ConfigFileOption = None,
    app_name: AppNameOption = None,
) -> None:
    """Write a context provider entry (validated) to stdout or into a config file."""
    kind = type_.value
    given = {
        "--host": host,
        "--port": port,
        "--database": database,
        "--user": user,
        "--table": table,
        "--columns": columns,
        "--query": query,
        "--id-column": id_column,
        "--ssl": ssl,
        "--path": path,
        "--collection": collection,
        "--n-results": n_results,
        "--base-url": base_url,
        "--method": method,
        "--query-param": query_param,
        "--results-field": results_field,
        "--content-field": content_field,
        "--id-field": id_field,
        "--title-field": title_field,
        "--allowed-domain": allowed_domain,
        "--allow-private": allow_private,
        "--auth-type": auth_type.value if auth_type else None,
        "--secret-name": secret_name,
        "--secret-key": secret_key,
        "--auth-header": auth_header,
        "--root": root,
        "--pattern": pattern,
    }
    with user_errors():
        settings = _settings(given, _PROVIDER_OPTIONS[kind], f"--type {kind}")
        if kind == "postgresql":
            if "columns" in settings:
                settings["columns"] = [c.strip() for c in columns.split(",") if c.strip()]
            secret = _pop_keys(settings, {"secret_name": "secret_name", "secret_key": "key"})
            if secret:
                settings["credentials"] = secret
        elif kind in ("chroma", "rest"):
            _move_auth(settings)
        if kind == "rest":
            _rename(settings, allowed_domain="allowed_domains")
        if kind == "filesystem":
            _rename(settings, root="roots", pattern="patterns")
        entry = _entry(name, kind, description, timeout, disabled, settings)
        _emit_entry("providers", entry, config, app_name)


@mcp_app.command("create-tool")
def create_tool(
    name: Annotated[str, typer.Argument(help="The tool's name, as MCP clients see it.")],
    type_: Annotated[
        ToolType | None,
        typer.Option("--type", help="The kind of tool (default: NAME, if it is a kind)."),
    ] = None,
    description: DescriptionOption = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(help="At most N calls a window per replica: 100/1m, 10/30s, 5/1h."),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Call timeout: seconds or '500ms', '10s', ...")
    ] = None,
    disabled: DisabledOption = False,
    allowed_path: Annotated[
        list[str] | None,
        typer.Option("--allowed-path", help="file_reader: repeatable; folders it may read."),
    ] = None,
    max_bytes: Annotated[
        int | None, typer.Option(help="file_reader, web_fetch: the most bytes read.")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(help="sql_query: a postgresql provider; vector_search: a chroma one."),
    ] = None,
    max_rows: Annotated[int | None, typer.Option(help="sql_query: rows returned.")] = None,
    n_results: Annotated[int | None, typer.Option(help="vector_search: default results.")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="web_search: a SearxNG-compatible base URL.")
    ] = None,
    max_results: Annotated[int | None, typer.Option(help="web_search: at most.")] = None,
    url: Annotated[
        str | None, typer.Option(help="remote_mcp: the server, e.g. http://docs:8080/mcp.")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="remote_mcp: tools are served as <prefix>__<tool>.")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="remote_mcp: repeatable; only these remote tools."),
    ] = None,
    allowed_domain: AllowedDomainOption = None,
    allow_private: AllowPrivateOption = False,
    auth_type: AuthTypeOption = None,
    secret_name: SecretNameOption = None,
    secret_key: SecretKeyOption = None,
    auth_header: AuthHeaderOption = None,
    config: ConfigFileOption = None,
    app_name: AppNameOption = None,
) -> None:
    """Write a tool entry (validated) to stdout or into a config file."""
    given = {
        "--allowed-path": allowed_path,
        "--max-bytes": max_bytes,
        "--provider": provider,
        "--max-rows": max_rows,
        "--n-results": n_results,
        "--endpoint": endpoint,
        "--max-results": max_results,
        "--url": url,
        "--prefix": prefix,
        "--include": include,
        "--allowed-domain": allowed_domain,
        "--allow-private": allow_private,
        "--auth-type": auth_type.value if auth_type else None,
        "--secret-name": secret_name,
        "--secret-key": secret_key,
        "--auth-header": auth_header,
    }
    with user_errors():
        if type_ is None and name not in _TOOL_OPTIONS:
            raise AimRayError(
                f"set --type: {name!r} is not a tool type ({', '.join(_TOOL_OPTIONS)})"
            )
        kind = type_.value if type_ else name
        settings = _settings(given, _TOOL_OPTIONS[kind], f"--type {kind}")
        _rename(settings, allowed_path="allowed_paths", allowed_domain="allowed_domains")
        if kind == "web_search":
            _move_auth(settings)
        if kind == "remote_mcp":
            _move_secret_header(settings)
        entry = _entry(name, kind, description, timeout, disabled, settings)
        if rate_limit is not None:
            entry["rate_limit"] = _rate_limit(rate_limit)
        _emit_entry("tools", entry, config, app_name)


# The client commands' shared options.
HeaderOption = Annotated[
    list[str] | None,
    typer.Option("--header", "-H", help="Repeatable HTTP header 'Name: value', e.g. auth."),
]
ClientTimeoutOption = Annotated[
    float, typer.Option(min=0.001, help="Seconds to wait for the server, in all.")
]
UrlArgument = Annotated[
    str, typer.Argument(help="The server's Streamable HTTP endpoint, e.g. http://host:8000/mcp.")
]


@mcp_app.command("list-tools")
def list_tools(
    url: UrlArgument,
    header: HeaderOption = None,
    timeout: ClientTimeoutOption = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print name, description, inputSchema as JSON.")
    ] = False,
) -> None:
    """List the tools of any MCP server (Streamable HTTP)."""
    with user_errors():
        headers = _parse_headers(header or [])
        tools = _run_client(url, headers, timeout, _all_tools)
    if as_json:
        listed = [
            {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
            for t in tools
        ]
        typer.echo(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    if not tools:
        typer.echo("no tools")
        return
    table = Table(
        Column("name", overflow="fold", ratio=1),
        Column("description", overflow="fold", ratio=3),
        Column("required arguments", overflow="fold", ratio=1),
    )
    for tool in tools:
        table.add_row(tool.name, tool.description or tool.title or "", _required_args(tool))
    console.print(table, highlight=False, markup=False)


@mcp_app.command("call")
def call_tool(
    url: UrlArgument,
    tool: Annotated[str, typer.Argument(help="The tool's name, as list-tools prints it.")],
    args: Annotated[
        str, typer.Option("--args", help="The arguments as a JSON object: '{\"a\": 1}'.")
    ] = "{}",
    header: HeaderOption = None,
    timeout: ClientTimeoutOption = 30.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result (content, isError, ...).")
    ] = False,
) -> None:
    """Call a tool of any MCP server; print its text. Exit 1 if the tool reports an error."""
    with user_errors():
        try:
            arguments = json.loads(args)
        except ValueError as error:
            raise AimRayError(f"--args is not valid JSON: {error}") from None
        if not isinstance(arguments, dict):
            raise AimRayError('--args must be a JSON object, e.g. \'{"expression": "2+2"}\'')
        headers = _parse_headers(header or [])

        async def call(client: Any) -> Any:
            names = [t.name for t in await _all_tools(client)]
            if tool not in names:
                known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
                raise AimRayError(f"unknown tool {tool!r} at {url} (it has: {known or 'none'})")
            return await client.call_tool(tool, arguments, read_timeout_seconds=timeout)

        result = _run_client(url, headers, timeout, call)
    if as_json:
        dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        typer.echo(json.dumps(dumped, indent=2, ensure_ascii=False))
    else:
        text = _result_text(result)
        typer.echo(f"tool error: {text}" if result.is_error else text, err=result.is_error)
    if result.is_error:
        raise typer.Exit(code=1)


@app.command("test-endpoint")
def test_endpoint(
    url: Annotated[str, typer.Argument(help="The endpoint, e.g. http://127.0.0.1:8000.")],
    query: Annotated[str, typer.Option(help="The user message to send.")],
    context_providers: Annotated[
        str | None, typer.Option(help="Comma-separated context providers for mcp_context.")
    ] = None,
    context_query: Annotated[
        str | None, typer.Option(help="What to look up; the query itself by default.")
    ] = None,
    tools: Annotated[
        str | None, typer.Option(help="Comma-separated tools; registry tools run server-side.")
    ] = None,
    tool_choice: Annotated[
        str | None, typer.Option(help="auto, none, required, or a tool name to force.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model id; the endpoint's first model by default.")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Env var holding the API key, if the endpoint wants one.")
    ] = "AIM_RAY_API_KEY",
    stream: Annotated[bool, typer.Option(help="Stream the answer.")] = False,
    max_tokens: Annotated[int, typer.Option(min=1)] = 128,
    timeout: ClientTimeoutOption = 120.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON.")
    ] = False,
) -> None:
    """Run one chat against a live endpoint; print the answer, context, tool calls, timings."""
    from aim_ray.cli.chat_check import ChatCheckRequest, run_chat_check

    with user_errors():
        request = ChatCheckRequest(
            url=url,
            query=query,
            model=model,
            api_key=os.environ.get(api_key_env),
            context_providers=_names(context_providers),
            context_query=context_query,
            tools=_names(tools),
            tool_choice=tool_choice,
            stream=stream,
            max_tokens=max_tokens,
            timeout_s=timeout,
        )
        with console.status("waiting for the endpoint", spinner="dots"):
            check = run_chat_check(request)
    if as_json:
        typer.echo(check.model_dump_json(indent=2))
        return
    _print_chat_check(check)


def _names(csv: str | None) -> list[str]:
    return [name.strip() for name in (csv or "").split(",") if name.strip()]


def _print_chat_check(check: Any) -> None:
    console.rule(f"answer ({check.model}, finish: {check.finish_reason})")
    console.print(check.answer or "(empty)", highlight=False, markup=False)
    for call in check.client_tool_calls:
        function = call["function"]
        console.print(f"client tool call: {function['name']}({function['arguments']})")
    report = check.mcp or {}
    context = report.get("context")
    if context:
        console.rule(f"context ({context['tokens']} tokens, query {context['query']!r})")
        table = Table("provider", "status", "items", "cached", "ms", "error")
        for outcome in context["providers"]:
            table.add_row(
                outcome["provider"],
                outcome["status"],
                str(outcome["items"]),
                "yes" if outcome.get("cached") else "",
                f"{outcome.get('latency_ms') or 0:.1f}",
                outcome.get("error") or "",
            )
        console.print(table, highlight=False, markup=False)
        for item in context["items"]:
            snippet = " ".join(item["content"].split())[:100]
            console.print(f"  [{item['provider']}:{item['id']}] {snippet}", markup=False)
    if report.get("tool_calls"):
        console.rule(f"server-side tool calls ({report['iterations']} model rounds)")
        table = Table("tool", "arguments", "status", "ms", Column("result", overflow="fold"))
        for call in report["tool_calls"]:
            table.add_row(
                call["name"],
                json.dumps(call["arguments"], ensure_ascii=False),
                call["status"],
                f"{call['latency_ms']:.1f}",
                call["content"][:200],
            )
        console.print(table, highlight=False, markup=False)
    console.rule("timings")
    if check.seconds_to_first_token is not None:
        console.print(f"first token: {check.seconds_to_first_token:.3f}s")
    console.print(f"total: {check.seconds_total:.3f}s")
    if check.stream_events:
        console.print(f"stream events: {', '.join(check.stream_events)}")


# -- mcp helpers: entries


def _settings(given: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """The options the user set, as ``config`` keys; refuses options ``what`` does not take."""
    used = {flag: value for flag, value in given.items() if value not in (None, False, [])}
    stray = [flag for flag in used if flag not in allowed]
    if stray:
        takes = ", ".join(allowed) or "no type-specific options"
        raise AimRayError(f"{', '.join(stray)} does not apply to {what} (it takes: {takes})")
    # In the order of ``allowed``, so entries read the same whatever the command line order.
    return {flag[2:].replace("-", "_"): used[flag] for flag in allowed if flag in used}


def _rename(settings: dict[str, Any], **names: str) -> None:
    for old, new in names.items():
        if old in settings:
            settings[new] = settings.pop(old)


def _pop_keys(settings: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {new: settings.pop(old) for old, new in names.items() if old in settings}


_AUTH_KEYS = {
    "auth_type": "type",
    "secret_name": "secret_name",
    "secret_key": "key",
    "auth_header": "header",
}


def _move_auth(settings: dict[str, Any]) -> None:
    """--auth-type/--secret-name/--secret-key/--auth-header as an ``auth`` block."""
    auth = _pop_keys(settings, _AUTH_KEYS)
    if auth:
        if "type" not in auth:
            raise AimRayError("--secret-name needs --auth-type bearer or api_key")
        settings["auth"] = auth


def _move_secret_header(settings: dict[str, Any]) -> None:
    """remote_mcp: the same options as one ``secret_headers`` entry."""
    auth = _pop_keys(settings, _AUTH_KEYS)
    if not auth:
        return
    if "type" not in auth or "secret_name" not in auth:
        raise AimRayError("remote_mcp auth needs both --auth-type and --secret-name")
    bearer = auth.pop("type") == "bearer"
    header = auth.pop("header", None) or ("Authorization" if bearer else "X-API-Key")
    settings["secret_headers"] = {header: {**auth, **({"prefix": "Bearer "} if bearer else {})}}


def _duration(text: str) -> str | int | float:
    """'10' → 10 (so the YAML says ``10``, not ``'10'``); '1m' stays a string."""
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    return int(number) if number.is_integer() else number


def _rate_limit(text: str) -> dict[str, Any]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", text)
    if not match:
        raise AimRayError(f"--rate-limit {text!r}: expected REQUESTS/WINDOW, e.g. 100/1m")
    return {"requests": int(match.group(1)), "window": _duration(match.group(2))}


def _entry(
    name: str,
    kind: str,
    description: str | None,
    timeout: str | None,
    disabled: bool,
    settings: dict[str, Any],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": kind}
    if description is not None:
        entry["description"] = description
    if disabled:
        entry["enabled"] = False
    if timeout is not None:
        entry["timeout_s"] = _duration(timeout)
    if settings:
        entry["config"] = settings
    return entry


def _emit_entry(
    section: str, entry: dict[str, Any], config: Path | None, app_name: str | None
) -> None:
    """Validate ``entry`` with the real models, then print it or add it to ``config``."""
    from aim_ray.config.mcp import entry_problems

    what = f"{section[:-1]} {entry['name']!r}"
    problems = entry_problems(section, entry)
    if problems:
        raise AimRayError(f"invalid {what}: {'; '.join(problems)}")
    if config is None:
        typer.echo(dump_yaml([entry]), nl=False)
        return
    added = add_entry(config, section, entry, app_name)
    if added.dropped_comments:
        typer.echo(
            f"note: comments in {config} other than the leading ones were not kept", err=True
        )
    typer.echo(f"added {what} to {config} ({added.where}.{section})")


# -- mcp helpers: the client


def _parse_headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        key, sep, rest = value.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", key.strip()):
            raise AimRayError(f"--header {value!r}: expected 'Name: value'")
        headers[key.strip()] = rest.strip()
    return headers


async def _all_tools(client: Any, max_pages: int = 100) -> list[Any]:
    tools, cursor = [], None
    for _ in range(max_pages):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _run_client(url: str, headers: dict[str, str], timeout: float, work: Any) -> Any:
    """Open an MCP session over Streamable HTTP, run ``await work(client)``, close it; any
    failure becomes a one-line ``AimRayError``."""
    if not re.match(r"https?://[^\s/?#]+", url):
        raise AimRayError(f"{url!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/mcp")
    return asyncio.run(_client_session(url, headers, timeout, work))


async def _client_session(url: str, headers: dict[str, str], timeout: float, work: Any) -> Any:
    import httpx2
    from mcp import Client, MCPError
    from mcp.client.streamable_http import streamable_http_client

    statuses: list[str] = []

    async def record(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            statuses.append(f"HTTP {response.status_code} {response.reason_phrase}".strip())

    try:
        async with (
            asyncio.timeout(timeout),
            httpx2.AsyncClient(
                headers=headers, timeout=timeout, event_hooks={"response": [record]}
            ) as http,
            Client(
                streamable_http_client(url, http_client=http), read_timeout_seconds=timeout
            ) as client,
        ):
            return await work(client)
    except Exception as error:  # every failure becomes one line, never a traceback
        root = _root_cause(error)
        if isinstance(root, AimRayError):
            raise root from None
        if isinstance(root, TimeoutError) or (
            isinstance(root, MCPError) and "timed out" in root.message
        ):
            raise AimRayError(f"{url}: no answer within {timeout:g}s (--timeout)") from None
        if statuses:
            hint = " (is this the MCP endpoint, e.g. .../mcp?)" if "404" in statuses[-1] else ""
            raise AimRayError(f"{url} answered {statuses[-1]}{hint}") from None
        if isinstance(root, MCPError):
            raise AimRayError(f"{url}: MCP error {root.code}: {root.message}") from None
        if isinstance(root, httpx2.TransportError):
            raise AimRayError(f"cannot connect to {url}: {_transport_reason(root)}") from None
        raise AimRayError(f"{url}: {type(root).__name__}: {_first_line(root)}") from None


def _root_cause(error: BaseException) -> BaseException:
    # The SDK runs inside anyio task groups, which wrap failures in ExceptionGroups.
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _transport_reason(error: BaseException) -> str:
    """The OS-level reason (e.g. 'Connection refused') under httpx's summary, if any."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
            return os.strerror(cause.errno)  # asyncio's own text names the address again
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return _first_line(error) or type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _required_args(tool: Any) -> str:
    schema = tool.input_schema or {}
    properties = schema.get("properties") or {}
    required = schema.get("required") or []
    return ", ".join(f"{arg}: {(properties.get(arg) or {}).get('type', 'any')}" for arg in required)


def _result_text(result: Any) -> str:
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{block.type} content]")
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


def main() -> None:
    """Console-script entry point (``aim-ray``)."""
    app()


def _size(hardware: str, gpu_count: int) -> str:
    return "the CPU" if hardware == "CPU" else f"{gpu_count} x {hardware}"


def _recipe_table(recipes: list[Recipe]) -> Table:
    # Fold, not ellipsize, long ids: the id is what `recipes show` needs.
    short = {"no_wrap": True}
    table = Table(
        Column("id", overflow="fold", ratio=2),
        Column("model", overflow="fold", ratio=1),
        Column("hardware", **short),
        Column("precision", **short),
        Column("GPUs", **short),
        Column("metric", **short),
        Column("maturity", **short),
        Column("tier", **short),
    )
    for recipe in recipes:
        table.add_row(
            recipe.id,
            "any" if recipe.is_general else recipe.model_id,
            recipe.hardware,
            recipe.precision,
            "/".join(map(str, recipe.gpu_counts)),
            recipe.metric or "any",
            recipe.maturity,
            recipe.tier,
        )
    return table


def _selection_json(selection: Selection, config: dict[str, Any]) -> dict[str, Any]:
    recipe = selection.recipe
    return {
        "recipe": recipe.id,
        "tier": recipe.tier,
        "path": recipe.path,
        "model_id": recipe.model_id,
        "gpu_count": selection.gpu_count,
        "hardware": selection.hardware.model_dump(),
        "reasons": selection.reasons,
        "llm_config": config,
    }
