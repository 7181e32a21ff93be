"""What every command shares about talking to the user: the rich console, how an
``AimRayError`` reaches the terminal, how a file's problems are reported, and the wording
of a replica's size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from aim_ray.errors import AimRayError

console = Console()


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an ``AimRayError`` into a one-line message on stderr and exit code 2."""
    try:
        yield
    except AimRayError as exc:
        # typer.echo, not rich: rich would wrap a long message onto several lines.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def report_problems(path: Path, problems: Sequence[object]) -> None:
    """Each problem on stderr as ``path: problem`` and exit 1, or say the file is valid."""
    for problem in problems:
        typer.echo(f"{path}: {problem}", err=True)
    if problems:
        raise typer.Exit(code=1)
    typer.echo(f"{path}: valid")


def size(hardware: str, gpu_count: int) -> str:
    """A replica's size as the messages say it: ``2 x MI300X`` or ``the CPU``."""
    return "the CPU" if hardware == "CPU" else f"{gpu_count} x {hardware}"
