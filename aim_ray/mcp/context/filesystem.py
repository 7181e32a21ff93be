"""The ``filesystem`` context provider: keyword search over text files under its roots.

The tree is walked with ``os.fwalk`` (directory descriptors, symlinks never followed) and
each file is opened relative to its directory's descriptor through ``backends.files``
(no symlinks, size cap, no binaries), so swapping a directory for a symlink mid-walk
cannot lead out of a root. Items are named ``<root name>/<path inside it>``, never by
their host path.
"""

from __future__ import annotations

import asyncio
import math
import os
from fnmatch import fnmatch
from pathlib import PurePath

from aim_ray.config.mcp_providers import FilesystemSettings
from aim_ray.mcp.backends.files import PathRefusedError, display_path, read_text_at
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

    def _documents(self) -> list[tuple[str, str]]:
        """(name, text) of every matching text file, at most ``max_files`` of them."""
        settings = self._settings
        documents: list[tuple[str, str]] = []
        seen = 0
        for root in settings.roots:
            # The root itself may be a symlink (the operator's choice); nothing below it may.
            top = os.path.realpath(root)
            for directory, _, names, dir_fd in os.fwalk(top, follow_symlinks=False):
                for name in sorted(names):
                    relative = os.path.relpath(os.path.join(directory, name), top)
                    if not self._matches(PurePath(relative).as_posix()):
                        continue
                    seen += 1
                    shown = display_path(root, relative)
                    try:
                        text = read_text_at(dir_fd, name, shown, settings.max_bytes)
                    except PathRefusedError:
                        pass  # symlinks, binaries and oversized files are not documents
                    else:
                        documents.append((shown, text))
                    if seen >= settings.max_files:
                        return documents
        return documents

    def _search(self, query: str, limit: int) -> list[ContextItem]:
        query_terms = terms(query)
        scored: list[tuple[float, str, str]] = []
        for path, text in self._documents():
            lowered = text.lower()
            hits = sum(lowered.count(t) for t in query_terms)
            if hits:
                score = hits / math.sqrt(max(len(terms(text)), 1))
                scored.append((score, path, text))
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
        roots = self._settings.roots
        missing = [root for root in roots if not os.access(root, os.R_OK | os.X_OK)]
        if missing:
            # Named as items are (the root's own name), never by host path.
            names = ", ".join(display_path(root, "") for root in missing)
            raise ProviderError(f"{len(missing)} of {len(roots)} root(s) not readable: {names}")
        return f"{len(self._settings.roots)} root(s)"
