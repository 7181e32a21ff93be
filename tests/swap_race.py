"""The attack run's race, as a test helper: a directory inside a root flips between itself
and a symlink to a directory outside the root, in a thread, while the test reads through it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def directory_swapped_for_symlink(directory: Path, outside: Path) -> Iterator[None]:
    """Keep swapping ``directory`` for a symlink to ``outside`` and back until the block ends;
    ``directory`` is in place again afterwards."""
    parked = directory.with_name(f"{directory.name}-parked")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            directory.rename(parked)
            directory.symlink_to(outside, target_is_directory=True)
            directory.unlink()
            parked.rename(directory)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        yield
    finally:
        stop.set()
        swapper.join()
