"""``aim-ray mcp validate``, ``ingest`` and ``providers``: an MCP config file checked with
its lines, documents into a configured Chroma or PostgreSQL provider, and what every
provider holds.

``ingest`` and ``providers`` read the provider from a config file (``--config``: a Serve
config or a standalone ``mcp:`` file, default the README's ``serve_configs/local.yaml``)
and connect as the replicas would: same settings, same secrets. The work is
``aim_ray.mcp.ingest``; this module shows its progress and summary."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aim_ray.cli.mcp_options import AppNameOption
from aim_ray.cli.output import console, report_problems, user_errors
from aim_ray.config.edit import read_mcp_config
from aim_ray.errors import AimRayError

if TYPE_CHECKING:
    from aim_ray.config.mcp import MCPConfig
    from aim_ray.config.mcp_providers import ProviderConfig
    from aim_ray.mcp.ingest.run import IngestReport

DEFAULT_CONFIG = Path("serve_configs/local.yaml")
ReadConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        help="The Serve config (its aim-ray application's args.mcp) or standalone `mcp:` file "
        "that defines the provider.",
    ),
]


def validate_command(
    path: Annotated[Path, typer.Argument(help="A standalone `mcp:` file (mcp_config_file).")],
) -> None:
    """Report every problem in an MCP config file with its line; exit 1 if there are any.
    Whether it fits the models is checked with the serve config (`aim-ray config validate`)."""
    from aim_ray.deploy.serve_config import validate_mcp_file

    report_problems(path, validate_mcp_file(path))


def ingest_command(
    provider: Annotated[str, typer.Argument(help="A chroma or postgresql provider's name.")],
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or folders (text, Markdown, reStructuredText, HTML, PDF)."),
    ],
    config: ReadConfigOption = DEFAULT_CONFIG,
    app_name: AppNameOption = None,
    chunk_chars: Annotated[
        int | None, typer.Option(min=100, help="Chunk size (default: the provider's ingest).")
    ] = None,
    overlap_chars: Annotated[
        int | None, typer.Option(min=0, help="Overlap (default: the provider's ingest).")
    ] = None,
) -> None:
    """Load documents into a provider: chunked with overlap, stable ids (re-running updates,
    never duplicates), metadata source/chunk/title. Creates the collection or table (with a
    full-text index) if missing."""
    with user_errors():
        entry = _provider(read_mcp_config(config, app_name), provider)
        report = asyncio.run(_ingest_with_progress(entry, paths, chunk_chars, overlap_chars))
    typer.echo(report.summary())  # not rich: one line, never wrapped, for scripts to read
    for problem in report.failed:
        typer.echo(f"skipped: {problem}", err=True)
    if entry.type == "chroma" and entry.config.mode == "embedded":
        typer.echo(
            "note: replicas that already read this embedded collection see the new documents "
            "after a restart; ingest into a Chroma server (`chroma run`) to update a running app."
        )
    if report.failed:
        raise typer.Exit(code=1)


async def _ingest_with_progress(
    entry: ProviderConfig, paths: list[Path], chunk_chars: int | None, overlap_chars: int | None
) -> IngestReport:
    from aim_ray.mcp.ingest.run import ingest

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"ingest into {entry.name}", total=None, current="")
        return await ingest(
            entry,
            list(paths),
            chunk_chars=chunk_chars,
            overlap_chars=overlap_chars,
            files_found=lambda n: progress.update(task, total=n),
            file_done=lambda source: progress.update(task, advance=1, current=source),
        )


def providers_command(
    config: ReadConfigOption = DEFAULT_CONFIG, app_name: AppNameOption = None
) -> None:
    """List the config's context providers, with how many documents each store holds."""
    with user_errors():
        mcp = read_mcp_config(config, app_name)
        counts = asyncio.run(_document_counts(mcp))
    table = Table("provider", "type", "enabled", "documents")
    for entry in mcp.providers:
        table.add_row(entry.name, entry.type, "yes" if entry.enabled else "no", counts[entry.name])
    console.print(table)


async def _document_counts(mcp: MCPConfig) -> dict[str, str]:
    from aim_ray.mcp.ingest.stores import IngestTargetError, open_store

    counts = {}
    for entry in mcp.providers:
        try:
            store = open_store(entry)
        except IngestTargetError:  # not a store of documents (REST, files, a custom query)
            counts[entry.name] = "-"
            continue
        try:
            count = await store.count()
            counts[entry.name] = "not created" if count is None else str(count)
        except AimRayError as error:
            counts[entry.name] = f"unavailable: {error}"
        finally:
            await store.close()
    return counts


def _provider(mcp: MCPConfig, name: str) -> ProviderConfig:
    try:
        return mcp.provider(name)
    except KeyError:
        known = ", ".join(p.name for p in mcp.providers) or "none"
        raise AimRayError(f"no provider {name!r} in the config (providers: {known})") from None
