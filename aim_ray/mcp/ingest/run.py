"""``ingest``: files into a provider's store, file by file, with progress and a summary.

Used by ``aim-ray mcp ingest`` (a progress bar) and by the context deployment on start
(``ingest_on_start``: only when the store is missing or empty, in a child process whose
progress lines ``serve run`` shows; see ``__main__``). A file that cannot be read is
reported and skipped; the rest still go in.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aim_ray.config.mcp_providers import ChromaProviderConfig, ProviderConfig
from aim_ray.mcp.ingest.chunks import chunk_document
from aim_ray.mcp.ingest.documents import DocumentError, find_files, read_document
from aim_ray.mcp.ingest.stores import IngestTargetError, open_store, staged


@dataclass
class IngestReport:
    provider: str
    files: int = 0
    chunks: int = 0
    removed: int = 0
    failed: list[str] = field(default_factory=list)
    documents_before: int = 0
    documents_after: int = 0

    def summary(self) -> str:
        text = (
            f"{self.provider}: {self.files} files, {self.chunks} chunks written, "
            f"{self.removed} stale chunks removed; {self.documents_before} -> "
            f"{self.documents_after} documents"
        )
        return text + (f"; {len(self.failed)} files skipped" if self.failed else "")


FilesFound = Callable[[int], None]
FileDone = Callable[[str], None]


async def ingest(
    provider: ProviderConfig,
    paths: list[str | Path],
    *,
    chunk_chars: int | None = None,
    overlap_chars: int | None = None,
    files_found: FilesFound | None = None,
    file_done: FileDone | None = None,
) -> IngestReport:
    """Ingest the files under ``paths`` into the provider's store (created if missing)."""
    store = open_store(provider)
    settings = provider.config.ingest
    size = chunk_chars or settings.chunk_chars
    overlap = settings.overlap_chars if overlap_chars is None else overlap_chars
    if overlap >= size:
        raise DocumentError(f"the overlap ({overlap}) must be smaller than the chunk ({size})")
    files = find_files(paths)
    if files_found:
        files_found(len(files))
    report = IngestReport(provider.name)
    try:
        report.documents_before = await store.count() or 0
        for file in files:
            try:
                document = await asyncio.to_thread(read_document, file)
            except DocumentError as error:
                report.failed.append(str(error))
            else:
                chunks = chunk_document(file.source, document.title, document.text, size, overlap)
                if chunks:
                    await store.upsert(chunks)
                report.removed += await store.remove_from(file.source, len(chunks))
                report.files += 1
                report.chunks += len(chunks)
            if file_done:
                file_done(file.source)
        report.documents_after = await store.count() or 0
    finally:
        await store.close()
    return report


async def ingest_on_start(provider: ProviderConfig) -> bool:
    """Fill a missing or empty store from the provider's ``ingest.on_start`` paths; whether
    it did. The ingest runs in a process of its own (``python -m aim_ray.mcp.ingest``), its
    progress on this process's stderr, and an embedded Chroma collection is filled under a
    staging name and renamed once whole (``stores.staged``): other replicas' processes
    (the tool deployment's ``vector_search``) open it only when complete and written."""
    settings = getattr(provider.config, "ingest", None)  # only stores of documents have it
    paths = list(settings.on_start) if settings is not None else []
    if not paths:
        return False
    async with _exclusive(provider):
        store = open_store(provider)
        try:
            if await store.count():
                return False
        finally:
            await store.close()
        request: dict[str, Any] = {"provider": provider.model_dump(mode="json"), "paths": paths}
        if isinstance(provider, ChromaProviderConfig) and provider.config.mode == "embedded":
            request["provider"] = staged(provider).model_dump(mode="json")
            request["publish_as"] = provider.config.collection
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aim_ray.mcp.ingest", stdin=asyncio.subprocess.PIPE
        )
        await child.communicate(json.dumps(request).encode())
    if child.returncode != 0:
        raise IngestTargetError(
            f"ingest into {provider.name!r} on start failed (exit code {child.returncode})"
        )
    return True


@contextlib.asynccontextmanager
async def _exclusive(provider: ProviderConfig) -> AsyncIterator[None]:
    """One ingest at a time into an embedded Chroma folder, across replicas' processes."""
    if not (isinstance(provider, ChromaProviderConfig) and provider.config.mode == "embedded"):
        yield
        return
    os.makedirs(provider.config.path, exist_ok=True)
    with open(os.path.join(provider.config.path, ".aim-ray-ingest.lock"), "w") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        yield
