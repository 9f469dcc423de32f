"""Values kept in memory by content hash."""

from __future__ import annotations

from typing import Self

from pirn_like._ids import ContentHash

__all__ = ["InMemoryDataStore"]


class InMemoryDataStore:
    """A DataStore in a dict. Values are kept as the objects themselves (not copies)."""

    def __init__(self) -> None:
        self._values: dict[ContentHash, object] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def put(self, content_hash: ContentHash, value: object) -> None:
        self._values[content_hash] = value

    async def get(self, content_hash: ContentHash) -> object:
        try:
            return self._values[content_hash]
        except KeyError:
            raise KeyError(f"no value with hash {content_hash!r} is kept (scrubbed?)") from None

    async def contains(self, content_hash: ContentHash) -> bool:
        return content_hash in self._values

    async def delete(self, content_hash: ContentHash) -> bool:
        if content_hash not in self._values:
            return False
        del self._values[content_hash]
        return True
