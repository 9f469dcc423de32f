"""A trigger over a fixed list of requests that records how each was settled (for tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Self

import anyio

from pirn_like import RunOutcome, RunRequest
from pirn_like.protocols import RunHistory


@dataclass
class ListDelivery:
    request: RunRequest
    owner: ListTrigger

    async def settle(self, outcome: RunOutcome) -> None:
        history = self.owner.history
        if history is not None:  # the contract: settled only once the run is recorded
            recorded = await history.get_run(outcome.run_id)
            self.owner.recorded_at_settle.append(recorded.status if recorded else None)
        self.owner.settled.append(outcome)
        self.owner.changed.set()

    async def release(self) -> None:
        self.owner.released.append(self.request)
        self.owner.changed.set()


@dataclass
class ListTrigger:
    """Delivers ``requests`` in order, then runs dry (or waits forever with ``hold``)."""

    requests: Iterable[RunRequest]
    kind: str = "list"
    hold: bool = False
    history: RunHistory | None = None
    pulled: int = 0
    settled: list[RunOutcome] = field(default_factory=list)
    released: list[RunRequest] = field(default_factory=list)
    recorded_at_settle: list[object] = field(default_factory=list)
    changed: anyio.Event = field(default_factory=anyio.Event)
    entered: bool = False
    exited: bool = False

    async def __aenter__(self) -> Self:
        self.entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.exited = True

    async def deliveries(self) -> AsyncIterator[ListDelivery]:
        for request in self.requests:
            self.pulled += 1
            self.changed.set()
            yield ListDelivery(request, self)
        if self.hold:
            await anyio.sleep_forever()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checking each time the trigger changes."""
        while not condition():
            self.changed = anyio.Event()
            await self.changed.wait()

    async def wait_until(self, done: int) -> None:
        """Wait until ``done`` deliveries were settled or released."""
        await self.wait_for(lambda: len(self.settled) + len(self.released) >= done)
