"""``IterableSource``: the items of a list, a generator or an async iterable, in order."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Self

__all__ = ["IterableSource", "PlainItem"]


@dataclass(frozen=True, slots=True)
class PlainItem:
    """A stream item with nothing to acknowledge: its source keeps no position."""

    value: object
    position: str

    async def ack(self) -> None:
        """Nothing to do: the source will not deliver this item again anyway."""


class IterableSource:
    """A ``StreamSource`` over an iterable or async iterable; each element is an item.

    ``IterableSource([1, 2, 3], parameter_name="x")`` runs the pipeline with ``x=1``,
    then ``x=2``, then ``x=3`` (under ``run_stream``), and the stream ends when the
    iterable does. Positions are the elements' indexes. An iterable cannot deliver an
    element again, so its runs get fresh run ids: feeding the same list twice runs it
    twice. A plain iterator runs in the event loop: one that blocks (reads a socket,
    sleeps) belongs in an async generator.
    """

    kind = "iterable"
    redelivers = False

    def __init__(self, iterable: Iterable[object] | AsyncIterable[object], parameter_name: str):
        if not isinstance(iterable, Iterable | AsyncIterable):
            raise TypeError(
                f"IterableSource needs an iterable or async iterable, got {type(iterable).__name__}"
            )
        if not parameter_name:
            raise ValueError("IterableSource needs the parameter_name its items are passed as")
        self._iterable = iterable
        self._parameter_name = parameter_name

    @property
    def parameter_name(self) -> str:
        """The tapestry parameter each item is passed as."""
        return self._parameter_name

    @property
    def origin(self) -> str:
        """What the items come from, as recorded in each run's trigger."""
        return type(self._iterable).__name__

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def items(self) -> AsyncIterator[PlainItem]:
        """Each element in turn, as an item at its index."""
        if isinstance(self._iterable, AsyncIterable):
            index = 0
            async for value in self._iterable:
                yield PlainItem(value, str(index))
                index += 1
        else:
            for index, value in enumerate(self._iterable):
                yield PlainItem(value, str(index))
