"""The default dispatcher: async knots in the event loop, sync knots in worker threads."""

from __future__ import annotations

import functools
from typing import Any, Self

import anyio
import anyio.to_thread

from pirn_like.protocols import KnotCall

__all__ = ["LocalDispatcher"]


class LocalDispatcher:
    """Runs async knots in the current event loop and sync knots in anyio's thread pool.

    A sync knot cannot be interrupted: on timeout or cancellation its thread is
    abandoned and its late result discarded.
    """

    _limiter: anyio.CapacityLimiter | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def inline_async(self) -> bool:
        return True

    async def run(self, call: KnotCall) -> Any:
        if call.is_async:
            return await call.target(**call.kwargs)
        return await anyio.to_thread.run_sync(
            functools.partial(call.target, **call.kwargs),
            abandon_on_cancel=True,
            limiter=self._limiter,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None
