"""A Kafka consumer that commits, per partition, only the offsets whose messages are
settled: the contiguous prefix from the last commit, never past a message still in
flight. Shared by ``KafkaTrigger`` and ``KafkaStreamingSource``.

Imports aiokafka: load it only after ``require_aiokafka``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Self

import anyio
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from pirn_like._errors import ClosedResourceError
from pirn_like.backends._kafka import start_client

__all__ = ["PartitionOffsets", "SettlingConsumer"]

_log = logging.getLogger("pirn_like.triggers")

Record = ConsumerRecord[bytes, bytes]


class PartitionOffsets:
    """The messages of one partition handed out during one assignment, in offset order.

    ``position`` is the offset to commit: one past the last message of the settled
    prefix. A released message stays unsettled, so nothing past it is committed
    until the partition is assigned afresh (it is then delivered again).
    """

    __slots__ = ("_pending", "_settled", "assigned", "committed", "position", "tp")

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        self._pending: deque[int] = deque()
        self._settled: set[int] = set()
        self.position: int | None = None
        self.committed: int | None = None
        self.assigned = True

    def fetched(self, offset: int) -> None:
        """``offset`` was handed out; it holds back commits until settled."""
        self._pending.append(offset)

    def settle(self, offset: int) -> bool:
        """``offset`` is done with; True if that moved ``position`` on."""
        if offset not in self._pending or offset in self._settled:
            return False
        self._settled.add(offset)
        moved = False
        while self._pending and self._pending[0] in self._settled:
            done = self._pending.popleft()
            self._settled.discard(done)
            self.position = done + 1
            moved = True
        return moved

    @property
    def uncommitted(self) -> bool:
        """True when ``position`` is past the last committed offset."""
        return self.position is not None and self.position != self.committed


class SettlingConsumer:
    """An aiokafka consumer in a group, subscribed to one topic, with auto-commit off.

    ``fetch`` hands out one message at a time (the caller's pace is the backpressure);
    ``settle`` marks one done and commits its partition's settled prefix. When a
    rebalance revokes partitions, their settled prefix is committed first, and
    messages of theirs settled later commit nothing: the partition's new owner
    delivers them again.
    """

    def __init__(self, feature: str, topic: str, options: Mapping[str, Any]) -> None:
        self._feature = feature
        self._topic = topic
        self._options = dict(options)
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: dict[TopicPartition, PartitionOffsets] = {}
        self._commit_lock = anyio.Lock()

    async def __aenter__(self) -> Self:
        consumer = AIOKafkaConsumer(**self._options)
        consumer.subscribe([self._topic], listener=_Listener(self))
        await start_client(self._feature, consumer, self._options["bootstrap_servers"])
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._commit(list(self._partitions.values()), consumer)
            finally:
                await consumer.stop()

    async def fetch(self) -> tuple[Record, PartitionOffsets]:
        """The next message and its partition's offsets (which now hold it back)."""
        consumer = self._consumer
        if consumer is None:
            raise ClosedResourceError(f"{self._feature} is not open: use it in 'async with'")
        record: Record = await consumer.getone()
        tp = TopicPartition(record.topic, record.partition)
        partition = self._partitions.get(tp)
        if partition is None:
            partition = self._partitions[tp] = PartitionOffsets(tp)
        partition.fetched(record.offset)
        return record, partition

    async def settle(self, partition: PartitionOffsets, offset: int) -> None:
        """``offset`` is done with: commit its partition's settled prefix if it grew."""
        if partition.settle(offset) and partition.assigned and self._consumer is not None:
            await self._commit([partition], self._consumer)

    async def _commit(self, partitions: list[PartitionOffsets], consumer: AIOKafkaConsumer) -> None:
        async with self._commit_lock:
            # Read the positions under the lock: commits go out in order, never backwards.
            due = {p.tp: p for p in partitions if p.assigned and p.uncommitted}
            if not due:
                return
            offsets = {tp: p.position for tp, p in due.items()}
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                # At-least-once still holds: these messages will be delivered again.
                _log.warning("%s: committing offsets %s failed: %r", self._feature, offsets, exc)
                return
            for tp, part in due.items():
                part.committed = offsets[tp]

    async def _revoked(self, revoked: Iterable[TopicPartition]) -> None:
        consumer = self._consumer
        gone = [p for tp in revoked if (p := self._partitions.pop(tp, None)) is not None]
        if consumer is not None:
            await self._commit(gone, consumer)
        for part in gone:
            part.assigned = False

    def _assigned(self, assigned: Iterable[TopicPartition]) -> None:
        for tp in assigned:
            self._partitions[tp] = PartitionOffsets(tp)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: SettlingConsumer) -> None:
        self._owner = owner

    # aiokafka awaits a callback that returns a coroutine, and waits for it before
    # the group rebalances: the commit lands before another member takes over.
    async def on_partitions_revoked(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, revoked: Iterable[TopicPartition]
    ) -> None:
        await self._owner._revoked(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._owner._assigned(assigned)
