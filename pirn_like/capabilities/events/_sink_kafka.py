"""``KafkaSink``: events to a Kafka topic, keyed by entity id, acknowledged by all replicas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

from pirn_like._errors import BackendError, ClosedResourceError
from pirn_like.backends._kafka import (
    BootstrapServers,
    kafka_client_options,
    require_aiokafka,
    start_client,
)
from pirn_like.capabilities.events._bridge_errors import BridgeSinkError
from pirn_like.capabilities.events._bridge_protocol import BridgeMessage

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

__all__ = ["KafkaSink"]

IDEMPOTENCY_HEADER = "idempotency-key"


class KafkaSink:
    """Sends each event to ``topic`` as JSON (``pip install 'pirn-like[kafka]'``).

    The message key is the entity id, so one entity's events keep their order on one
    partition. Headers: ``idempotency-key`` (``<entity_type>/<entity_id>@<version>``),
    ``entity-type`` and ``seq``. The producer uses ``acks="all"``, and ``send`` waits
    for the broker to acknowledge every message of the batch. ``client_options`` go to
    aiokafka's producer (``acks`` cannot be changed). asyncio only.
    """

    def __init__(
        self,
        topic: str,
        *,
        bootstrap_servers: BootstrapServers,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"KafkaSink needs a topic name, got {topic!r}")
        self.topic = topic
        self._servers = bootstrap_servers
        self._options = kafka_client_options(
            "KafkaSink", bootstrap_servers, client_options or {}, {"acks": "all"}
        )
        self._producer: AIOKafkaProducer | None = None

    @property
    def identity(self) -> str:
        """``kafka:<topic>`` (brokers are left out: the same topic on a moved cluster is
        the same destination)."""
        return f"kafka:{self.topic}"

    def __repr__(self) -> str:
        return f"KafkaSink({self.topic!r})"

    async def __aenter__(self) -> Self:
        if self._producer is not None:
            raise RuntimeError(f"{self!r} is already open")
        require_aiokafka("KafkaSink")
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**self._options)
        try:
            self._producer = await start_client("KafkaSink", producer, self._servers)
        except BackendError as exc:
            raise BridgeSinkError(str(exc)) from exc
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, messages: Sequence[BridgeMessage]) -> None:
        """Queue the batch, then wait until the broker has acknowledged all of it."""
        producer = self._producer
        if producer is None:
            raise ClosedResourceError(f"{self!r} is not open: use it in a Bridge")
        from aiokafka.errors import KafkaError

        try:
            # Queue everything first (aiokafka batches per partition), then wait for each
            # acknowledgement: the batch is done only when every message is.
            deliveries = [
                await producer.send(
                    self.topic,
                    m.body,
                    key=m.event.entity_id.encode(),
                    headers=[
                        (IDEMPOTENCY_HEADER, m.key.encode()),
                        ("entity-type", m.event.entity_type.encode()),
                        ("seq", str(m.event.seq).encode()),
                    ],
                )
                for m in messages
            ]
            for delivery in deliveries:
                await delivery
        except KafkaError as exc:
            raise BridgeSinkError(
                f"{self!r}: the broker did not acknowledge the batch: {exc!r}"
            ) from exc
