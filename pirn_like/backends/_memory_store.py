"""Knot definitions kept in memory."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pirn_like._errors import WiringError
from pirn_like._ids import KnotId
from pirn_like.core._knot import Knot

__all__ = ["InMemoryStore"]


class InMemoryStore:
    """The default TapestryStore: a dict of knots, with synchronous change listeners."""

    def __init__(self) -> None:
        self._knots: dict[KnotId, Knot] = {}
        self._listeners: list[Callable[[Knot], None]] = []
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def add(self, knot: Knot) -> None:
        existing = self._knots.get(knot.id)
        if existing is knot:
            return
        if existing is not None:
            raise WiringError(
                f"duplicate knot id {knot.id!r}: {existing!r} is already registered; "
                "give each knot a unique KnotConfig(id=...)"
            )
        self._knots[knot.id] = knot
        self._version += 1
        for listener in tuple(self._listeners):
            listener(knot)

    def get(self, knot_id: str) -> Knot | None:
        return self._knots.get(KnotId(knot_id))

    def knots(self) -> Mapping[KnotId, Knot]:
        return dict(self._knots)

    def subscribe(self, listener: Callable[[Knot], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
