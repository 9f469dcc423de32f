"""The bridge to a ValKey stream, cursors kept in ValKey, and a bridge killed mid-push
that, restarted, delivers every event at least once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _bridge_helpers import filled_store, kill_after_acks, run_to_end
from glide import GlideClient, GlideClientConfiguration, MaxId, MinId, NodeAddress

from pirn_like.capabilities.events import (
    Bridge,
    BridgeSinkError,
    EventKind,
    InMemoryEventStore,
    ValKeyBridgeCursor,
    ValKeySink,
    bridge_cursor_from_url,
)

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("valkey")]


@pytest.fixture
async def client(valkey_server: tuple[str, int]) -> AsyncIterator[GlideClient]:
    host, port = valkey_server
    glide = await GlideClient.create(GlideClientConfiguration([NodeAddress(host, port)]))
    yield glide
    await glide.close()


async def _entries(client: GlideClient, stream: str) -> list[dict[str, str]]:
    found = await client.xrange(stream, MinId(), MaxId())
    return [{k.decode(): v.decode() for k, v in fields} for fields in (found or {}).values()]


async def test_each_event_is_a_stream_entry_with_its_idempotency_key(
    valkey_url: str, valkey_key_prefix: str, client: GlideClient
) -> None:
    store = InMemoryEventStore()
    await store.append("order", "o1", EventKind.CREATED, {"total": 5}, expected_version=0)
    await store.append("order", "o1", EventKind.UPDATED, {"total": 7}, expected_version=1)
    await store.append("user", "u1", EventKind.CREATED, {}, expected_version=0)
    stream = f"{valkey_key_prefix}orders"
    cursor = ValKeyBridgeCursor(valkey_url, key=f"{valkey_key_prefix}cursors")
    sink = ValKeySink(valkey_url, stream=stream)
    async with Bridge(
        store, sink, name="orders", cursor=cursor, entity_types=["order"], batch_size=1
    ) as bridge:
        summary = await bridge.push()
        assert await bridge.position() == 2
    assert (summary.sent, summary.to_seq) == (2, 2)
    entries = await _entries(client, stream)
    assert [e["idempotency_key"] for e in entries] == ["order/o1@1", "order/o1@2"]
    assert [json.loads(e["event"])["payload"] for e in entries] == [{"total": 5}, {"total": 7}]
    assert entries[1] | {"event": ""} == {
        "idempotency_key": "order/o1@2",
        "entity_type": "order",
        "entity_id": "o1",
        "version": "2",
        "seq": "2",
        "event": "",
    }


async def test_valkey_cursor_only_moves_forward(valkey_url: str, valkey_key_prefix: str) -> None:
    async with ValKeyBridgeCursor(valkey_url, key=f"{valkey_key_prefix}c") as cursor:
        assert await cursor.load("a") == 0
        await cursor.save("a", 7)
        await cursor.save("a", 3)  # a stale writer
        await cursor.save("b", 1)
        assert (await cursor.load("a"), await cursor.load("b")) == (7, 1)
        assert "pirn_like:bridge_cursors" not in cursor.identity
    cursor = bridge_cursor_from_url(valkey_url.replace("valkey://", "valkey://:s3cret@"))
    assert "s3cret" not in cursor.identity


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # glide retries connecting for ~2 s
async def test_unreachable_valkey_is_a_sink_error_with_the_password_redacted() -> None:
    from _fixtures_valkey import free_port

    url = f"valkey://:pw@127.0.0.1:{free_port()}/0"
    async with InMemoryEventStore() as store:
        await store.append("order", "o1", EventKind.CREATED, {}, expected_version=0)
        bridge = Bridge(
            store, ValKeySink(url, stream="s", timeout=0.5), name="b", cursor="memory://"
        )
        with pytest.raises(BridgeSinkError, match="could not connect") as raised:
            await bridge.push()
        assert "pw" not in str(raised.value)
        await bridge.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_killed_mid_push_then_restarted_loses_nothing(
    valkey_url: str, valkey_key_prefix: str, client: GlideClient, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    keys = await filled_store(db, 15)
    stream = f"{valkey_key_prefix}stream"
    cursor_key = f"{valkey_key_prefix}cursors"
    cursor_url = valkey_url  # the child keeps its cursor in ValKey, next to the stream
    args = [str(db), "valkey", valkey_url, stream, cursor_url, "5"]

    acked = await kill_after_acks(args, acks=2)
    assert acked == [5, 10]
    # The child's cursor store is the default hash; read it there.
    async with ValKeyBridgeCursor(cursor_url) as cursor:
        assert await cursor.load("kill-test") == 5
    assert [e["idempotency_key"] for e in await _entries(client, stream)] == keys[:10]

    assert await run_to_end(args) == 15
    delivered = [e["idempotency_key"] for e in await _entries(client, stream)]
    assert set(delivered) == set(keys)
    assert sorted(k for k, n in Counter(delivered).items() if n > 1) == sorted(keys[5:10])
    async with ValKeyBridgeCursor(cursor_url, key=cursor_key) as other:
        assert await other.load("kill-test") == 0  # another hash, another cursor
