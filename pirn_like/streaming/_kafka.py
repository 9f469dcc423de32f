"""``KafkaStreamingSource``: the messages of a Kafka topic as stream items."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

from pirn_like._errors import ClosedResourceError
from pirn_like.backends._kafka import BootstrapServers, consumer_client_options, require_aiokafka

if TYPE_CHECKING:
    from pirn_like.triggers._kafka_offsets import PartitionOffsets, SettlingConsumer

__all__ = ["KafkaStreamingSource"]

_log = logging.getLogger("pirn_like.streaming")

Decode = Callable[[bytes], object]


class KafkaStreamingSource:
    """A ``StreamSource`` of the messages of ``topic``, consumed in the group ``group_id``.

    Each message's value, decoded by ``decode`` (JSON by default), is one item; its
    position is ``topic/partition/offset``. Acknowledging an item commits offsets,
    per partition only up to the first item not yet acknowledged, so items
    acknowledged out of order never move the group past one still in flight; items
    not acknowledged (a crash, a shutdown) are delivered again, and ``run_stream``
    recognises their runs by run ids derived from the group, topic and position. A
    message ``decode`` rejects is logged and skipped (its offset is committed).

    ``client_options`` go to the aiokafka consumer with ``consumer_options``
    (security settings, ``session_timeout_ms``, ``auto_offset_reset``: default
    ``earliest``). asyncio only.
    """

    kind = "kafka"
    redelivers = True

    def __init__(
        self,
        topic: str,
        *,
        bootstrap_servers: BootstrapServers,
        parameter_name: str,
        group_id: str = "pirn-like",
        decode: Decode = json.loads,
        client_options: Mapping[str, Any] | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"KafkaStreamingSource needs a topic name, got {topic!r}")
        if not parameter_name:
            raise ValueError(
                "KafkaStreamingSource needs the parameter_name its items are passed as"
            )
        if not callable(decode):
            raise TypeError(f"decode must be a function of the message bytes, got {decode!r}")
        self.topic = topic
        self.group_id = group_id
        self._parameter_name = parameter_name
        self._decode = decode
        self._options = consumer_client_options(
            "KafkaStreamingSource",
            bootstrap_servers,
            client_options or {},
            consumer_options or {},
            group_id,
        )
        self._consumer: SettlingConsumer | None = None

    def __repr__(self) -> str:
        return f"KafkaStreamingSource(topic={self.topic!r}, group_id={self.group_id!r})"

    @property
    def parameter_name(self) -> str:
        """The tapestry parameter each item is passed as."""
        return self._parameter_name

    @property
    def origin(self) -> str:
        """``<group_id>/<topic>``: the group is part of it, so two groups reading one
        topic into one history get different run ids."""
        return f"{self.group_id}/{self.topic}"

    async def __aenter__(self) -> Self:
        if self._consumer is not None:
            raise RuntimeError(f"{self!r} is already open")
        require_aiokafka("KafkaStreamingSource")
        from pirn_like.triggers._kafka_offsets import SettlingConsumer

        consumer = SettlingConsumer("KafkaStreamingSource", self.topic, self._options)
        self._consumer = await consumer.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.__aexit__(*exc_info)

    async def items(self) -> AsyncIterator[KafkaItem]:
        """One item per message, fetched when asked for; never ends on its own."""
        consumer = self._consumer
        if consumer is None:
            raise ClosedResourceError(f"{self!r} is not open: use it in 'async with'")
        while True:
            record, partition = await consumer.fetch()
            position = f"{record.topic}/{record.partition}/{record.offset}"
            try:
                if record.value is None:
                    raise ValueError("the message has no value")
                value = self._decode(record.value)
            except Exception as exc:  # an undecodable message is skipped, not fatal
                _log.error("%r: skipping %s, which decode rejected: %r", self, position, exc)
                await consumer.settle(partition, record.offset)
                continue
            yield KafkaItem(value, position, consumer, partition, record.offset)


class KafkaItem:
    """One decoded message; ``ack`` commits it once every earlier one is acknowledged."""

    __slots__ = ("_consumer", "_offset", "_partition", "position", "value")

    def __init__(
        self,
        value: object,
        position: str,
        consumer: SettlingConsumer,
        partition: PartitionOffsets,
        offset: int,
    ) -> None:
        self.value = value
        self.position = position
        self._consumer = consumer
        self._partition = partition
        self._offset = offset

    def __repr__(self) -> str:
        return f"KafkaItem(position={self.position!r})"

    async def ack(self) -> None:
        """The item's run is recorded: its offset may be committed."""
        await self._consumer.settle(self._partition, self._offset)
