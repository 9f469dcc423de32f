"""KafkaTrigger on a real Kafka-protocol broker: at-least-once runs, offsets committed
only for settled messages, failures to the dead-letter topic, redeliveries not run twice,
and a consumer process killed mid-stream and restarted losing nothing."""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from _fixtures_kafka import FAST_GROUP, KafkaBroker, Record
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from pirn_like import (
    KnotConfig,
    Parameter,
    RunOutcome,
    RunRequest,
    RunStatus,
    SQLiteHistory,
    Tapestry,
    knot,
)
from pirn_like.triggers import KafkaTrigger, run_forever
from pirn_like.triggers._kafka import message_run_id

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("kafka")]

CHILD = Path(__file__).with_name("_kafka_consumer_child.py")

executed: Counter[str] = Counter()


@pytest.fixture
def anyio_backend() -> str:
    """aiokafka is asyncio-only."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _reset() -> None:
    executed.clear()


@knot
async def handle(order: str, qty: int) -> int:
    executed[order] += 1
    if qty < 0:
        raise ValueError(f"order {order}: negative quantity {qty}")
    return qty * 2


def _tapestry() -> Tapestry:
    t = Tapestry()
    with t:
        handle(order=Parameter("order", str), qty=Parameter("qty", int), _config=KnotConfig(id="h"))
    return t


def _order(order: str, qty: object) -> tuple[bytes, bytes]:
    return order.encode(), json.dumps({"order": order, "qty": qty}).encode()


def _group(topic: str) -> str:
    """A group of the test's own: members of a shared group would wait for each other."""
    return f"{topic}-g"


def _trigger(
    kafka: KafkaBroker, topic: str, group: str | None = None, **kwargs: object
) -> KafkaTrigger:
    return KafkaTrigger(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=group or _group(topic),
        consumer_options=FAST_GROUP,
        **kwargs,  # type: ignore[arg-type]
    )


def _ends(placed: list[tuple[int, int]]) -> dict[int, int]:
    """Partition -> one past its last offset, of the messages at ``placed``."""
    ends: dict[int, int] = {}
    for partition, offset in placed:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def _headers(record: Record) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers}


async def _serve_until(
    trigger: KafkaTrigger, tapestry: Tapestry, outcomes: int
) -> list[RunOutcome]:
    """run_forever until ``outcomes`` deliveries settled; returns their outcomes."""
    seen: list[RunOutcome] = []
    stop = anyio.Event()

    def collect(outcome: RunOutcome) -> None:
        seen.append(outcome)
        if len(seen) == outcomes:
            stop.set()

    with anyio.fail_after(30):
        await run_forever(trigger, tapestry, stop=stop, on_outcome=collect, handle_signals=False)
    return seen


