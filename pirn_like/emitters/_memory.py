"""An emitter that keeps every event in a list: for tests and notebooks."""

from __future__ import annotations

from typing import Self

from pirn_like.core._events import RunEvent

__all__ = ["MemoryEmitter"]


class MemoryEmitter:
    """Collects events in ``events``, in the order they were emitted."""

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: RunEvent) -> None:
        self.events.append(event)
