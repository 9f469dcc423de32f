"""``StreamingSourceTrigger``: any ``StreamSource`` as a ``Trigger`` for ``run_forever``."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Self

import anyio

from pirn_like.core._records import RunOutcome, RunRequest
from pirn_like.protocols import StreamItem, StreamSource

__all__ = ["SettleHook", "StreamingSourceTrigger"]

SettleHook = Callable[[RunOutcome], Awaitable[None] | None]


class StreamingSourceTrigger:
    """Serves a streaming source's items as deliveries: one run per item.

    Each item runs the tapestry with ``{source.parameter_name: item.value}`` and
    records ``{"kind": source.kind, "source": ..., "position": item.position}`` as the
    run's trigger. Settling a delivery (its run is recorded) acknowledges the item;
    releasing it (shutdown) does not, so a source that can deliver it again will.

    ``ordered=True`` settles items in source order even when their runs end out of
    order: each settle waits for the previous item's, and once an item is released
    (or its acknowledgement fails) no later item is acknowledged, since that would
    move the source past it. ``ordered=False`` acknowledges each item as its run
    ends. ``on_settle`` sees each outcome just before its item is acknowledged (in
    source order when ordered); when it raises, the item is not acknowledged.

    A source may say more about itself with two optional attributes: ``origin`` (a
    path, a topic: recorded as the trigger's ``source``; the source's kind otherwise)
    and ``redelivers`` (True when it may deliver an item again after a restart, like a
    Kafka consumer group). Items of a source that redelivers get a run id derived from
    the source's kind, origin and the item's position, so ``run_forever`` settles a
    redelivered item whose run is already recorded without running it again.
    """

    def __init__(
        self,
        source: StreamSource,
        *,
        ordered: bool = True,
        on_settle: SettleHook | None = None,
    ) -> None:
        self._source = source
        self._ordered = ordered
        self._on_settle = on_settle

    @property
    def kind(self) -> str:
        """The source's kind (``iterable``, ``file_tail``, ``kafka``, ...)."""
        return self._source.kind

    @property
    def source(self) -> StreamSource:
        """The wrapped source."""
        return self._source

    async def __aenter__(self) -> Self:
        await self._source.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._source.__aexit__(*exc_info)

    async def deliveries(self) -> AsyncIterator[_ItemDelivery]:
        """One delivery per item, in source order."""
        source = self._source
        origin = getattr(source, "origin", None)
        origin = origin if isinstance(origin, str) else source.kind
        derive_ids = getattr(source, "redelivers", False) is True
        previous = _Turn(done=True)  # the first item's predecessor
        items = source.items()
        try:
            async for item in items:
                position = item.position
                request = RunRequest(
                    parameters={source.parameter_name: item.value},
                    run_id=_run_id(source.kind, origin, position) if derive_ids else None,
                    trigger={"kind": source.kind, "source": origin, "position": position},
                )
                turn = _Turn()
                yield _ItemDelivery(
                    request,
                    item,
                    self._on_settle,
                    after=previous if self._ordered else None,
                    turn=turn,
                )
                previous = turn
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()


def _run_id(kind: str, origin: str, position: str) -> str:
    digest = hashlib.sha256(f"{kind}\0{origin}\0{position}".encode()).hexdigest()
    return f"{kind}-{digest[:32]}"


class _Turn:
    """Whether an item has been settled or released, and whether it was acknowledged."""

    __slots__ = ("acked", "ended")

    def __init__(self, *, done: bool = False) -> None:
        self.ended = anyio.Event()
        self.acked = done
        if done:
            self.ended.set()


class _ItemDelivery:
    __slots__ = ("_after", "_item", "_on_settle", "_request", "_turn")

    def __init__(
        self,
        request: RunRequest,
        item: StreamItem,
        on_settle: SettleHook | None,
        *,
        after: _Turn | None,
        turn: _Turn,
    ) -> None:
        self._request = request
        self._item = item
        self._on_settle = on_settle
        self._after = after
        self._turn = turn

    @property
    def request(self) -> RunRequest:
        return self._request

    async def settle(self, outcome: RunOutcome) -> None:
        try:
            may_ack = await self._wait_turn()
            if self._on_settle is not None:
                returned = self._on_settle(outcome)
                if inspect.isawaitable(returned):
                    await returned
            if may_ack:
                await self._item.ack()
                self._turn.acked = True
        finally:
            self._turn.ended.set()

    async def release(self) -> None:
        try:
            await self._wait_turn()
        finally:
            self._turn.ended.set()

    async def _wait_turn(self) -> bool:
        """Wait for the previous item (when ordered); True if this one may be acked."""
        after = self._after
        if after is None:
            return True
        await after.ended.wait()
        self._after = None  # let the chain of earlier items be collected
        return after.acked
