"""The project's error base, and the one way a pydantic validation error is worded for a user.

Every error aim-ray raises on purpose for a user to read is an ``AimRayError``. Config files,
application args, tool arguments and request fields are all validated by pydantic at the
edge; ``validation_problems`` turns any of those failures into one line per problem, each
with the place it is at (``models[0].gpus: ...``).
"""

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError


class AimRayError(Exception):
    """A problem the user can fix, with a message that says how; never shown as a traceback."""


def dotted_location(loc: tuple[Any, ...], *, skip_after_index: Collection[str] = ()) -> str:
    """A pydantic error location as a path: ``models[0].gpus``.

    Names in ``skip_after_index`` are left out where they follow a list index: a
    discriminated union puts its chosen tag there, a name the user never wrote.
    """
    text, after_index = "", False
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            after_index = True
            continue
        if not (after_index and part in skip_after_index):
            text += f".{part}"
        after_index = False
    return text.lstrip(".")


def validation_problems(
    error: ValidationError,
    *,
    root: str = "",
    drop: Collection[str] = (),
    skip_after_index: Collection[str] = (),
) -> list[str]:
    """One ``place: message`` line per problem in ``error``.

    ``root`` prefixes every place (``mcp``, ``args``); ``drop`` removes location parts that
    are framework plumbing (FastAPI's ``body``); ``skip_after_index`` see ``dotted_location``.
    Pydantic's ``Value error, `` prefix is removed: the message is ours.
    """
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if part not in drop)
        place = ".".join(
            p for p in (root, dotted_location(loc, skip_after_index=skip_after_index)) if p
        )
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{place or '(top level)'}: {message}")
    return problems
