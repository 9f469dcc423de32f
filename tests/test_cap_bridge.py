"""The bridge on embedded parts: filters, batching, acknowledgement before the cursor
moves, cursors in SQLite and PostgreSQL, the webhook sink against a signed receiver,
``bridge_forever``, and the lineage of a ``BridgePush``."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import networkx as nx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pirn_like import KnotConfig, Parameter, RunRequest, Signature, SignatureError, Tapestry
from pirn_like.capabilities.events import (
    Bridge,
    BridgeFilterError,
    BridgeMessage,
    BridgePush,
    BridgeSinkError,
    BridgeTrigger,
    EventKind,
    Field,
    InMemoryEventStore,
    MemorySink,
    PostgresEventStore,
    PushSummary,
    SQLBridgeCursor,
    SQLiteEventStore,
    StoreWrite,
    WebhookSink,
    bridge_forever,
)
from pirn_like.core._hashing import content_hash
from pirn_like.triggers import ManualClock

pytestmark = pytest.mark.anyio


async def _store(*payloads: dict[str, Any], entity_type: str = "order") -> InMemoryEventStore:
    store = InMemoryEventStore()
    for i, payload in enumerate(payloads):
        await store.append(entity_type, f"o{i}", EventKind.CREATED, payload, expected_version=0)
    return store


class _FlakySink(MemorySink):
    """Refuses its next ``fail`` batches, then accepts; remembers each batch's size."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.fail = fail
        self.batches: list[int] = []

    async def send(self, messages: Sequence[BridgeMessage]) -> None:
        if self.fail:
            self.fail -= 1
            raise BridgeSinkError("the receiver is down")
        self.batches.append(len(messages))
        await super().send(messages)


# -- filters ---------------------------------------------------------------------------


async def test_conditions_select_events_by_payload() -> None:
    store = await _store(
        {"status": "open", "total": 5, "customer": {"country": "NL"}},
        {"status": "closed", "total": 50, "customer": {"country": "FR"}},
        {"status": "open", "total": 500},
        {"total": 7, "deleted_by": None},
    )
    events = await store.events_since(0, limit=10)

    def picked(condition: Any) -> list[str]:
        return [e.entity_id for e in events if condition.matches(e)]

    assert picked(Field("status") == "open") == ["o0", "o2"]
    assert picked(Field("status") != "open") == ["o1"]  # a missing field never matches
    assert picked((Field("total") >= 50) & (Field("status") == "open")) == ["o2"]
    assert picked((Field("total") < 6) | (Field("total") > 100)) == ["o0", "o2"]
    assert picked(~(Field("status") == "open")) == ["o1", "o3"]
    assert picked(Field("customer.country").isin(["NL", "BE"])) == ["o0"]
    assert picked(Field("deleted_by").exists()) == ["o3"]
    assert (
        str((Field("a") > 1) & ~Field("b").exists()) == "(Field('a') > 1 & ~(Field('b').exists()))"
    )


def test_bad_conditions_are_refused_when_written() -> None:
    with pytest.raises(ValueError, match="dotted path"):
        Field("a..b")
    with pytest.raises(TypeError, match=r"Field\('status'\) compares with str.*list"):
        _ = Field("status") == ["open"]
    with pytest.raises(TypeError, match="a list of values"):
        Field("status").isin("open")
    with pytest.raises(TypeError, match="combine with other conditions"):
        _ = (Field("a") == 1) & True  # type: ignore[operator]
    with pytest.raises(TypeError, match="where= takes a condition"):
        Bridge(InMemoryEventStore(), MemorySink(), name="b", cursor="memory://", where="x")  # type: ignore[arg-type]


async def test_a_condition_that_cannot_compare_stops_the_push_before_the_cursor_moves() -> None:
    store = await _store({"total": 1}, {"total": "lots"})
    sink = MemorySink()
    async with Bridge(
        store, sink, name="b", cursor="memory://", where=Field("total") > 0
    ) as bridge:
        with pytest.raises(BridgeFilterError, match=r"order/o1@1 \(seq 2\).*'lots', a str"):
            await bridge.push()
        assert await bridge.position() == 0
    assert sink.keys == []


