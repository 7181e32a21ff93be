"""The ``filesystem`` context provider: keyword search over text files under its roots,
every file read through ``backends.files`` (root confinement, size cap, no binaries)."""

from __future__ import annotations

import asyncio
import math
import os
from fnmatch import fnmatch
from pathlib import Path

from aim_ray.config.mcp_providers import FilesystemSettings
from aim_ray.mcp.backends.files import PathRefusedError, read_text_file, resolve_under_roots
from aim_ray.mcp.context.base import ContextProvider, ProviderError, terms
from aim_ray.mcp.protocol import ContextItem


def _snippet(text: str, terms: list[str], size: int) -> str:
    lowered = text.lower()
    hits = [i for i in (lowered.find(t) for t in terms) if i >= 0]
    start = max(0, min(hits) - size // 4) if hits else 0
    return text[start : start + size].strip()


class FilesystemProvider(ContextProvider):
    """Keyword search over text files under ``roots`` (``patterns`` are fnmatch-style on the
    path relative to the root, where ``*`` also crosses directories)."""

    kind = "filesystem"

    def __init__(
        self, name: str, settings: FilesystemSettings, timeout_s: float, description: str | None
    ) -> None:
        super().__init__(name, timeout_s, description)
        self._settings = settings

    def _matches(self, relative: str) -> bool:
        return any(
            fnmatch(relative, p) or (p.startswith("**/") and fnmatch(relative, p[3:]))
            for p in self._settings.patterns
        )

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for root in self._settings.roots:
            for directory, _, names in os.walk(root, followlinks=False):
                for name in sorted(names):
                    path = Path(directory) / name
                    if self._matches(path.relative_to(root).as_posix()):
                        files.append(path)
                    if len(files) >= self._settings.max_files:
                        return files
        return files

    def _search(self, query: str, limit: int) -> list[ContextItem]:
        query_terms = terms(query)
        scored: list[tuple[float, str, str]] = []
        for path in self._files():
            try:
                real = resolve_under_roots(str(path.absolute()), self._settings.roots)
                text = read_text_file(real, self._settings.max_bytes)
            except PathRefusedError:
                continue  # symlink escapes, binaries and oversized files are not documents
            lowered = text.lower()
            hits = sum(lowered.count(t) for t in query_terms)
            if hits:
                score = hits / math.sqrt(max(len(terms(text)), 1))
                scored.append((score, str(path), text))
        scored.sort(key=lambda entry: entry[0], reverse=True)
        return [
            ContextItem(
                provider=self.name,
                id=path,
                content=_snippet(text, query_terms, self._settings.snippet_chars),
                score=round(score, 6),
                metadata={"path": path},
            )
            for score, path, text in scored[:limit]
        ]

    async def retrieve(self, query: str, limit: int) -> list[ContextItem]:
        return await asyncio.to_thread(self._search, query, limit)

    async def _probe(self) -> str:
        missing = [root for root in self._settings.roots if not os.access(root, os.R_OK | os.X_OK)]
        if missing:
            raise ProviderError(f"roots not readable: {', '.join(missing)}")
        return f"{len(self._settings.roots)} root(s)"
