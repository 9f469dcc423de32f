"""Knot definitions kept in memory."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pirn_like._errors import WiringError
from pirn_like._ids import KnotId
from pirn_like.core._knot import Knot

__all__ = ["InMemoryStore", "KnotRegistry", "should_register"]


def should_register(knot: Knot, existing: Knot | None, *, replaceable: bool = False) -> bool:
    """Whether a store registers ``knot``, given ``existing``, the knot it holds under the
    same id (if any): not if that is ``knot`` itself; ``WiringError`` if it is another
    knot, unless ``replaceable``."""
    if existing is knot:
        return False
    if existing is not None and not replaceable:
        raise WiringError(
            f"duplicate knot id {knot.id!r}: {existing!r} is already registered; "
            "give each knot a unique KnotConfig(id=...)"
        )
    return True


class KnotRegistry:
    """What every TapestryStore keeps in memory: knots by id, a version that changes
    with them, and listeners told of each knot taken in."""

    def __init__(self) -> None:
        self._knots: dict[KnotId, Knot] = {}
        self._listeners: list[Callable[[Knot], None]] = []
        self._version = 0

    @property
    def version(self) -> int:
        """Changes whenever a knot is taken in."""
        return self._version

    def get(self, knot_id: str) -> Knot | None:
        return self._knots.get(KnotId(knot_id))

    def knots(self) -> Mapping[KnotId, Knot]:
        return dict(self._knots)

    def subscribe(self, listener: Callable[[Knot], None]) -> Callable[[], None]:
        """Call ``listener`` with each knot taken in from now on; returns a function
        that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _register(self, knot: Knot) -> None:
        self._knots[knot.id] = knot
        self._version += 1
        for listener in tuple(self._listeners):
            listener(knot)


class InMemoryStore(KnotRegistry):
    """The default TapestryStore: a dict of knots, with synchronous change listeners."""

    def add(self, knot: Knot) -> None:
        if should_register(knot, self._knots.get(knot.id)):
            self._register(knot)
