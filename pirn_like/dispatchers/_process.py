"""A dispatcher that runs knots in a pool of local worker processes."""

from __future__ import annotations

import os
from typing import Any, Self

import anyio
import anyio.to_process

from pirn_like.dispatchers._remote import (
    RemoteOptions,
    SharedOpening,
    pack_call,
    require_cloudpickle,
    run_payload,
    unpack_result,
    worker_lost,
)
from pirn_like.protocols import KnotCall

__all__ = ["ProcessDispatcher"]


class ProcessDispatcher:
    """Runs every knot in a local worker process, at most ``max_workers`` at once.

    For CPU-bound knots: each runs outside the caller's interpreter, so knots run in
    parallel despite the GIL. The workers are anyio's process pool: they start on first
    use and stay warm (idle ones are reused for up to five minutes) for the rest of the
    event loop, across runs. ``max_workers`` defaults to the number of CPUs.

    Cancellation (a timeout or a cancelled run) kills the worker process running the knot,
    so its work stops at once: a process dispatcher gives hard timeouts. A worker that
    dies mid-knot raises ``WorkerLostError``. Works on asyncio and trio.
    """

    def __init__(
        self, max_workers: int | None = None, *, options: RemoteOptions | None = None
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.options = options or RemoteOptions()
        self._limiter = anyio.CapacityLimiter(max_workers or os.cpu_count() or 2)
        self._opening = SharedOpening(self.name)

    @property
    def name(self) -> str:
        return type(self).__name__

    async def run(self, call: KnotCall) -> Any:
        self._opening.check()
        payload = await pack_call(call, self.options)
        try:
            result = await anyio.to_process.run_sync(
                run_payload, payload, cancellable=True, limiter=self._limiter
            )
        except anyio.BrokenWorkerProcess as error:
            reason = error.__cause__ or error
            raise worker_lost(call, "process", f"{type(reason).__name__}: {reason}") from error
        return await unpack_result(result, self.options)

    async def __aenter__(self) -> Self:
        await self._opening.enter(self._open)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._opening.exit(self._close)

    async def _open(self) -> None:
        if self.options.code == "pickle":
            require_cloudpickle(self.name, "process")

    async def _close(self) -> None:
        """Nothing to stop: the worker processes belong to anyio's pool for the event loop,
        so they stay warm for later runs and anyio stops them when the loop ends."""
