"""KafkaStreamingSource on a real Kafka-protocol broker: items decoded from messages,
acknowledged by committing offsets (never past an unacknowledged item), and fed
through run_stream with redelivered items recognised."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import pytest
from _fixtures_kafka import FAST_GROUP, KafkaBroker

from pirn_like import KnotConfig, Parameter, RunResult, Tapestry, knot
from pirn_like.protocols import StreamItem, StreamSource
from pirn_like.streaming import KafkaStreamingSource, run_stream

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("kafka")]

seen: Counter[int] = Counter()


@pytest.fixture
def anyio_backend() -> str:
    """aiokafka is asyncio-only."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _reset() -> None:
    seen.clear()


@knot
async def square(event: dict[str, int]) -> int:
    seen[event["n"]] += 1
    return event["n"] ** 2


def _source(kafka: KafkaBroker, topic: str, **kwargs: object) -> KafkaStreamingSource:
    return KafkaStreamingSource(
        topic,
        bootstrap_servers=kafka.bootstrap,
        parameter_name="event",
        group_id=f"{topic}-s",
        consumer_options=FAST_GROUP,
        **kwargs,  # type: ignore[arg-type]
    )


def _events(*ns: int) -> list[tuple[bytes, bytes]]:
    return [(str(n).encode(), json.dumps({"n": n}).encode()) for n in ns]


async def test_items_are_decoded_messages_and_acks_commit_the_acknowledged_prefix(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic(dlq=False)
    await kafka.produce(topic, [*_events(0, 1), (b"k", b"not json"), *_events(3)])
    source: StreamSource = _source(kafka, topic)
    assert (source.kind, source.parameter_name) == ("kafka", "event")
    async with source:
        items = source.items()
        with anyio.fail_after(20):
            first, second, fourth = [await anext(items) for _ in range(3)]
        # The undecodable message at offset 2 was skipped.
        assert [i.value for i in (first, second, fourth)] == [{"n": 0}, {"n": 1}, {"n": 3}]
        assert [i.position for i in (first, second, fourth)] == [
            f"{topic}/0/0",
            f"{topic}/0/1",
            f"{topic}/0/3",
        ]
        await fourth.ack()
        await second.ack()
        assert await kafka.committed(topic, f"{topic}-s") == {0: None}
        await first.ack()  # 0, 1, the skipped 2 and 3 are all done
        assert await kafka.committed(topic, f"{topic}-s") == {0: 4}


async def test_a_custom_decoder_reads_the_raw_bytes(kafka: KafkaBroker) -> None:
    topic = await kafka.topic(dlq=False)
    await kafka.produce(topic, [(None, b"hello")])
    async with _source(kafka, topic, decode=bytes.decode) as source:
        with anyio.fail_after(20):
            item = await anext(source.items())
    assert item.value == "hello"


class AckWatch:
    """A source passed through, noting the positions of the items acknowledged."""

    def __init__(self, source: KafkaStreamingSource, acked: set[str], done: anyio.Event) -> None:
        self._source = source
        self._acked = acked
        self._done = done

    def __getattr__(self, name: str) -> object:
        return getattr(self._source, name)

    async def __aenter__(self) -> AckWatch:
        await self._source.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._source.__aexit__(*exc_info)

    async def items(self) -> AsyncIterator[StreamItem]:
        async for item in self._source.items():
            yield _Watched(item, self)

    async def acked(self, position: str) -> None:
        self._acked.add(position)
        if len(self._acked) == 6:
            self._done.set()


class _Watched:
    def __init__(self, item: StreamItem, watch: AckWatch) -> None:
        self.value, self.position = item.value, item.position
        self._item, self._watch = item, watch

    async def ack(self) -> None:
        await self._item.ack()
        await self._watch.acked(self.position)


async def test_run_stream_runs_each_item_and_recognises_a_redelivered_one(
    kafka: KafkaBroker,
) -> None:
    topic = await kafka.topic(partitions=2, dlq=False)
    placed = await kafka.produce(topic, _events(*range(6)))
    t = Tapestry()
    with t:
        square(event=Parameter("event", dict[str, int]), _config=KnotConfig(id="square"))
    acked: set[str] = set()
    all_acked = anyio.Event()
    results: list[RunResult] = []

    def stop_after_four(result: RunResult) -> None:
        results.append(result)
        if len(results) == 4:
            raise RuntimeError("stop here")  # this item is not acknowledged

    async with t:
        first = AckWatch(_source(kafka, topic), acked, all_acked)
        with anyio.fail_after(30), pytest.raises(RuntimeError, match="stop here"):
            await run_stream(first, t, on_result=stop_after_four, max_in_flight=2)
        assert [r.outputs["square"] for r in results] == [
            r.outputs["param:event"]["n"] ** 2 for r in results
        ]
        assert len(acked) < 6
        # The same group again: what was not acknowledged comes back, and an item
        # whose run is recorded is not run again.
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                again = AckWatch(_source(kafka, topic), acked, all_acked)
                summary = await run_stream(again, t, stop=stop)
                assert summary.duplicates >= 1

            tg.start_soon(serve)
            with anyio.fail_after(30):
                await all_acked.wait()
            stop.set()
    assert seen == Counter(range(6))  # every item ran exactly once
    ends: dict[int, int] = {}
    for p, o in placed:
        ends[p] = max(ends.get(p, 0), o + 1)
    assert await kafka.committed(topic, f"{topic}-s") == ends
