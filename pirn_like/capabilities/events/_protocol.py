"""The ``EventStore`` protocol: what the knots and the bridge need from a store."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol, Self

from pirn_like.capabilities.events._models import Event, EventKind, JsonObject

__all__ = ["EventStore"]


class EventStore(Protocol):
    """An append-only, bi-temporal store of entity events.

    **Writes.** ``append`` adds one event at the entity's next version, atomically:
    with ``expected_version`` set, it raises ``VersionConflictError`` (naming the
    expected and actual versions) unless the entity is at exactly that version, also
    under concurrent writers in other processes. Nothing stored is ever changed or
    deleted; ``recorded_at`` and ``seq`` are assigned by the store, in commit order.

    **Reads.** The state of an entity *as of valid time V, as known at transaction
    time T* is found among the events recorded at or before T: leave out every event
    replaced by a ``CORRECTED`` one among them, keep those with ``valid_from <= V``,
    and take the latest by ``(valid_from, version)``. If that is a ``DELETED`` event,
    or there is none, the entity does not exist then (``None``).

    - ``current``: V = now, T = everything recorded.
    - ``as_of_valid``: V given; T = ``recorded_at`` or everything recorded.
    - ``as_of_transaction``: T given; V = ``valid_time`` or T ("what would
      ``current`` have said at T?").
    - ``history``: every event of the entity, by version (the audit trail).
    - ``events_since``: events of every entity with ``seq > after_seq``, by ``seq``;
      an event committed later never has a lower ``seq`` (the bridge's cursor).

    Constructing a store does no I/O; the first call opens it. ``async with store:``
    or ``await store.aclose()`` closes it. ``identity`` names where events go
    (redacted URL and table), for knots' config hashes.
    """

    @property
    def identity(self) -> str: ...

    async def append(
        self,
        entity_type: str,
        entity_id: str,
        kind: EventKind,
        payload: JsonObject,
        *,
        expected_version: int | None,
        valid_from: datetime | None = None,
        actor: str = "",
        corrects: int | None = None,
    ) -> Event:
        """Append one event; ``valid_from`` defaults to the corrected event's for
        ``CORRECTED`` and to ``recorded_at`` otherwise. ``InvalidEventError`` if the
        event cannot follow the entity's history."""
        ...

    async def current(self, entity_type: str, entity_id: str) -> Event | None: ...
    async def as_of_valid(
        self,
        entity_type: str,
        entity_id: str,
        valid_time: datetime,
        *,
        recorded_at: datetime | None = None,
    ) -> Event | None: ...
    async def as_of_transaction(
        self,
        entity_type: str,
        entity_id: str,
        recorded_at: datetime,
        *,
        valid_time: datetime | None = None,
    ) -> Event | None: ...
    async def history(self, entity_type: str, entity_id: str) -> list[Event]: ...
    async def events_since(
        self, after_seq: int, *, limit: int, entity_types: Collection[str] | None = None
    ) -> list[Event]: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
