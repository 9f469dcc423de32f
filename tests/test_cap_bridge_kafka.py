"""The bridge to Kafka (tansu): headers and keys, acknowledgement, and a bridge killed
mid-push that, restarted, delivers every event at least once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from _bridge_helpers import filled_store, kill_after_acks, run_to_end
from _fixtures_kafka import KafkaBroker

from pirn_like.capabilities.events import (
    Bridge,
    BridgeSinkError,
    Field,
    KafkaSink,
    SQLBridgeCursor,
    SQLiteEventStore,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.xdist_group("kafka"),
    pytest.mark.parametrize("anyio_backend", ["asyncio"]),  # aiokafka is asyncio-only
]


async def test_events_arrive_keyed_by_entity_with_idempotency_headers(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    topic = await kafka.topic(partitions=2, dlq=False)
    keys = await filled_store(tmp_path / "events.db", 6)
    store = SQLiteEventStore(tmp_path / "events.db")
    sink = KafkaSink(topic, bootstrap_servers=kafka.bootstrap)
    async with store, Bridge(store, sink, name="orders", cursor="memory://") as bridge:
        summary = await bridge.push()
    assert (summary.from_seq, summary.to_seq, summary.sent) == (0, 6, 6)
    records = await kafka.read(topic, 6)
    got = {dict(r.headers)["idempotency-key"].decode(): r for r in records}
    assert sorted(got) == sorted(keys)
    for key, record in got.items():
        body = json.loads(record.value or b"")
        assert key == f"{body['entity_type']}/{body['entity_id']}@{body['version']}"
        assert record.key == body["entity_id"].encode()
    # One entity, one partition: its versions arrive in order.
    by_entity: dict[bytes, list[int]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_entity.setdefault(record.key or b"", []).append(
            json.loads(record.value or b"")["version"]
        )
    assert all(versions == sorted(versions) for versions in by_entity.values())


async def test_filtered_push_moves_the_cursor_past_rejected_events(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    topic = await kafka.topic(dlq=False)
    await filled_store(tmp_path / "events.db", 6)
    cursor = f"sqlite:///{tmp_path / 'events.db'}"
    store = SQLiteEventStore(tmp_path / "events.db")
    sink = KafkaSink(topic, bootstrap_servers=kafka.bootstrap)
    async with (
        store,
        Bridge(store, sink, name="even", cursor=cursor, where=Field("n") <= 1) as bridge,
    ):
        summary = await bridge.push()
        assert await bridge.position() == 6
    assert (summary.sent, summary.skipped) == (2, 4)
    assert [json.loads(r.value or b"")["payload"]["n"] for r in await kafka.read(topic)] == [0, 1]


async def test_unreachable_broker_is_a_sink_error_and_the_cursor_stays(tmp_path: Path) -> None:
    from _fixtures_valkey import free_port

    await filled_store(tmp_path / "events.db", 2)
    store = SQLiteEventStore(tmp_path / "events.db")
    sink = KafkaSink("nowhere", bootstrap_servers=f"127.0.0.1:{free_port()}")
    cursor = SQLBridgeCursor(f"sqlite:///{tmp_path / 'events.db'}")
    async with store:
        bridge = Bridge(store, sink, name="down", cursor=cursor)
        with pytest.raises(BridgeSinkError, match="could not connect to Kafka"):
            await bridge.push()
        await bridge.aclose()
    async with SQLBridgeCursor(f"sqlite:///{tmp_path / 'events.db'}") as again:
        assert await again.load("down") == 0


async def test_killed_mid_push_then_restarted_loses_nothing(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    topic = await kafka.topic(dlq=False)
    db = tmp_path / "events.db"
    keys = await filled_store(db, 20)
    cursor_url = f"sqlite:///{db}"
    args = [str(db), "kafka", kafka.bootstrap, topic, cursor_url, "4"]

    acked = await kill_after_acks(args, acks=3)  # killed after batch 3's ack, before its cursor
    assert acked == [4, 8, 12]
    async with SQLBridgeCursor(cursor_url) as cursor:
        position = await cursor.load("kill-test")
    assert position == 8  # never ahead of what the broker acknowledged
    assert await _delivered(kafka, topic) == keys[:12]

    assert await run_to_end(args) == 20
    delivered = await _delivered(kafka, topic)
    assert set(delivered) == set(keys)  # nothing lost
    resent = sorted(k for k, n in Counter(delivered).items() if n > 1)
    assert resent == sorted(keys[8:12])  # only the batch acknowledged but not yet recorded


async def _delivered(kafka: KafkaBroker, topic: str) -> list[str]:
    """The idempotency keys on ``topic``, in order (``read`` leaves end markers, which
    carry no headers)."""
    records = await kafka.read(topic)
    return [dict(r.headers)["idempotency-key"].decode() for r in records if r.headers]
