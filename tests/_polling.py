"""Waiting on state outside the test's event loop (a server's keys, a lock's holder), where
there is no event to wait on: poll a condition, with a deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

_INTERVAL = 0.02


async def wait_until(condition: Callable[[], Awaitable[bool]], deadline: float) -> None:
    """Poll an async condition until it holds, failing after ``deadline`` seconds."""
    with anyio.fail_after(deadline):
        while True:
            if await condition():
                return
            await anyio.sleep(_INTERVAL)
