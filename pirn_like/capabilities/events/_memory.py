"""``InMemoryEventStore``: events in this process, for tests and demos."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from pirn_like.capabilities.events._engine import EPOCH, Clock, StoreEngine, Writer
from pirn_like.capabilities.events._models import Event

__all__ = ["InMemoryEventStore"]


class InMemoryEventStore(StoreEngine):
    """An ``EventStore`` in memory: gone when the process ends. ``name`` tells two
    apart in knots' config hashes; ``clock`` gives ``recorded_at`` (default: UTC now)."""

    def __init__(self, name: str = "default", *, clock: Clock | None = None) -> None:
        super().__init__(identity=f"memory://{name}", clock=clock)
        self._events: list[Event] = []
        self._by_entity: dict[tuple[str, str], list[Event]] = {}
        self._writing = anyio.Lock()

    async def _open(self) -> None:
        pass  # nothing to connect to

    async def _close(self) -> None:
        pass  # the events stay readable by nobody: the store refuses use after close

    async def _load(self, entity_type: str, entity_id: str) -> Sequence[Event]:
        return tuple(self._by_entity.get((entity_type, entity_id), ()))

    async def _write(self, entity_type: str, entity_id: str, writer: Writer) -> Event:
        async with self._writing:
            last = self._events[-1] if self._events else None
            history = self._by_entity.get((entity_type, entity_id), [])
            event = writer(
                history,
                last.seq if last else 0,
                last.recorded_at if last else EPOCH,
            )
            self._events.append(event)
            self._by_entity.setdefault((entity_type, entity_id), []).append(event)
            return event

    async def _since(
        self, after_seq: int, limit: int, types: Sequence[str] | None
    ) -> Sequence[Event]:
        # seq n is at index n - 1: start there rather than scanning from the first.
        picked = (e for e in self._events[after_seq:] if types is None or e.entity_type in types)
        return [e for _, e in zip(range(limit), picked, strict=False)]
