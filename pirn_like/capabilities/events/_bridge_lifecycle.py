"""``LazyResource``: opened on first use, once, even when tasks race to use it; closed
once; refusing use after close. The bridge and its cursor stores share it."""

from __future__ import annotations

import abc
from typing import Self

import anyio

from pirn_like._errors import ClosedResourceError

__all__ = ["LazyResource"]


class LazyResource(abc.ABC):
    """Subclasses write ``_connect`` (acquire) and ``_disconnect`` (release)."""

    def __init__(self) -> None:
        self._lifecycle = anyio.Lock()
        self._connected = False
        self._closed = False

    async def __aenter__(self) -> Self:
        await self._ready()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release what was acquired; using it afterwards raises ``ClosedResourceError``."""
        async with self._lifecycle:
            self._closed = True
            if self._connected:
                self._connected = False
                with anyio.CancelScope(shield=True):  # half-closed connections would leak
                    await self._disconnect()

    async def _ready(self) -> None:
        if self._connected:
            return
        async with self._lifecycle:
            if self._closed:
                raise ClosedResourceError(f"{self!r} is closed; build a new one")
            if not self._connected:
                await self._connect()
                self._connected = True

    @abc.abstractmethod
    async def _connect(self) -> None: ...

    @abc.abstractmethod
    async def _disconnect(self) -> None: ...
