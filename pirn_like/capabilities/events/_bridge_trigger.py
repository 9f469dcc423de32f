"""``BridgeTrigger``: a run of a tapestry with a ``BridgePush`` whenever a bridge has
events to send, so that every push of a service is recorded with its lineage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Self

import anyio

from pirn_like.capabilities.events._bridge import Bridge
from pirn_like.capabilities.events._bridge_forever import first_of
from pirn_like.core._records import RunOutcome, RunRequest
from pirn_like.triggers._clock import Clock, SystemClock

__all__ = ["BridgeTrigger"]


class BridgeTrigger:
    """Delivers a run request whenever ``bridge`` has events after its cursor.

    Serve it with ``run_forever(BridgeTrigger(bridge), tapestry)``, where the tapestry
    holds a ``BridgePush(bridge=bridge)``: each push is then a run in the history. The
    trigger checks for events (one read of ``events_since``) when ``bridge.notify()``
    is called or every ``interval`` seconds on ``clock``, and delivers one request at a
    time: the next only once the previous run is recorded, since two runs at once
    would push the same events. After a failed run it waits ``interval`` before trying
    again from the cursor. Requests carry ``parameters`` and record
    ``{"kind": "bridge", "source": <bridge name>, "after_seq": <cursor>}``; their run
    ids are fresh (the cursor, not the run id, keeps a push from repeating).
    """

    kind = "bridge"

    def __init__(
        self,
        bridge: Bridge,
        *,
        interval: float = 1.0,
        clock: Clock | None = None,
        parameters: Mapping[str, object] | None = None,
    ) -> None:
        if not isinstance(bridge, Bridge):
            raise TypeError(f"BridgeTrigger needs a Bridge, got {bridge!r}")
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self.bridge = bridge
        self.interval = interval
        self.clock = clock or SystemClock()
        self.parameters = dict(parameters or {})

    def __repr__(self) -> str:
        return f"BridgeTrigger({self.bridge!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None  # the bridge is the caller's (the tapestry's knot uses it too)

    async def deliveries(self) -> AsyncIterator[_BridgeDelivery]:
        while True:
            position = await self.bridge.position()
            if await self._pending(position):
                delivery = _BridgeDelivery(
                    RunRequest(
                        parameters=dict(self.parameters),
                        trigger={
                            "kind": self.kind,
                            "source": self.bridge.name,
                            "after_seq": position,
                        },
                    )
                )
                yield delivery
                await delivery.done.wait()
                if delivery.succeeded:
                    continue
                await self._sleep()  # a failing sink: do not spin
            else:
                await first_of(self.bridge.wait_notified, self._sleep, None)

    async def _pending(self, position: int) -> bool:
        found = await self.bridge.store.events_since(
            position, limit=1, entity_types=self.bridge.entity_types
        )
        return bool(found)

    async def _sleep(self) -> None:
        moment = self.clock.now() + timedelta(seconds=self.interval)
        await self.clock.sleep_until(moment)


class _BridgeDelivery:
    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.done = anyio.Event()
        self.succeeded = False

    async def settle(self, outcome: RunOutcome) -> None:
        self.succeeded = outcome.succeeded
        self.done.set()

    async def release(self) -> None:
        self.done.set()
