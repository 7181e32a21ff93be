"""Text cut into overlapping chunks, each with an id that stays the same on re-runs.

A chunk ends at the last paragraph break, else line break, else sentence end, else space
in its second half, so chunks rarely split a word; the next one starts ``overlap_chars``
before that end (at a word), so a sentence cut at a border is whole in one of the two.
The id is ``<source>#<index>``: ingesting a changed file again overwrites its chunks in
place, and the chunks past its new end are removed (``stores``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BREAKS = ("\n\n", "\n", ". ", " ")


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    index: int
    title: str
    text: str

    def metadata(self) -> dict[str, str | int]:
        return {"source": self.source, "chunk": self.index, "title": self.title}


def chunk_id(source: str, index: int) -> str:
    return f"{source}#{index}"


def split_text(text: str, chunk_chars: int, overlap_chars: int) -> list[str]:
    """Pieces of at most ``chunk_chars`` characters, consecutive ones sharing about
    ``overlap_chars``."""
    text = re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n")).strip()
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = _end_of_piece(text, start, chunk_chars)
        piece = text[start:end].strip()
        if piece:
            pieces.append(piece)
        if end >= len(text):
            break
        start = _next_start(text, start, end, overlap_chars)
    return pieces


def _end_of_piece(text: str, start: int, chunk_chars: int) -> int:
    end = start + chunk_chars
    if end >= len(text):
        return len(text)
    half = start + chunk_chars // 2
    for mark in _BREAKS:
        found = text.rfind(mark, half, end)
        if found != -1:
            return found + len(mark)
    return end


def _next_start(text: str, start: int, end: int, overlap_chars: int) -> int:
    candidate = max(end - overlap_chars, start + 1)
    if candidate < end and not text[candidate - 1].isspace():
        space = text.find(" ", candidate, end)
        candidate = end if space == -1 else space + 1
    return candidate


def chunk_document(
    source: str, title: str, text: str, chunk_chars: int, overlap_chars: int
) -> list[Chunk]:
    return [
        Chunk(chunk_id(source, index), source, index, title, piece)
        for index, piece in enumerate(split_text(text, chunk_chars, overlap_chars))
    ]