async def test_entity_types_and_a_callable_predicate_filter_together() -> None:
    store = await _store({"n": 1}, {"n": 2}, {"n": 3})
    await store.append("user", "u1", EventKind.CREATED, {"n": 4}, expected_version=0)
    sink = MemorySink()
    bridge = Bridge(
        store,
        sink,
        name="odd-orders",
        cursor="memory://",
        entity_types=["order"],
        where=lambda e: e.payload["n"] % 2 == 1,
    )
    async with bridge:
        summary = await bridge.push()
    assert sink.keys == ["order/o0@1", "order/o2@1"]
    assert (summary.sent, summary.skipped, summary.to_seq) == (2, 1, 3)


# -- pushing -----------------------------------------------------------------------------


async def test_push_sends_in_batches_and_max_events_bounds_one_push() -> None:
    store = await _store(*({"i": i} for i in range(7)))
    sink = _FlakySink()
    async with Bridge(store, sink, name="b", cursor="memory://", batch_size=2) as bridge:
        first = await bridge.push(max_events=5)
        rest = await bridge.push()
        empty = await bridge.push()
    assert sink.batches == [2, 2, 1, 2]
    assert (first.from_seq, first.to_seq, first.sent) == (0, 5, 5)
    assert (rest.from_seq, rest.to_seq, rest.sent) == (5, 7, 2)
    assert (empty.from_seq, empty.to_seq, empty.sent) == (7, 7, 0)
    assert first.keys_hash == content_hash([f"order/o{i}@1" for i in range(5)])


async def test_an_unacknowledged_batch_is_resent_and_nothing_after_it_was_skipped() -> None:
    store = await _store(*({"i": i} for i in range(6)))
    sink = _FlakySink()
    async with Bridge(store, sink, name="b", cursor="memory://", batch_size=2) as bridge:
        await bridge.push(max_events=2)
        sink.fail = 1
        with pytest.raises(BridgeSinkError, match="down"):
            await bridge.push()
        assert await bridge.position() == 2
        summary = await bridge.push()
    assert (summary.from_seq, summary.to_seq, summary.sent) == (2, 6, 4)
    assert sink.keys == [f"order/o{i}@1" for i in range(6)]


async def test_sqlite_cursor_survives_reopening_and_never_moves_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with SQLBridgeCursor(url) as cursor:
        await cursor.save("a", 5)
        await cursor.save("a", 2)
        await cursor.save("b", 1)
    async with SQLBridgeCursor(url) as cursor:
        assert (await cursor.load("a"), await cursor.load("b"), await cursor.load("c")) == (5, 1, 0)
        with pytest.raises(ValueError, match="int >= 0"):
            await cursor.save("a", -1)
    with pytest.raises(ValueError, match="plain SQL identifier"):
        SQLBridgeCursor(url, table="x; DROP TABLE y")
    with pytest.raises(ValueError, match="no bridge cursor store for 'ftp://u:\\*\\*\\*@h/x'"):
        Bridge(InMemoryEventStore(), MemorySink(), name="b", cursor="ftp://u:pw@h/x")


