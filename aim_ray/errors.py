"""The project's error base: every error aim-ray raises on purpose for a user to read."""

from typing import Any


class AimRayError(Exception):
    """A problem the user can fix, with a message that says how; never shown as a traceback."""


def dotted_location(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a path: ``models[0].gpus``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
