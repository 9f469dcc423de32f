"""Delivering run events to emitters off the runs' hot path.

Each emitter gets its own bounded queue and one delivery task. A run hands an event
to every queue without waiting (``EmitterHub.send``) and never waits for delivery,
so a slow, failing or hung emitter costs a run nothing:

- a full queue drops the *newest* event and counts it (``EmitterStats.dropped``),
  with one warning per burst of drops;
- an emitter that raises is logged (once per burst of failures) and gets the next
  events as usual;
- an emitter that takes longer than its timeout on one event is abandoned for that
  event (``EmitterStats.timed_out``) and gets the next.

The delivery tasks belong to the tapestry, not to the task that happened to open
it: runs come from many tasks, and a first run that opened the tapestry may end long
before ``aclose``. So they are tasks of the event loop itself (asyncio tasks, or
trio system tasks) that ``EmitterHub.aclose`` drains and joins, and that the event
loop cancels if it ends first. A hub used from a later event loop (``asyncio.run``
twice) starts new tasks there, which deliver what is still queued.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from pirn_like.core._events import RunEvent
from pirn_like.protocols import Emitter

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "CLOSE_TIMEOUT",
    "EMIT_TIMEOUT",
    "QUEUE_SIZE",
    "EmitterHub",
    "EmitterStats",
    "check_queue_size",
]

_log = logging.getLogger("pirn_like.engine")

EMIT_TIMEOUT = 10.0
"""Seconds one emitter may take for one event before that event is abandoned
(an emitter's own ``emit_timeout`` attribute overrides it)."""

QUEUE_SIZE = 10_000
"""Events each emitter's queue holds by default (``Tapestry(emitter_queue_size=...)``,
or an emitter's own ``queue_size`` attribute)."""

CLOSE_TIMEOUT = 10.0
"""Seconds ``aclose`` lets emitters deliver what is queued before cancelling them."""

# Delivery tasks on asyncio are plain tasks: the loop keeps only weak references to them.
_asyncio_tasks: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class EmitterStats:
    """One emitter's delivery queue, as metrics and health checks see it.

    ``queued`` events wait in the queue (at most ``capacity``); ``delivered``,
    ``failed`` (the emitter raised) and ``timed_out`` count events handed to the
    emitter; ``dropped`` counts events refused because the queue was full, or left
    undelivered when the tapestry closed.
    """

    name: str
    queued: int
    capacity: int
    delivered: int
    failed: int
    timed_out: int
    dropped: int


class _Outbox:
    """One emitter's queue, its delivery loop and its counters."""

    __slots__ = (
        "_idle",
        "_wake",
        "busy",
        "capacity",
        "closing",
        "delivered",
        "dropped",
        "dropping",
        "emitter",
        "events",
        "failed",
        "failing",
        "name",
        "timed_out",
        "timeout",
    )

    def __init__(self, emitter: Emitter, name: str, capacity: int) -> None:
        self.emitter = emitter
        self.name = name
        self.capacity = capacity
        timeout = getattr(emitter, "emit_timeout", None)
        self.timeout: float | None = float(timeout) if timeout is not None else None
        self.events: deque[RunEvent] = deque()
        self.busy = False
        self.closing = False
        self.delivered = self.failed = self.timed_out = self.dropped = 0
        self.dropping = False  # inside a burst of drops: warned once already
        self.failing = False  # inside a burst of failures: logged once already
        self._wake: anyio.Event | None = None
        self._idle: anyio.Event | None = None

    def put(self, event: RunEvent) -> None:
        if len(self.events) >= self.capacity:
            self.dropped += 1
            if not self.dropping:
                self.dropping = True
                _log.warning(
                    "emitter %s is %d events behind (its queue is full): dropping new "
                    "events until it catches up; runs are not affected",
                    self.name,
                    self.capacity,
                )
            return
        self.events.append(event)
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def wake(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()

    def forget_loop(self) -> None:
        """Forget wake-up signals made on an event loop that ended: setting them fails."""
        self._wake = None
        self._idle = None

    def stats(self) -> EmitterStats:
        return EmitterStats(
            name=self.name,
            queued=len(self.events),
            capacity=self.capacity,
            delivered=self.delivered,
            failed=self.failed,
            timed_out=self.timed_out,
            dropped=self.dropped,
        )

    async def deliver(self) -> None:
        """Hand queued events to the emitter, one at a time, until closed and empty."""
        events = self.events
        try:
            while True:
                if not events:
                    self._caught_up()
                    if self.closing:
                        return
                    self._wake = wake = anyio.Event()
                    await wake.wait()
                    continue
                event = events.popleft()
                self.busy = True
                try:
                    await self._emit(event)
                finally:
                    self.busy = False
        finally:
            idle = self._idle
            self.forget_loop()
            if idle is not None:
                idle.set()

    async def _emit(self, event: RunEvent) -> None:
        timeout = self.timeout if self.timeout is not None else EMIT_TIMEOUT
        try:
            with anyio.move_on_after(timeout) as scope:
                await self.emitter.emit(event)
        except Exception:
            self.failed += 1
            if not self.failing:
                self.failing = True
                _log.exception(
                    "emitter %s failed on %s; it keeps getting events, further failures "
                    "are logged once it works again",
                    self.name,
                    type(event).__name__,
                )
            return
        if scope.cancelled_caught:
            self.timed_out += 1
            if not self.failing:
                self.failing = True
                _log.error(
                    "emitter %s took over %gs on %s, which was abandoned; it keeps getting "
                    "events, further timeouts are logged once it works again",
                    self.name,
                    timeout,
                    type(event).__name__,
                )
            return
        self.delivered += 1
        if self.failing:
            self.failing = False
            _log.info(
                "emitter %s works again (%d failed, %d timed out so far)",
                self.name,
                self.failed,
                self.timed_out,
            )

    def _caught_up(self) -> None:
        if self.dropping:
            self.dropping = False
            _log.warning("emitter %s caught up; %d events dropped so far", self.name, self.dropped)
        idle, self._idle = self._idle, None
        if idle is not None:
            idle.set()

    async def idle(self) -> None:
        """Return once nothing is queued or being delivered."""
        while self.events or self.busy:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()


class _Host:
    """The delivery tasks of a hub on one event loop."""

    def __init__(self, loop: object, tasks: int) -> None:
        self.loop = loop
        self.running = tasks
        self.done = anyio.Event()
        self.scopes: list[anyio.CancelScope] = []

    def cancel(self) -> None:
        for scope in self.scopes:
            scope.cancel()


class EmitterHub:
    """Fans events out to ``emitters``, each through its own bounded queue and task.

    ``send`` is what runs call; ``ensure_running`` starts (or restarts, on a new
    event loop) the delivery tasks; ``flush`` waits for the queues to empty;
    ``aclose`` drains them for at most ``close_timeout`` seconds, then cancels.
    """

    def __init__(
        self,
        emitters: Sequence[Emitter],
        *,
        queue_size: int = QUEUE_SIZE,
        close_timeout: float | None = None,
    ) -> None:
        check_queue_size("emitter_queue_size", queue_size)
        self._boxes = tuple(
            _Outbox(emitter, name, _queue_size(emitter, queue_size))
            for emitter, name in zip(emitters, _names(emitters), strict=True)
        )
        self._close_timeout = close_timeout
        self._host: _Host | None = None
        self._closed = False
        boxes = self._boxes
        if len(boxes) == 1:
            self.send: Callable[[RunEvent], None] = boxes[0].put
        else:

            def send(event: RunEvent) -> None:
                for box in boxes:
                    box.put(event)

            self.send = send

    def stats(self) -> tuple[EmitterStats, ...]:
        """Each emitter's queue depth and counters, in the order emitters were given."""
        return tuple(box.stats() for box in self._boxes)

    def ensure_running(self) -> None:
        """Start the delivery tasks on the running event loop, unless they run there."""
        if self._closed:
            return
        loop = _current_loop()
        host = self._host
        if host is not None and host.loop is loop and not host.done.is_set():
            return
        self._host = host = _Host(loop, len(self._boxes))
        for box in self._boxes:
            box.forget_loop()
            _spawn(loop, _deliver, box, host)

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued event was handed to its emitter; False on timeout."""
        self.ensure_running()
        with anyio.move_on_after(timeout):
            for box in self._boxes:
                await box.idle()
            return True
        return False

    async def aclose(self) -> None:
        """Deliver what is queued (within ``close_timeout``), then stop the tasks."""
        if any(box.events for box in self._boxes):
            self.ensure_running()  # a later event loop: deliver what an earlier one left
        self._closed = True
        for box in self._boxes:
            box.closing = True
            box.wake()
        host = self._host
        if host is None or host.loop is not _current_loop():
            return  # its event loop ended, and cancelled it
        with anyio.CancelScope(shield=True):
            close_timeout = CLOSE_TIMEOUT if self._close_timeout is None else self._close_timeout
            with anyio.move_on_after(close_timeout):
                await host.done.wait()
            if not host.done.is_set():
                host.cancel()
                await host.done.wait()
        for box in self._boxes:
            if box.events:
                box.dropped += len(box.events)
                _log.warning(
                    "emitter %s did not get %d events before the tapestry closed",
                    box.name,
                    len(box.events),
                )
                box.events.clear()


def _names(emitters: Sequence[Emitter]) -> list[str]:
    """Each emitter's ``name`` attribute or class name, numbered when repeated."""
    names: list[str] = []
    for emitter in emitters:
        given = getattr(emitter, "name", None)
        base = given if isinstance(given, str) and given else type(emitter).__name__
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


def _queue_size(emitter: Emitter, default: int) -> int:
    own = getattr(emitter, "queue_size", None)
    if own is None:
        return default
    check_queue_size(f"{type(emitter).__name__}.queue_size", own)
    return int(own)


def check_queue_size(what: str, size: object) -> None:
    """``ValueError`` naming ``what`` unless ``size`` is a positive int."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{what} must be a positive number of events, got {size!r}")


def _current_loop() -> object:
    """The running event loop (asyncio) or trio run (its token)."""
    import asyncio  # imported on first use: keeps `import pirn_like` light

    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio
        import trio

        return trio.lowlevel.current_trio_token()


async def _deliver(box: _Outbox, host: _Host) -> None:
    """One emitter's delivery task: ``box.deliver()``, cancelled by ``host.cancel()``."""
    try:
        with anyio.CancelScope() as scope:
            host.scopes.append(scope)
            await box.deliver()
    except Exception:  # pragma: no cover - deliver() catches what emitters raise
        _log.exception("delivery to emitter %s stopped unexpectedly", box.name)
    finally:
        host.running -= 1
        if not host.running:
            host.done.set()


def _spawn(
    loop: Any, deliver: Callable[[_Outbox, _Host], Awaitable[None]], box: _Outbox, host: _Host
) -> None:
    """Run ``deliver(box, host)`` as a task of the event loop itself (see the module doc)."""
    if hasattr(loop, "create_task"):
        task = loop.create_task(deliver(box, host), name=f"pirn_like emitter {box.name}")
        _asyncio_tasks.add(task)
        task.add_done_callback(_asyncio_tasks.discard)
    else:
        import trio

        trio.lowlevel.spawn_system_task(deliver, box, host, name=f"pirn_like emitter {box.name}")
