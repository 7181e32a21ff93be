"""What every context provider is: the ``ContextProvider`` base class and ``ProviderError``.

A provider answers ``retrieve(query, limit)`` with ``ContextItem``s or raises an
``AimRayError`` whose message is safe to show (``ProviderError``, or a backend's own such
as ``DatabaseError``); its ``health`` probes the backend within a short timeout and reports
any failure as ``down`` with a secret-free reason, never raising.
"""

from __future__ import annotations

import asyncio
import re
import time
from abc import ABC, abstractmethod

from aim_ray.errors import AimRayError
from aim_ray.mcp.backends.secrets import describe_error
from aim_ray.mcp.protocol import ContextItem, ProviderHealth, elapsed_ms

_HEALTH_TIMEOUT_S = 5.0


class ProviderError(AimRayError):
    """A provider could not answer (down, misconfigured, bad response); safe to show."""


class ContextProvider(ABC):
    """One source of context. ``retrieve`` raises an ``AimRayError`` when it cannot answer."""

    kind: str = ""

    def __init__(self, name: str, timeout_s: float, description: str | None = None) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.description = description or f"{self.kind} context provider {name!r}"

    @abstractmethod
    async def retrieve(self, query: str, limit: int) -> list[ContextItem]: ...

    @abstractmethod
    async def _probe(self) -> str:
        """Check the backend; return a short detail (no secrets), raise when down."""

    async def health(self) -> ProviderHealth:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(min(self.timeout_s, _HEALTH_TIMEOUT_S)):
                detail = await self._probe()
        except TimeoutError:
            return ProviderHealth(status="down", detail="timed out", latency_ms=elapsed_ms(start))
        except Exception as error:  # health reports any failure as "down", with its reason
            return ProviderHealth(
                status="down", detail=describe_error(error), latency_ms=elapsed_ms(start)
            )
        return ProviderHealth(status="up", detail=detail, latency_ms=elapsed_ms(start))

    async def close(self) -> None:
        return None


def terms(text: str) -> list[str]:
    """The words of ``text`` keyword matching compares: lower-cased, longer than one letter."""
    return [t for t in re.findall(r"\w+", text.lower()) if len(t) > 1]
