"""``python -m aim_ray.mcp.ingest``: one ingest on start, in a process of its own.

``run.ingest_on_start`` starts it with ``{"provider": <entry>, "paths": [...]}`` as JSON on
stdin. Progress goes to the process's stderr, which it shares with the Serve replica that
started it: Ray forwards that to ``serve run``'s output (the replica's own ``sys.stderr``
is Serve's logger, off the console in throughput-optimized mode). Exit code 0 when every
file went in, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys

from pydantic import TypeAdapter, ValidationError

from aim_ray.config.mcp_providers import ProviderConfig
from aim_ray.errors import AimRayError
from aim_ray.mcp.ingest.run import IngestReport, ingest
from aim_ray.mcp.ingest.stores import ChromaStore, open_store


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
        provider = TypeAdapter(ProviderConfig).validate_python(request["provider"])
        paths = list(request["paths"])
    except (ValueError, KeyError, TypeError, ValidationError) as error:
        say(f"aim-ray: ingest: not a valid request ({type(error).__name__})")
        return 1
    name = provider.name
    say(f"aim-ray: ingesting {', '.join(paths)} into {name!r} (first start)")
    try:
        report = asyncio.run(_ingest(provider, paths, request.get("publish_as")))
    except AimRayError as error:
        say(f"aim-ray: ingest into {name!r} failed: {error}")
        return 1
    say(f"aim-ray: {report.summary()}")
    for problem in report.failed:
        say(f"aim-ray: skipped {problem}")
    return 1 if report.failed else 0


async def _ingest(
    provider: ProviderConfig, paths: list[str], publish_as: str | None
) -> IngestReport:
    """The ingest; with ``publish_as``, into a fresh staging collection renamed at the end."""
    name = provider.name
    if publish_as is not None:
        await _chroma(provider).drop()
    report = await ingest(
        provider,
        paths,
        files_found=lambda n: say(f"aim-ray: {name}: {n} files"),
        file_done=lambda source: say(f"aim-ray: {name}: {source}"),
    )
    if publish_as is not None:  # files that could not be read are reported, the rest served
        await _chroma(provider).rename(publish_as)
    return report


def _chroma(provider: ProviderConfig) -> ChromaStore:
    store = open_store(provider)
    assert isinstance(store, ChromaStore)  # only embedded Chroma is staged
    return store


if __name__ == "__main__":
    sys.exit(main())