async def test_the_cursor_can_live_in_the_event_stores_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    async with SQLiteEventStore(db) as store:
        await store.append("order", "o1", EventKind.CREATED, {}, expected_version=0)
        async with Bridge(store, MemorySink(), name="b", cursor=f"sqlite:///{db}") as bridge:
            await bridge.push()
        # Appending goes on while the cursor's connection has the file open too.
        await store.append("order", "o1", EventKind.UPDATED, {}, expected_version=1)
        sink = MemorySink()
        async with Bridge(store, sink, name="b", cursor=f"sqlite:///{db}") as bridge:
            await bridge.push()
    assert sink.keys == ["order/o1@2"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # asyncpg
async def test_postgres_store_and_cursor(postgres_db_url: str) -> None:
    store = PostgresEventStore(postgres_db_url)
    sink = MemorySink()
    async with store:
        await store.append("order", "o1", EventKind.CREATED, {"a": 1}, expected_version=0)
        async with Bridge(store, sink, name="pg", cursor=postgres_db_url) as bridge:
            await bridge.push()
        await store.append("order", "o2", EventKind.CREATED, {"a": 2}, expected_version=0)
        async with Bridge(store, sink, name="pg", cursor=postgres_db_url) as bridge:
            assert await bridge.position() == 1
            await bridge.push()
    assert sink.keys == ["order/o1@1", "order/o2@1"]


# -- webhook sink ------------------------------------------------------------------------


class _Receiver:
    """A Starlette app that checks each request's signature and keeps what it accepted;
    ``failures[key]`` answers that many 503s first, ``refuse`` answers 422 to a key."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.accepted: list[str] = []
        self.attempts: Counter[str] = Counter()
        self.failures: dict[str, int] = {}
        self.refuse: set[str] = set()
        self.app = Starlette(routes=[Route("/events", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            self.signature.verify(request.headers, body)
        except SignatureError:
            return Response(status_code=401)
        key = request.headers["Idempotency-Key"]
        self.attempts[key] += 1
        if self.failures.get(key):
            self.failures[key] -= 1
            return Response(status_code=503)
        if key in self.refuse:
            return Response(status_code=422)
        self.accepted.append(key)
        return Response(status_code=204)

    def sink(self, secret: str) -> WebhookSink:
        transport = httpx.ASGITransport(app=self.app)
        return WebhookSink("http://receiver/events", secret=secret, backoff=0, transport=transport)


async def test_webhook_sink_signs_retries_5xx_and_stops_at_a_refusal() -> None:
    store = await _store({"i": 0}, {"i": 1}, {"i": 2})
    receiver = _Receiver(Signature("s3cret"))
    receiver.failures["order/o0@1"] = 2
    receiver.refuse.add("order/o1@1")
    async with Bridge(store, receiver.sink("s3cret"), name="hook", cursor="memory://") as bridge:
        with pytest.raises(BridgeSinkError, match=r"order/o1@1 \(seq 2\).*422"):
            await bridge.push()
        assert receiver.accepted == ["order/o0@1"]
        assert receiver.attempts["order/o0@1"] == 3  # two 503s, then accepted
        assert await bridge.position() == 0  # the batch was not acknowledged as a whole
        receiver.refuse.clear()
        await bridge.push()
        assert await bridge.position() == 3
    assert receiver.accepted == ["order/o0@1", "order/o0@1", "order/o1@1", "order/o2@1"]


async def test_webhook_sink_with_the_wrong_secret_is_refused() -> None:
    store = await _store({"i": 0})
    receiver = _Receiver(Signature("s3cret"))
    async with Bridge(store, receiver.sink("guess"), name="hook", cursor="memory://") as bridge:
        with pytest.raises(BridgeSinkError, match="401"):
            await bridge.push()
    assert receiver.accepted == []
    with pytest.raises(TypeError, match="secret"):
        WebhookSink("http://receiver/events")  # type: ignore[call-arg]  # signing is not optional by omission


# -- bridge_forever ----------------------------------------------------------------------


async def test_bridge_forever_pushes_when_notified_on_its_interval_and_after_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryEventStore()
    sink = _FlakySink()
    clock = ManualClock()
    stop = anyio.Event()
    send, pushes = anyio.create_memory_object_stream[PushSummary](10)
    bridge = Bridge(store, sink, name="live", cursor="memory://")
    run = functools.partial(
        bridge_forever, bridge, interval=5, clock=clock, stop=stop, on_push=send.send
    )
    with anyio.fail_after(10), caplog.at_level(logging.WARNING):
        async with bridge, anyio.create_task_group() as tg:
            tg.start_soon(run)
            assert (await pushes.receive()).sent == 0  # at start: nothing yet

            await store.append("order", "o1", EventKind.CREATED, {}, expected_version=0)
            bridge.notify()  # without waiting for the interval
            assert (await pushes.receive()).sent == 1
            assert clock.now().isoformat() == "2025-01-01T00:00:00+00:00"

            await store.append("order", "o2", EventKind.CREATED, {}, expected_version=0)
            sink.fail = 1
            clock.advance_to(await clock.wait_for_sleeper())  # the interval: push fails
            clock.advance_to(await clock.wait_for_sleeper())  # the next: retried
            assert (await pushes.receive()).sent == 1
            stop.set()
    assert sink.keys == ["order/o1@1", "order/o2@1"]
    assert "push failed, retrying from the cursor: the receiver is down" in caplog.text


async def test_each_notification_wakes_one_wait() -> None:
    from anyio import wait_all_tasks_blocked

    bridge = Bridge(InMemoryEventStore(), MemorySink(), name="n", cursor="memory://")
    bridge.notify()
    await bridge.wait_notified()  # the notification came before the wait
    woken: list[int] = []

    async def waiter() -> None:
        await bridge.wait_notified()
        woken.append(1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        assert woken == []  # consumed above: this wait needs a new notification
        bridge.notify()
    assert woken == [1]


# -- the knot and its lineage ------------------------------------------------------------


def test_config_hash_names_the_bridge_its_sink_and_its_filter() -> None:
    store = InMemoryEventStore()

    def push(**options: Any) -> BridgePush:
        bridge = Bridge(store, options.pop("sink", MemorySink()), cursor="memory://", **options)
        return BridgePush(bridge=bridge, _config=KnotConfig(id="push"))

    same = push(name="b", where=Field("status") == "open")
    assert same.config_hash == push(name="b", where=Field("status") == "open").config_hash
    assert same.config_hash != push(name="b", where=Field("status") == "closed").config_hash
    assert same.config_hash != push(name="c", where=Field("status") == "open").config_hash
    assert same.config_hash != push(name="b", sink=MemorySink("other")).config_hash
    limit = 3
    by_closure = push(name="b", where=lambda e: e.version > limit)
    limit = 4
    assert by_closure.config_hash != push(name="b", where=lambda e: e.version > limit).config_hash


async def test_lineage_links_a_push_to_the_write_and_the_versions_it_carried(
    tmp_path: Path,
) -> None:
    db = tmp_path / "events.db"
    store = SQLiteEventStore(db)
    sink = MemorySink()
    bridge = Bridge(store, sink, name="orders", cursor=f"sqlite:///{db}")
    with Tapestry() as t:
        write = StoreWrite(
            store=store,
            entity_type="order",
            entity_id=Parameter("order_id", str),
            kind="CREATED",
            expected_version=0,
            payload=Parameter("payload", dict),
            _config=KnotConfig(id="write"),
        )
        BridgePush(bridge=bridge, written=write, _config=KnotConfig(id="push"))
    async with store, bridge, t:
        result = await t.run(RunRequest(parameters={"order_id": "o7", "payload": {"total": 3}}))
        summary = result.outputs["push"]
        assert isinstance(summary, PushSummary)
        assert summary.keys_hash == content_hash(["order/o7@1"])
        assert sink.keys == ["order/o7@1"]

        push_rec, write_rec = result.lineage_for("push"), result.lineage_for("write")
        assert push_rec.output_hash == content_hash(summary)
        assert push_rec.parent_input_hashes["written"] == write_rec.output_hash
        assert write_rec.output_hash == content_hash(result.outputs["write"])
        graph = await t.history.provenance(push_rec.output_hash)
        upstream = nx.ancestors(graph, push_rec.output_hash)
        assert {write_rec.output_hash, content_hash("o7"), content_hash({"total": 3})} <= upstream
        assert f"exec:{result.run_id}/write" in upstream


# -- BridgeTrigger -----------------------------------------------------------------------


async def test_bridge_trigger_records_each_push_as_a_run_one_at_a_time() -> None:
    from _serving import serving

    store = await _store({"i": 0}, {"i": 1})
    sink = _FlakySink()
    bridge = Bridge(store, sink, name="served", cursor="memory://")
    with Tapestry() as t:
        BridgePush(bridge=bridge, _config=KnotConfig(id="push"))
    clock = ManualClock()
    trigger = BridgeTrigger(bridge, interval=30, clock=clock)
    async with bridge, serving(trigger, t, max_concurrent_runs=4) as outcomes:
        [first] = await outcomes.wait_for(1)
        assert first.result is not None
        assert first.result.outputs["push"].sent == 2

        await clock.wait_for_sleeper()  # nothing more to push: no run until told
        await store.append("order", "o9", EventKind.CREATED, {}, expected_version=0)
        sink.fail = 1
        bridge.notify()
        failed = (await outcomes.wait_for(2))[1]
        assert not failed.succeeded
        clock.advance_to(await clock.wait_for_sleeper())  # waits out the interval, retries
        third = (await outcomes.wait_for(3))[2]
        assert third.succeeded
        assert third.result is not None
        assert third.result.outputs["push"].sent == 1
        run = await t.history.get_run(third.run_id)
    assert len(outcomes.seen) == 3
    assert first.run_id != third.run_id
    assert run is not None
    assert run.trigger == {"kind": "bridge", "source": "served", "after_seq": 2}
    assert sink.keys == ["order/o0@1", "order/o1@1", "order/o9@1"]
