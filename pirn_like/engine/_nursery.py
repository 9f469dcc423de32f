"""Owning the tasks of one run.

A run may start one task per knot, so task start-up is on the hot path. On asyncio
the nursery starts plain asyncio tasks (a few microseconds each) instead of anyio
tasks, which each carry their own cancel scope and event; it still owns them the
structured way: on exit it waits for every task, on cancellation or failure it
cancels the rest and waits for them before re-raising. Other event loops get an
anyio task group.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, Self

import anyio

if TYPE_CHECKING:
    import asyncio

    from anyio.abc import TaskGroup

__all__ = ["Nursery", "open_nursery"]


class Nursery(Protocol):
    """Starts ``fn()`` as a task owned by the enclosing ``async with``."""

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> bool | None: ...


class _AsyncioNursery:
    __slots__ = ("_failure", "_idle", "_loop", "_tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None

    async def __aenter__(self) -> Self:
        return self

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = self._loop.create_task(fn())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None and self._failure is None:
            self._failure = exc
            for other in self._tasks:
                other.cancel()
        if not self._tasks and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def __aexit__(self, *exc_info: object) -> bool | None:
        try:
            while self._tasks:
                self._idle = self._loop.create_future()
                await self._idle
        except BaseException:
            await self._cancel_all()
            raise
        if exc_info[1] is not None:
            await self._cancel_all()
        if self._failure is not None:
            raise self._failure
        return None

    async def _cancel_all(self) -> None:
        with anyio.CancelScope(shield=True):
            while self._tasks:
                for task in self._tasks:
                    task.cancel()
                await _asyncio().wait(set(self._tasks))


class _AnyioNursery:
    __slots__ = ("_tg",)

    def __init__(self) -> None:
        self._tg: TaskGroup = anyio.create_task_group()

    async def __aenter__(self) -> Self:
        await self._tg.__aenter__()
        return self

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._tg.start_soon(fn)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._tg.__aexit__(*exc_info)


def _asyncio() -> Any:
    import asyncio  # imported on first run: keeps `import pirn_like` light

    return asyncio


def open_nursery() -> Nursery:
    """A nursery suited to the running event loop."""
    try:
        loop = _asyncio().get_running_loop()
    except RuntimeError:  # not asyncio (trio)
        return _AnyioNursery()
    return _AsyncioNursery(loop)
