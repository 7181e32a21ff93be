"""The project's error base, and the one way a pydantic validation error is worded for a user.

Every error aim-ray raises on purpose for a user to read is an ``AimRayError``. Config files,
application args, tool arguments and request fields are all validated by pydantic at the
edge; ``validation_problems`` turns any of those failures into one line per problem, each
with the place it is at (``models[0].gpus: ...``).
"""

from collections.abc import Collection, Sequence
from typing import Any, Protocol

from pydantic import ValidationError


class _HasErrors(Protocol):
    def errors(self) -> Sequence[Any]: ...


class AimRayError(Exception):
    """A problem the user can fix, with a message that says how; never shown as a traceback."""


def dotted_location(
    loc: Sequence[Any], *, skip_after_index: Collection[str] = (), index_brackets: bool = True
) -> str:
    """A pydantic error location as a path: ``models[0].gpus``.

    Names in ``skip_after_index`` are left out where they follow a list index: a
    discriminated union puts its chosen tag there, a name the user never wrote. Without
    ``index_brackets`` integers read as keys (``profiles.2.dtype``: a mapping keyed by GPU
    count, or a request body's ``messages.0``).
    """
    text, after_index = "", False
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]" if index_brackets else f".{part}"
            after_index = True
            continue
        if not (after_index and part in skip_after_index):
            text += f".{part}"
        after_index = False
    return text.lstrip(".")


def validation_problems(
    error: ValidationError | _HasErrors,
    *,
    root: str = "",
    drop: Collection[str] = (),
    skip_first: int = 0,
    skip_after_index: Collection[str] = (),
    index_brackets: bool = True,
) -> list[str]:
    """One ``place: message`` line per problem in ``error`` (pydantic's, or FastAPI's
    request validation error); a problem without a place is its message alone.

    ``root`` prefixes every place (``mcp``, ``args``); ``drop`` removes location parts that
    are framework plumbing (FastAPI's ``body``); ``skip_first`` drops leading parts (an entry
    validated as item 0 of a list); for the rest see ``dotted_location``. Pydantic's
    ``Value error, `` prefix is removed: the message is ours.
    """
    problems = []
    for item in error.errors():
        loc = [part for part in item["loc"] if part not in drop][skip_first:]
        where = dotted_location(
            loc, skip_after_index=skip_after_index, index_brackets=index_brackets
        )
        place = ".".join(part for part in (root, where) if part)
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{place}: {message}" if place else message)
    return problems
