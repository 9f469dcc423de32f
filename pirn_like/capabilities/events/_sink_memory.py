"""``MemorySink``: events kept in a list, for tests and demos."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from pirn_like.capabilities.events._bridge_protocol import BridgeMessage

__all__ = ["MemorySink"]


class MemorySink:
    """Keeps every message it is sent in ``messages`` (repeats included, as a real
    receiver would see them); ``keys`` lists their idempotency keys in order."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.messages: list[BridgeMessage] = []

    @property
    def identity(self) -> str:
        return f"memory:{self.name}"

    @property
    def keys(self) -> list[str]:
        return [m.key for m in self.messages]

    def __repr__(self) -> str:
        return f"MemorySink({self.name!r}, {len(self.messages)} messages)"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def send(self, messages: Sequence[BridgeMessage]) -> None:
        self.messages.extend(messages)
