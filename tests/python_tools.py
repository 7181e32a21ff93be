"""Functions served as ``type: python`` tools by the tests (``import_path:
python_tools:<function>``; the session app's workers find this folder on PYTHONPATH)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from pydantic import Field

from aim_ray.mcp.tools.base import ToolError

KM_PER_MILE = 1.609344


def convert_length(
    value: Annotated[float, Field(description="The length to convert.", ge=0)],
    unit: Annotated[Literal["km", "mi"], Field(description="The unit of `value`.")] = "km",
) -> dict[str, float]:
    """Convert a length between kilometres and miles.

    Returns the other unit, rounded to 3 decimals."""
    if unit == "km":
        return {"mi": round(value / KM_PER_MILE, 3)}
    return {"km": round(value * KM_PER_MILE, 3)}


async def slow_echo(text: str, seconds: float = 0.0) -> str:
    """Echo the text after a pause."""
    await asyncio.sleep(seconds)
    return text


def city_population(city: str) -> int:
    """The population of a city this tool knows."""
    known = {"lisbon": 545_000}
    if city.lower() not in known:
        raise ToolError(f"no figures for {city}")
    return known[city.lower()]


def leaky(path: str) -> str:
    raise ValueError(f"cannot open /srv/secret/{path} with password hunter2")


def unannotated(value) -> str:  # noqa: ANN001 - on purpose: a tool needs annotations
    return str(value)
