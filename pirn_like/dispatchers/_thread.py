"""A dispatcher with its own bounded pool of worker threads for sync knots."""

from __future__ import annotations

import anyio

from pirn_like.dispatchers._local import LocalDispatcher

__all__ = ["ThreadDispatcher"]


class ThreadDispatcher(LocalDispatcher):
    """Runs sync knots on at most ``max_workers`` threads; async knots stay in the loop.

    Use it to cap (or raise) how many blocking knots run at once, separately from
    anyio's shared default pool of 40 threads.
    """

    def __init__(self, max_workers: int = 8) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._limiter = anyio.CapacityLimiter(max_workers)
