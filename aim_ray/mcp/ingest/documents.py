"""Which files an ingest path names, and each file read as plain text.

A directory is walked in sorted order, without following symlinks or entering hidden
folders, for the suffixes in ``SUFFIXES``; a file named on its own is read whatever its
suffix, as long as it is text. A document is named by its ``source``: the given
directory's own name and the path inside it (``docs/architecture.md``), or a file's name.
The name never holds a host path, and the same files give the same names wherever the
command runs from, so re-running updates rather than duplicates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.files import display_path
from aim_ray.mcp.backends.html import html_to_text

MARKDOWN = {".md", ".markdown"}
HTML = {".html", ".htm"}
PDF = {".pdf"}
SUFFIXES = frozenset({".txt", ".rst", *MARKDOWN, *HTML, *PDF})
MAX_FILE_BYTES = 32 * 1024 * 1024


class DocumentError(AimRayError):
    """A file could not be read as a document; the message names it by its source."""


@dataclass(frozen=True)
class DocumentFile:
    """A file to ingest: where it is on this host, and the name it is stored under."""

    path: Path
    source: str


@dataclass(frozen=True)
class Document:
    source: str
    title: str
    text: str


def find_files(paths: list[str | Path]) -> list[DocumentFile]:
    """The files the paths name, each once, in a stable order."""
    found: dict[str, DocumentFile] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for file in _walk(path):
                relative = file.relative_to(path).as_posix()
                source = display_path(str(path.resolve()), relative)
                found.setdefault(source, DocumentFile(file, source))
        elif path.is_file():
            found.setdefault(path.name, DocumentFile(path, path.name))
        else:
            raise DocumentError(f"{given}: no such file or directory")
    return list(found.values())


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            file = Path(folder) / name
            wanted = file.suffix.lower() in SUFFIXES and not name.startswith(".")
            if wanted and not file.is_symlink():
                yield file


def read_document(file: DocumentFile) -> Document:
    """The file's title and text; ``DocumentError`` if it is too big, binary or unreadable."""
    try:
        size = file.path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(f"{file.source}: {size} bytes, over the {MAX_FILE_BYTES} limit")
        suffix = file.path.suffix.lower()
        if suffix in PDF:
            title, text = _read_pdf(file)
        else:
            title, text = _read_text(file, suffix)
    except OSError as error:
        raise DocumentError(f"{file.source}: {error.strerror or 'cannot be read'}") from None
    return Document(file.source, title or file.path.stem, text)


def _read_text(file: DocumentFile, suffix: str) -> tuple[str, str]:
    raw = file.path.read_bytes()
    if b"\x00" in raw:
        raise DocumentError(f"{file.source}: binary file, not text")
    text = raw.decode("utf-8", errors="replace")
    if suffix in HTML:
        return html_to_text(text)
    if suffix in MARKDOWN:
        heading = re.search(r"^#\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
        return (heading.group(1) if heading else ""), text
    return "", text


def _read_pdf(file: DocumentFile) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(file.path)
        if reader.is_encrypted:
            raise DocumentError(f"{file.source}: encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except PdfReadError as error:
        raise DocumentError(f"{file.source}: not a readable PDF ({error})") from None
    return str(title), "\n\n".join(pages)