async def test_a_message_becomes_a_run_request_with_a_run_id_from_its_identity(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic()
    [(partition, offset)] = await kafka.produce(topic, [_order("o-1", 3)])
    async with _trigger(kafka, topic, "shop") as trigger:
        with anyio.fail_after(20):
            delivery = await anext(trigger.deliveries())
    request = delivery.request
    assert request.parameters == {"order": "o-1", "qty": 3}
    assert request.run_id == message_run_id("shop", topic, partition, offset)
    assert request.trigger == {
        "kind": "kafka",
        "source": topic,
        "partition": partition,
        "offset": offset,
        "message_id": f"{topic}/{partition}/{offset}",
        "key": "o-1",
        "group_id": "shop",
    }


async def test_to_request_maps_a_message_and_may_set_its_own_run_id(kafka: KafkaBroker) -> None:
    topic = await kafka.topic()
    await kafka.produce(topic, [(b"k", b"7"), (b"k", b"8")])

    def to_request(record: Record) -> RunRequest | dict[str, object]:
        qty = int(record.value or b"0")
        if qty == 8:
            return RunRequest(
                parameters={"order": "x", "qty": qty}, run_id="order-x", labels={"a": "b"}
            )
        return {"order": "plain", "qty": qty}

    async with _trigger(kafka, topic, to_request=to_request) as trigger:
        deliveries = trigger.deliveries()
        with anyio.fail_after(20):
            first, second = await anext(deliveries), await anext(deliveries)
    assert first.request.parameters == {"order": "plain", "qty": 7}
    assert first.request.run_id == message_run_id(_group(topic), topic, 0, 0)
    assert second.request.run_id == "order-x"
    assert second.request.labels == {"a": "b"}
    assert second.request.trigger is not None
    assert second.request.trigger["message_id"] == f"{topic}/0/1"


async def test_offsets_are_committed_only_up_to_the_first_unsettled_message(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic()
    await kafka.produce(topic, [_order(f"o-{i}", i) for i in range(4)])
    async with _trigger(kafka, topic) as trigger:
        deliveries = trigger.deliveries()
        with anyio.fail_after(20):
            d = [await anext(deliveries) for _ in range(4)]
        done = RunOutcome("r", RunStatus.SUCCEEDED)
        await d[2].settle(done)
        await d[1].settle(done)
        assert await kafka.committed(topic, _group(topic)) == {
            0: None
        }  # offset 0 is still in flight
        await d[0].settle(done)
        assert await kafka.committed(topic, _group(topic)) == {0: 3}  # 0, 1 and 2 settled; 3 is not
        await d[3].release()
    assert await kafka.committed(topic, _group(topic)) == {0: 3}  # released: left for redelivery


async def test_a_released_message_is_delivered_again_with_the_same_run_id(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic()
    await kafka.produce(topic, [_order("o-1", 1)])
    async with _trigger(kafka, topic) as trigger:
        with anyio.fail_after(20):
            first = await anext(trigger.deliveries())
        await first.release()
        with pytest.raises(RuntimeError, match="already settled or released"):
            await first.settle(RunOutcome("r", RunStatus.SUCCEEDED))
    async with _trigger(kafka, topic) as trigger:
        with anyio.fail_after(20):
            again = await anext(trigger.deliveries())
    assert again.request == first.request


async def test_messages_that_are_not_requests_go_to_the_dlq_without_running(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic()
    await kafka.produce(topic, [(b"bad", b"{not json"), (b"list", b"[1, 2]"), _order("ok", 1)])
    async with _trigger(kafka, topic) as trigger:
        with anyio.fail_after(20):
            delivery = await anext(trigger.deliveries())
        assert delivery.request.parameters == {"order": "ok", "qty": 1}
        await delivery.settle(RunOutcome("r", RunStatus.SUCCEEDED))
        assert await kafka.committed(topic, _group(topic)) == {0: 3}
    dead = {r.key: r for r in await kafka.read(f"{topic}.dlq", 2)}
    assert dead[b"bad"].value == b"{not json"
    assert _headers(dead[b"bad"]) == {
        "pirn_like.error.type": "JSONDecodeError",
        "pirn_like.error.message": _headers(dead[b"bad"])["pirn_like.error.message"],
        "pirn_like.source.topic": topic,
        "pirn_like.source.partition": "0",
        "pirn_like.source.offset": "0",
        "pirn_like.run.id": message_run_id(_group(topic), topic, 0, 0),
        "pirn_like.run.status": "refused",
    }
    assert _headers(dead[b"list"])["pirn_like.error.message"] == (
        "expected a JSON object of parameters, got list"
    )


async def test_failed_and_refused_runs_go_to_the_dlq_and_the_offsets_move_on(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic(partitions=2)
    placed = await kafka.produce(
        topic, [_order("good", 1), _order("fails", -1), _order("refused", "many"), _order("ok", 2)]
    )
    outcomes = await _serve_until(_trigger(kafka, topic), _tapestry(), 4)
    by_status = Counter(o.status for o in outcomes)
    assert by_status == {RunStatus.SUCCEEDED: 2, RunStatus.FAILED: 1, None: 1}
    dead = {r.key: _headers(r) for r in await kafka.read(f"{topic}.dlq", 2)}
    assert dead[b"fails"]["pirn_like.error.type"] == "builtins.ValueError"
    assert dead[b"fails"]["pirn_like.error.message"] == "order fails: negative quantity -1"
    assert dead[b"fails"]["pirn_like.run.status"] == "failed"
    assert dead[b"refused"]["pirn_like.error.type"] == "ParameterError"
    assert "qty" in dead[b"refused"]["pirn_like.error.message"]
    assert dead[b"refused"]["pirn_like.run.status"] == "refused"
    assert await kafka.committed(topic, _group(topic)) == _ends(placed)


async def test_a_redelivered_message_whose_run_is_recorded_is_not_run_again(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic()
    [(partition, offset)] = await kafka.produce(topic, [_order("o-1", 5)])
    tapestry = _tapestry()
    # The run was recorded, then the process died before committing the offset.
    run_id = message_run_id(_group(topic), topic, partition, offset)
    await tapestry.run(RunRequest(parameters={"order": "o-1", "qty": 5}, run_id=run_id))
    assert executed == {"o-1": 1}
    [outcome] = await _serve_until(_trigger(kafka, topic), tapestry, 1)
    assert outcome == RunOutcome(run_id, RunStatus.SUCCEEDED, duplicate=True)
    assert executed == {"o-1": 1}
    assert await kafka.committed(topic, _group(topic)) == {0: 1}


async def test_a_rebalance_hands_unsettled_messages_to_the_new_owner(kafka: KafkaBroker) -> None:
    topic = await kafka.topic(partitions=2)
    for p in (0, 1):
        await kafka.produce(topic, [_order(f"p{p}", p)], partition=p)
    async with _trigger(kafka, topic) as first:
        deliveries = first.deliveries()
        with anyio.fail_after(20):
            held = {
                d.request.parameters["order"]: d for d in [await anext(deliveries) for _ in "ab"]
            }
        # A second member joins: the group splits the partitions between the two.
        async with _trigger(kafka, topic) as second:
            with anyio.fail_after(20):
                moved = await anext(second.deliveries())
            order = moved.request.parameters["order"]
            p = int(order[1])
            assert moved.request.run_id == held[order].request.run_id
            # The first member's late settle of a revoked partition commits nothing ...
            await held[order].settle(RunOutcome("r", RunStatus.SUCCEEDED))
            assert (await kafka.committed(topic, _group(topic)))[p] is None
            # ... the new owner's does.
            await moved.settle(RunOutcome("r", RunStatus.SUCCEEDED))
            assert (await kafka.committed(topic, _group(topic)))[p] == 1


def test_the_trigger_refuses_trio_with_a_clear_error() -> None:
    async def open_on_trio() -> None:
        async with KafkaTrigger("t", bootstrap_servers="127.0.0.1:1"):
            pass

    with pytest.raises(RuntimeError, match="asyncio only"):
        anyio.run(open_on_trio, backend="trio")


def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="topic name"):
        KafkaTrigger("", bootstrap_servers="h:1")
    with pytest.raises(ValueError, match="bootstrap_servers"):
        KafkaTrigger("t", bootstrap_servers="")
    with pytest.raises(ValueError, match="must differ"):
        KafkaTrigger("t", bootstrap_servers="h:1", dead_letter_topic="t")
    with pytest.raises(ValueError, match=r"\['enable_auto_commit'\]"):
        KafkaTrigger("t", bootstrap_servers="h:1", consumer_options={"enable_auto_commit": True})


# -- a consumer process killed mid-stream ---------------------------------------------------

MESSAGES = 1000
PARTITIONS = 4
MAX_CONCURRENT_RUNS = 8  # as in _kafka_consumer_child.py
KILL_AFTER = 300


def _message(i: int) -> tuple[bytes, bytes]:
    """Message ``i``; every 50 messages, four kinds of poison."""
    key = f"m{i:04d}"
    match i % 50:
        case 7:
            value = b"{truncated"
        case 19:
            value = b'["not", "an", "object"]'
        case 31:
            value = json.dumps({"id": key, "n": "many"}).encode()  # refused: n is an int
        case 43:
            value = json.dumps({"id": key, "n": -1}).encode()  # the knot raises
        case _:
            value = json.dumps({"id": key, "n": i}).encode()
    return key.encode(), value


def _is_poison(i: int) -> bool:
    return i % 50 in (7, 19, 31, 43)


async def _outcome_lines(process: Process) -> AsyncIterator[str]:
    assert process.stdout is not None
    lines = BufferedByteReceiveStream(process.stdout)
    while True:
        try:
            yield (await lines.receive_until(b"\n", 4096)).decode()
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return


async def _start_child(kafka: KafkaBroker, topic: str, workdir: Path, n: int) -> Process:
    argv = [sys.executable, str(CHILD), kafka.bootstrap, topic, "svc", str(workdir)]
    with (workdir / f"child{n}.log").open("wb") as log:
        return await anyio.open_process([*argv, json.dumps(FAST_GROUP)], stderr=log)


async def test_a_consumer_killed_mid_stream_and_restarted_loses_nothing(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    topic = await kafka.topic(partitions=PARTITIONS)
    placed = await kafka.produce(topic, [_message(i) for i in range(MESSAGES)])
    run_ids = {i: message_run_id("svc", topic, p, o) for i, (p, o) in enumerate(placed)}

    first = await _start_child(kafka, topic, tmp_path, 1)
    runs_settled = 0
    try:
        with anyio.fail_after(30):
            async for line in _outcome_lines(first):
                runs_settled += line.startswith("run ")
                if runs_settled == KILL_AFTER:
                    break
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert first.returncode == -signal.SIGKILL

    # What the restarted consumer must settle: every message past the committed offsets.
    committed = await kafka.committed(topic, "svc")
    pending = [i for i, (p, o) in enumerate(placed) if o >= (committed[p] or 0)]
    assert 0 < len(pending) < MESSAGES
    awaited = {
        f"dead {topic}/{placed[i][0]}/{placed[i][1]}" if i % 50 in (7, 19) else run_ids[i]
        for i in pending
    }
    second = await _start_child(kafka, topic, tmp_path, 2)
    try:
        with anyio.fail_after(60):
            async for line in _outcome_lines(second):
                awaited.discard(line.split()[1] if line.startswith("run ") else line.strip())
                if not awaited:
                    break
        second.send_signal(signal.SIGTERM)  # a graceful stop
        with anyio.fail_after(30):
            await second.wait()
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()
    assert second.returncode == 0, (tmp_path / "child2.log").read_text()
    # Every message settled, so every offset is committed.
    assert await kafka.committed(topic, "svc") == _ends(placed)

    # No message lost: every good message has one succeeded run, under its own run id.
    async with SQLiteHistory(tmp_path / "runs.db") as history:
        runs = {r.run_id: r for r in await history.list_runs(limit=10 * MESSAGES)}
    good = {run_ids[i] for i in range(MESSAGES) if not _is_poison(i)}
    assert {rid for rid, r in runs.items() if r.status is RunStatus.SUCCEEDED} == good
    failed = {run_ids[i] for i in range(MESSAGES) if i % 50 == 43}
    assert {rid for rid, r in runs.items() if r.status is RunStatus.FAILED} == failed
    assert set(runs) == good | failed  # refused requests leave no run
    for i in range(0, MESSAGES, 97):
        if not _is_poison(i):
            trigger = runs[run_ids[i]].trigger
            assert trigger is not None
            assert trigger["key"] == f"m{i:04d}"

    # Executions repeat only for runs in flight when the first process was killed.
    executions = Counter((tmp_path / "effects.txt").read_text().split())
    assert set(executions) == {f"m{i:04d}" for i in range(MESSAGES) if not _is_poison(i)}
    repeats = sum(n - 1 for n in executions.values())
    assert repeats <= MAX_CONCURRENT_RUNS

    # Poison messages are in the dead-letter topic with the error, once each at least.
    dead = await kafka.read(f"{topic}.dlq")
    assert {r.key for r in dead} == {f"m{i:04d}".encode() for i in range(MESSAGES) if _is_poison(i)}
    for record in dead:
        headers = _headers(record)
        assert headers["pirn_like.error.type"]
        assert headers["pirn_like.source.topic"] == topic
        i = int((record.key or b"").decode()[1:])
        assert headers["pirn_like.run.id"] == run_ids[i]
        assert (
            int(headers["pirn_like.source.partition"]),
            int(headers["pirn_like.source.offset"]),
        ) == placed[i]
