"""Reading local files safely, for the ``filesystem`` provider and the ``file_reader`` tool.

``resolve_under_roots`` confines a requested path to a set of root directories (no ``..``,
no absolute path or symlink leading out of them) and ``read_text_file`` reads it as UTF-8
text under a size cap, refusing binaries, FIFOs and a symlink swapped in after resolution.
Both raise ``PathRefusedError`` with a message safe to show to a client.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aim_ray.errors import AimRayError


class PathRefusedError(AimRayError):
    """A local path is outside the allowed roots, missing, too large or not text."""


def resolve_under_roots(requested: str, roots: list[str]) -> Path:
    """The real path of ``requested`` if it is a regular file inside one of ``roots``.

    Relative paths are tried against each root in order. ``..`` is refused outright, and the
    resolved path (symlinks followed) must still be inside a resolved root, so a symlink
    pointing out of the tree is refused too.
    """
    if not requested or "\x00" in requested:
        raise PathRefusedError("empty or invalid path")
    path = Path(requested)
    if ".." in path.parts:
        raise PathRefusedError("'..' is not allowed in paths")
    real_roots = [Path(root).resolve() for root in roots]
    candidates = [path] if path.is_absolute() else [root / path for root in real_roots]
    for candidate in candidates:
        real = candidate.resolve()
        if not any(real.is_relative_to(root) for root in real_roots):
            if path.is_absolute() or os.path.lexists(candidate):
                raise PathRefusedError(f"{requested!r} is outside the allowed directories")
            continue
        if real.is_file():
            return real
        if real.exists():
            raise PathRefusedError(f"{requested!r} is not a regular file")
    raise PathRefusedError(f"{requested!r} not found in the allowed directories")


def read_text_file(path: Path, max_bytes: int) -> str:
    """UTF-8 text of a regular file no larger than ``max_bytes``; binary files are refused."""
    # O_NOFOLLOW: the path was resolved, so a symlink here was swapped in since; O_NONBLOCK:
    # never hang on a FIFO.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise PathRefusedError(f"cannot open {path.name!r}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise PathRefusedError(f"{path.name!r} is not a regular file")
        size = status.st_size
        if size > max_bytes:
            raise PathRefusedError(f"{path.name!r} is {size} bytes, over the {max_bytes} limit")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PathRefusedError(f"{path.name!r} is over the {max_bytes} byte limit")
    if b"\x00" in data:
        raise PathRefusedError(f"{path.name!r} is a binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PathRefusedError(f"{path.name!r} is not UTF-8 text") from None
