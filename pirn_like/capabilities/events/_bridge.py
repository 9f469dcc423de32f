"""``Bridge``: events from a store, since a durable cursor, to a sink; at least once."""

from __future__ import annotations

import re
from collections.abc import Collection
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio

from pirn_like.capabilities.events._bridge_cursor import bridge_cursor_from_url
from pirn_like.capabilities.events._bridge_filters import (
    Condition,
    EventPredicate,
    predicate_identity,
)
from pirn_like.capabilities.events._bridge_lifecycle import LazyResource
from pirn_like.capabilities.events._bridge_models import PushSummary
from pirn_like.capabilities.events._bridge_protocol import BridgeCursor, BridgeMessage, BridgeSink
from pirn_like.core._hashing import content_hash

if TYPE_CHECKING:
    from pirn_like.capabilities.events._models import Event
    from pirn_like.capabilities.events._protocol import EventStore

__all__ = ["Bridge"]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,199}\Z")


class Bridge(LazyResource):
    """Pushes a store's events to a sink, remembering in ``cursor`` how far it got.

    ``push()`` reads the events after the cursor (``batch_size`` at a time, only of
    ``entity_types`` if given), sends those passing ``where`` (a ``Condition`` such as
    ``Field("status") == "open"``, or a function of the event), and moves the cursor
    past each batch only once the sink acknowledged it. A crash between the
    acknowledgement and the cursor write resends that one batch on the next push: at
    least once, with each message's idempotency key (``<entity_type>/<entity_id>@<version>``)
    letting consumers drop repeats. Events that ``where`` rejects are passed over for
    good (the cursor moves past them).

    ``cursor`` is a ``BridgeCursor`` or a URL (``sqlite:///events.db`` — the store's own
    file is a good home —, ``postgresql://...``, ``valkey://...``); ``name`` keys the
    position in it, so run one process per name (a second one would send everything
    twice, still at least once). The bridge opens its sink and cursor on first use and
    closes them in ``aclose()`` (or ``async with``); the store stays the caller's.
    """

    def __init__(
        self,
        store: EventStore,
        sink: BridgeSink,
        *,
        name: str,
        cursor: BridgeCursor | str,
        entity_types: Collection[str] | None = None,
        where: EventPredicate | None = None,
        batch_size: int = 100,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"bridge name {name!r}: use 1-200 letters, digits, '_', '.', ':' or '-'"
            )
        if isinstance(entity_types, str):
            raise TypeError(
                f"entity_types is a collection of names, e.g. [{entity_types!r}], "
                f"not the string {entity_types!r}"
            )
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self._where_identity = predicate_identity(where)  # also checks what `where` is
        self.name = name
        self.store = store
        self.sink = sink
        self.cursor = bridge_cursor_from_url(cursor) if isinstance(cursor, str) else cursor
        self.entity_types = None if entity_types is None else tuple(sorted(set(entity_types)))
        self.where = where
        self.batch_size = batch_size
        super().__init__()
        self._stack: AsyncExitStack | None = None
        self._pushing = anyio.Lock()
        self._notified = False
        self._wakeup: anyio.Event | None = None

    @property
    def identity(self) -> dict[str, object]:
        """What decides where a push's effect goes, for ``BridgePush``'s config hash:
        name, store, sink, cursor store, entity types and predicate (no secrets)."""
        return {
            "name": self.name,
            "store": self.store.identity,
            "sink": self.sink.identity,
            "cursor": self.cursor.identity,
            "entity_types": None if self.entity_types is None else list(self.entity_types),
            "where": self._where_identity,
        }

    def __repr__(self) -> str:
        return f"Bridge({self.name!r}, {self.store.identity!r} -> {self.sink.identity!r})"

    async def position(self) -> int:
        """The cursor: ``seq`` of the last event the sink acknowledged (0: none yet)."""
        await self._ready()
        return await self.cursor.load(self.name)

    async def push(self, *, max_events: int | None = None) -> PushSummary:
        """Send everything after the cursor (at most ``max_events`` events read); see
        the class docs. Raises ``BridgeSinkError`` (or the cursor's ``BackendError``)
        with the cursor left after the last acknowledged batch."""
        if max_events is not None and (not isinstance(max_events, int) or max_events < 1):
            raise ValueError(f"max_events must be a positive int or None, got {max_events!r}")
        await self._ready()
        async with self._pushing:
            self._notified = False  # what was appended before this point is read below
            start = position = await self.cursor.load(self.name)
            keys: list[str] = []
            read = 0
            while True:
                limit = (
                    self.batch_size
                    if max_events is None
                    else min(self.batch_size, max_events - read)
                )
                if limit < 1:
                    break
                events = await self.store.events_since(
                    position, limit=limit, entity_types=self.entity_types
                )
                if not events:
                    break
                messages = [BridgeMessage.of(e) for e in events if self._wanted(e)]
                if messages:
                    await self.sink.send(messages)
                # Only now, the sink having acknowledged the batch, may the cursor move.
                position = events[-1].seq
                await self.cursor.save(self.name, position)
                keys += (m.key for m in messages)
                read += len(events)
                if len(events) < limit:
                    break
        return PushSummary(
            bridge=self.name,
            sink=self.sink.identity,
            from_seq=start,
            to_seq=position,
            sent=len(keys),
            skipped=read - len(keys),
            keys_hash=content_hash(keys),
        )

    def notify(self) -> None:
        """Say that events were appended: a waiting ``bridge_forever`` pushes now
        rather than at its next poll. Call it from the task that appended."""
        self._notified = True
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    async def wait_notified(self) -> None:
        """Return once ``notify`` was called since the last push began (or since the
        last return from here: each notification wakes one wait)."""
        if not self._notified:
            if self._wakeup is None:
                self._wakeup = anyio.Event()
            await self._wakeup.wait()
        self._notified = False

    def _wanted(self, event: Event) -> bool:
        where = self.where
        if where is None:
            return True
        if isinstance(where, Condition):
            return where.matches(event)
        return bool(where(event))

    async def _connect(self) -> None:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.cursor)
            await stack.enter_async_context(self.sink)
            self._stack = stack.pop_all()

    async def _disconnect(self) -> None:
        """Close the sink and the cursor (not the store)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
