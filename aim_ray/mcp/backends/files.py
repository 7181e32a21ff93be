"""Reading local files safely, for the ``filesystem`` provider and the ``file_reader`` tool.

Every open is relative to a root directory's file descriptor and walks the path one
component at a time: directories with ``O_DIRECTORY | O_NOFOLLOW``, the file with
``O_NOFOLLOW``. The check and the open are therefore one operation, so a directory swapped
for a symlink between them cannot lead out of the root (a check on path strings followed by
an open by name can). The price: symlinks are never followed below a root, even those that
stay inside it. The configured root itself may be a symlink (the operator chose it).

The size cap, the refusal of binaries and non-regular files all read the opened
descriptor. Errors are ``PathRefusedError``s whose message names only what the client
asked for, never a root or another host path.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from aim_ray.errors import AimRayError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO must never hang the reader; O_NOCTTY: a terminal must not attach.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class PathRefusedError(AimRayError):
    """A local path is outside the allowed roots, missing, too large or not text."""


class _NotHere(Exception):
    """The path does not exist under this root; the next root may have it."""


@dataclass(frozen=True)
class TextFile:
    """A file read under a root: ``path`` is relative to the root's name (``docs/a.md``)."""

    path: str
    text: str


def display_path(root: str, relative: str) -> str:
    """How a file is named to clients: the root's own name, then the path inside it."""
    return (PurePosixPath(os.path.basename(os.path.normpath(root))) / relative).as_posix()


def _relative_parts(requested: str, roots: list[str]) -> Iterator[tuple[str, list[str]]]:
    """(root, components) pairs to try: every root for a relative path, the matching root
    for an absolute one. ``..`` is refused outright, never normalised away."""
    if not requested or "\x00" in requested:
        raise PathRefusedError("empty or invalid path")
    path = PurePosixPath(requested)
    if ".." in path.parts:
        raise PathRefusedError("'..' is not allowed in paths")
    if not path.is_absolute():
        parts = [p for p in path.parts if p != "."]
        for root in roots:
            yield root, parts
        return
    for root in roots:
        for base in dict.fromkeys([os.path.abspath(root), os.path.realpath(root)]):
            if path.is_relative_to(base):
                yield root, list(path.relative_to(base).parts)
                return
    raise PathRefusedError(f"{requested!r} is outside the allowed directories")


def _refusal(requested: str, error: OSError) -> PathRefusedError:
    if error.errno in {errno.ELOOP, errno.EMLINK}:
        return PathRefusedError(
            f"{requested!r} is outside the allowed directories (symlinks are not followed)"
        )
    if error.errno in {errno.EACCES, errno.EPERM}:
        return PathRefusedError(f"{requested!r}: permission denied")
    return PathRefusedError(f"{requested!r} cannot be opened")


def _open_beneath(root: str, parts: list[str]) -> int:
    """A descriptor for ``root/parts...`` opened without following any symlink below root.

    Raises ``_NotHere`` when a component is missing, ``OSError`` for anything else.
    """
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "a root is not a file")
    try:
        dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _NotHere from None
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        part = parts[-1]
        return os.open(part, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _NotHere from None
    except NotADirectoryError:
        # O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR, not ELOOP.
        if stat.S_ISLNK(os.lstat(part, dir_fd=dir_fd).st_mode):
            raise OSError(errno.ELOOP, "symlink") from None
        raise _NotHere from None
    finally:
        os.close(dir_fd)


def read_fd_text(fd: int, name: str, max_bytes: int) -> str:
    """UTF-8 text from an open descriptor (closed here) of a regular file, size-capped."""
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise PathRefusedError(f"{name!r} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if status.st_size > max_bytes:
            raise PathRefusedError(
                f"{name!r} is {status.st_size} bytes, over the {max_bytes} limit"
            )
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PathRefusedError(f"{name!r} is over the {max_bytes} byte limit")
    if b"\x00" in data:
        raise PathRefusedError(f"{name!r} is a binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PathRefusedError(f"{name!r} is not UTF-8 text") from None


def read_text_at(dir_fd: int, name: str, shown_as: str, max_bytes: int) -> str:
    """The text of file ``name`` in the open directory ``dir_fd``, never through a symlink."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as error:
        raise _refusal(shown_as, error) from None
    return read_fd_text(fd, shown_as, max_bytes)


def read_under_roots(requested: str, roots: list[str], max_bytes: int) -> TextFile:
    """The text of ``requested``, a regular file below one of ``roots`` (tried in order)."""
    for root, parts in _relative_parts(requested, roots):
        try:
            fd = _open_beneath(root, parts)
        except _NotHere:
            continue
        except OSError as error:
            raise _refusal(requested, error) from None
        text = read_fd_text(fd, requested, max_bytes)
        return TextFile(path=display_path(root, "/".join(parts)), text=text)
    raise PathRefusedError(f"{requested!r} not found in the allowed directories")
