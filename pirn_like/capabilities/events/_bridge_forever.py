"""``bridge_forever``: keep a bridge pushing, on a poll interval or when notified."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

import anyio

from pirn_like.capabilities.events._bridge import Bridge
from pirn_like.capabilities.events._bridge_models import PushSummary
from pirn_like.triggers._clock import Clock, SystemClock

__all__ = ["bridge_forever", "first_of"]

_log = logging.getLogger("pirn_like.capabilities.events.bridge")

OnPush = Callable[[PushSummary], Awaitable[None] | None]


async def bridge_forever(
    bridge: Bridge,
    *,
    interval: float = 1.0,
    clock: Clock | None = None,
    stop: anyio.Event | None = None,
    on_push: OnPush | None = None,
) -> None:
    """Push, then wait until ``bridge.notify()`` is called, ``interval`` seconds pass on
    ``clock`` (a ``SystemClock`` by default; a ``ManualClock`` in tests) or ``stop`` is
    set; repeat until ``stop`` is set or the task is cancelled.

    A push that fails (sink down, database unreachable) is logged as a warning and
    tried again after the next wait, from the cursor it left: nothing is skipped.
    ``on_push`` (sync or async) gets each successful push's summary, also empty ones.
    The bridge is not closed on return.
    """
    if not interval > 0:
        raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
    clock = clock or SystemClock()
    step = timedelta(seconds=interval)
    while stop is None or not stop.is_set():
        try:
            summary = await bridge.push()
        except Exception as exc:  # the loop outlives a failed push
            _log.warning("%r: push failed, retrying from the cursor: %s", bridge, exc)
        else:
            if on_push is not None:
                returned = on_push(summary)
                if returned is not None:
                    await returned
        await first_of(
            bridge.wait_notified, functools.partial(clock.sleep_until, clock.now() + step), stop
        )


async def first_of(
    notified: Callable[[], Awaitable[None]],
    elapsed: Callable[[], Awaitable[None]],
    stop: anyio.Event | None,
) -> None:
    """Return when the first of the waits returns (``stop`` set, if given)."""
    async with anyio.create_task_group() as tg:

        async def until(wait: Callable[[], Awaitable[None]]) -> None:
            await wait()
            tg.cancel_scope.cancel()

        tg.start_soon(until, notified)
        tg.start_soon(until, elapsed)
        if stop is not None:
            tg.start_soon(until, stop.wait)
