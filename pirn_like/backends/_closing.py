"""Closing what is already open when opening the rest fails."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

__all__ = ["closing_on_error"]


@asynccontextmanager
async def closing_on_error(aclose: Callable[[], Awaitable[object]]) -> AsyncGenerator[None]:
    """If the block raises (or is cancelled), await ``aclose`` before the error goes on.

    Shielded from cancellation: a resource closed halfway would leak its connections.
    """
    try:
        yield
    except BaseException:
        with anyio.CancelScope(shield=True):
            await aclose()
        raise
