"""The bridge's seams: where events go (``BridgeSink``) and where it remembers how far
it got (``BridgeCursor``), and the message both sides agree on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from pirn_like.capabilities.events._models import Event

__all__ = ["BridgeCursor", "BridgeMessage", "BridgeSink", "idempotency_key"]


def idempotency_key(event: Event) -> str:
    """``Event.key`` (``<entity_type>/<entity_id>@<version>``): the same on every resend of
    one event, so a consumer drops what it has already seen."""
    return event.key


@dataclass(frozen=True, slots=True)
class BridgeMessage:
    """One event as sinks send it: its idempotency key and its JSON body."""

    event: Event
    key: str
    """The idempotency key (``idempotency_key(event)``)."""
    body: bytes
    """The event as JSON: every field of ``Event``, times in ISO 8601."""

    @classmethod
    def of(cls, event: Event) -> BridgeMessage:
        return cls(event=event, key=idempotency_key(event), body=event.model_dump_json().encode())


class BridgeSink(Protocol):
    """Where a bridge sends events.

    ``send`` returns only once the receiver has acknowledged every message of the
    batch (a broker's ``acks=all``, a stream's reply, a 2xx answer); otherwise it
    raises ``BridgeSinkError``, and the bridge's cursor stays where it was, so the
    batch is sent again on the next push. A batch may therefore arrive more than once
    (in part or whole): receivers drop repeats by ``BridgeMessage.key``. Messages are
    sent in the order given. ``identity`` describes the destination for lineage
    (no secrets). Opened with ``async with``; the bridge opens it on first use.
    """

    @property
    def identity(self) -> str: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
    async def send(self, messages: Sequence[BridgeMessage]) -> None: ...


class BridgeCursor(Protocol):
    """The durable position of each named bridge: the ``seq`` of the last event whose
    batch the sink acknowledged (0 before the first push).

    ``save`` never moves a cursor backwards (a smaller ``seq`` is ignored), so a slow,
    stale writer cannot make a bridge resend everything. ``identity`` describes where
    cursors live (URL redacted). Opened with ``async with``.
    """

    @property
    def identity(self) -> str: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
    async def load(self, name: str) -> int: ...
    async def save(self, name: str, seq: int) -> None: ...
