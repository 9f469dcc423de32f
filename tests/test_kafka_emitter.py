"""KafkaEmitter on a real Kafka-protocol broker: status events, lineage records and
run results as JSON messages keyed by run id."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from _fixtures_kafka import KafkaBroker

from pirn_like import KnotConfig, MemoryEmitter, Parameter, RunRequest, Tapestry, knot
from pirn_like.emitters import KafkaEmitter
from pirn_like.emitters._fields import event_kind, event_run_id

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("kafka")]


@pytest.fixture
def anyio_backend() -> str:
    """aiokafka is asyncio-only."""
    return "asyncio"


@knot
async def double(x: int) -> int:
    return 2 * x


@knot
async def check(y: int) -> int:
    if y > 10:
        raise ValueError(f"too big: {y}")
    return y


def _tapestry(*emitters: Any) -> Tapestry:
    t = Tapestry(emitters=list(emitters))
    with t:
        d = double(x=Parameter("x", int), _config=KnotConfig(id="double"))
        check(y=d, _config=KnotConfig(id="check"))
    return t


async def _messages(kafka: KafkaBroker, topic: str, count: int) -> list[tuple[str, Any]]:
    with anyio.fail_after(20):
        records = await kafka.read(topic, count)
    return [((r.key or b"").decode(), json.loads(r.value or b"")) for r in records]


async def test_status_lineage_and_results_are_published_keyed_by_run_id(
    kafka: KafkaBroker,
) -> None:
    status, lineage, result = [await kafka.topic(dlq=False) for _ in range(3)]
    memory = MemoryEmitter()
    emitter = KafkaEmitter(
        bootstrap_servers=kafka.bootstrap,
        topic_status=status,
        topic_lineage=lineage,
        topic_result=result,
    )
    async with _tapestry(emitter, memory) as t:
        ok = await t.run(RunRequest(parameters={"x": 3}))
        failed = await t.run(RunRequest(parameters={"x": 6}))
        assert await t.flush_emitters()
    # Closing the tapestry flushed the producer: every message is on the broker.
    events = await _messages(kafka, status, len(memory.events))
    # The same events, in the same order, as the in-memory emitter got.
    assert [(key, body["run_id"], body["event"]) for key, body in events] == [
        (event_run_id(e), event_run_id(e), event_kind(e)) for e in memory.events
    ]
    finished = [body for _, body in events if body["event"] == "knot_finished"]
    assert {(b["run_id"], b["knot_id"], b["outcome"]) for b in finished} >= {
        (ok.run_id, "check", "ok"),
        (failed.run_id, "check", "err"),
    }

    records = await _messages(kafka, lineage, len(ok.lineage) + len(failed.lineage))
    sent = {(body["run_id"], body["knot_id"]): body for _, body in records}
    for run in (ok, failed):
        for rec in run.lineage:
            body = sent[(run.run_id, rec.knot_id)]
            assert body["knot_config_hash"] == rec.knot_config_hash
            assert body["parent_input_hashes"] == dict(rec.parent_input_hashes)
            assert body["output_hash"] == rec.output_hash
            assert body["outcome"] == rec.outcome.value
            assert body["execution_hash"] == rec.execution_hash
    assert {key for key, _ in records} == {ok.run_id, failed.run_id}

    results = dict(await _messages(kafka, result, 2))
    assert results[ok.run_id]["status"] == "succeeded"
    assert results[ok.run_id]["output_hashes"] == {
        rec.knot_id: rec.output_hash for rec in ok.lineage if rec.output_hash
    }
    assert results[ok.run_id]["errors"] == []
    assert "outputs" not in results[ok.run_id]  # values only when asked for
    assert results[failed.run_id]["status"] == "failed"
    [error] = results[failed.run_id]["errors"]
    assert (error["knot_id"], error["message"]) == ("check", "too big: 12")


async def test_results_carry_the_values_with_payload(kafka: KafkaBroker) -> None:
    result = await kafka.topic(dlq=False)
    emitter = KafkaEmitter(
        bootstrap_servers=kafka.bootstrap, topic_result=result, with_payload=True
    )
    async with _tapestry(emitter) as t:
        run = await t.run(RunRequest(parameters={"x": 4}))
    [(key, body)] = await _messages(kafka, result, 1)
    assert key == run.run_id
    assert body["outputs"] == {"param:x": 4, "double": 8, "check": 8}


def test_the_emitter_refuses_trio_with_a_clear_error() -> None:
    async def open_on_trio() -> None:
        async with KafkaEmitter(bootstrap_servers="127.0.0.1:1", topic_status="s"):
            pass

    with pytest.raises(RuntimeError, match="asyncio only"):
        anyio.run(open_on_trio, backend="trio")


def test_bad_arguments_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="at least one of topic_status"):
        KafkaEmitter(bootstrap_servers="h:1")
    with pytest.raises(ValueError, match="topic_lineage must be a topic name"):
        KafkaEmitter(bootstrap_servers="h:1", topic_lineage="")
    with pytest.raises(ValueError, match=r"\['bootstrap_servers'\]"):
        KafkaEmitter(
            bootstrap_servers="h:1", topic_status="s", client_options={"bootstrap_servers": "x"}
        )
