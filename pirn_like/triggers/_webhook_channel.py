"""The bounded hand-over between a webhook's HTTP handlers and ``run_forever``.

A handler offers a delivery and waits until ``run_forever`` takes it (a run slot was
free) or gives up and withdraws it; it then waits for the outcome if its client asked
to. Everything here runs in one event loop, so each state change happens between
two awaits and no handler and consumer can both claim one delivery.
"""

from __future__ import annotations

import enum
import logging
from collections import deque

import anyio

from pirn_like.core._records import RunOutcome, RunRequest

__all__ = ["DeliveryChannel", "DeliveryState", "Refusal", "WebhookDelivery"]

_log = logging.getLogger("pirn_like.triggers")


class DeliveryState(enum.Enum):
    """Where one webhook delivery stands."""

    QUEUED = "queued"
    TAKEN = "taken"
    WITHDRAWN = "withdrawn"
    SETTLED = "settled"
    RELEASED = "released"


class Refusal(enum.Enum):
    """Why the channel did not take a delivery."""

    CLOSED = "closed"
    FULL = "full"
    IN_PROGRESS = "in_progress"


class WebhookDelivery:
    """One accepted POST: the run it asks for, and how that run ended."""

    def __init__(self, request: RunRequest, channel: DeliveryChannel) -> None:
        self._request = request
        self._channel = channel
        self.state = DeliveryState.QUEUED
        self.outcome: RunOutcome | None = None
        self.taken = anyio.Event()
        """Set once the delivery is taken by a consumer, or withdrawn."""
        self.done = anyio.Event()
        """Set once the delivery is settled or released."""

    @property
    def request(self) -> RunRequest:
        return self._request

    async def settle(self, outcome: RunOutcome) -> None:
        """The run is recorded (or was refused): tell the waiting client, if any."""
        if outcome.error is not None:
            # A client answered 202 learns of a refusal only from the log.
            _log.warning("webhook run %s was refused: %s", outcome.run_id, outcome.error)
        self.outcome = outcome
        self.end(DeliveryState.SETTLED)

    async def release(self) -> None:
        """The service stopped before the run finished."""
        self.end(DeliveryState.RELEASED)

    def end(self, state: DeliveryState) -> None:
        if self.state is DeliveryState.TAKEN:
            self.state = state
            self._channel.forget(self)
            self.done.set()


class DeliveryChannel:
    """At most ``capacity`` deliveries waiting for ``run_forever``, in arrival order.

    A run id is in the channel from its offer until its delivery is withdrawn,
    settled or released; a second offer of it meanwhile is refused (``IN_PROGRESS``),
    so one Idempotency-Key never runs twice at once.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.is_open = False
        self.consumers = 0
        self._queue: deque[WebhookDelivery] = deque()
        self._live: dict[str, WebhookDelivery] = {}
        self._arrived: anyio.Event | None = None

    def offer(self, request: RunRequest) -> WebhookDelivery | Refusal:
        """Queue a delivery of ``request`` (which has a run id), or say why not."""
        if not self.is_open:
            return Refusal.CLOSED
        run_id = request.run_id or ""
        if run_id in self._live:
            return Refusal.IN_PROGRESS
        if len(self._queue) >= self.capacity:
            return Refusal.FULL
        delivery = WebhookDelivery(request, self)
        self._queue.append(delivery)
        self._live[run_id] = delivery
        if self._arrived is not None:
            self._arrived.set()
        return delivery

    async def take(self) -> WebhookDelivery | None:
        """The next delivery (now TAKEN), waiting for one; None once closed."""
        while self.is_open:
            if self._queue:
                delivery = self._queue.popleft()
                delivery.state = DeliveryState.TAKEN
                delivery.taken.set()
                return delivery
            if self._arrived is None or self._arrived.is_set():
                self._arrived = anyio.Event()
            await self._arrived.wait()
        return None

    def withdraw(self, delivery: WebhookDelivery) -> None:
        """Take back a delivery nobody took yet (its client gave up); else nothing."""
        if delivery.state is DeliveryState.QUEUED:
            self._queue.remove(delivery)
            delivery.state = DeliveryState.WITHDRAWN
            self.forget(delivery)
            delivery.taken.set()

    def forget(self, delivery: WebhookDelivery) -> None:
        self._live.pop(delivery.request.run_id or "", None)

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        """Refuse new offers, withdraw the queued ones, end consumers' waits, and
        answer clients still waiting for a run nobody will settle now."""
        self.is_open = False
        for delivery in list(self._queue):
            self.withdraw(delivery)
        for delivery in list(self._live.values()):
            delivery.end(DeliveryState.RELEASED)
        if self._arrived is not None:
            self._arrived.set()
