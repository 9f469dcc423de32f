"""Seed 004's "Triggers and emitters" and "Streaming sources" snippets, as written
(``pirn`` → ``pirn_like``), on a real Kafka-protocol broker where they name one."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from _fixtures_kafka import KafkaBroker
from starlette.applications import Starlette

from pirn_like import KnotConfig, Parameter, RunOutcome, RunRequest, RunResult, Tapestry, knot

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("kafka")]


@pytest.fixture
def anyio_backend() -> str:
    """aiokafka and uvicorn are asyncio-only."""
    return "asyncio"


@knot
async def handle_order(order: str) -> str:
    return f"handled {order}"


@knot
async def upper(line: str) -> str:
    return line.upper()


@knot
async def square(x: int) -> int:
    return x * x


def orders_tapestry() -> Tapestry:
    t = Tapestry()
    with t:
        handle_order(order=Parameter("order", str, default="none"), _config=KnotConfig(id="h"))
    return t


async def test_triggers_snippet(kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    from pirn_like.triggers import CronTrigger, KafkaTrigger, WebhookTrigger, run_forever

    tapestry = orders_tapestry()

    # Run every five minutes.
    trigger = CronTrigger(every_seconds=300)
    assert trigger.kind == "cron"

    # Run on each Kafka message (the seed's "kafka:9092" is this suite's broker).
    topic = await kafka.topic()
    trigger = KafkaTrigger(topic=topic, bootstrap_servers=kafka.bootstrap)
    await kafka.produce(topic, [(None, json.dumps({"order": "A-1"}).encode())])
    stop = anyio.Event()
    seen: list[RunOutcome] = []

    def on_outcome(outcome: RunOutcome) -> None:
        seen.append(outcome)
        stop.set()

    with anyio.fail_after(60):
        await run_forever(trigger, tapestry, stop=stop, on_outcome=on_outcome)
    assert [o.result.outputs["h"] for o in seen if o.result] == ["handled A-1"]

    # Run on each HTTP POST; trigger.app is a Starlette ASGI app. Authenticated by
    # default: here the token comes from the environment.
    monkeypatch.setenv("PIRN_LIKE_WEBHOOK_TOKEN", "from-the-env")
    trigger = WebhookTrigger(path="/run")
    assert isinstance(trigger.app, Starlette)
    transport = httpx.ASGITransport(app=trigger.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        # Mounted alone, with no run_forever taking its requests: a clear refusal.
        alone = await client.post(
            "/run", json={"order": "B-2"}, headers={"Authorization": "Bearer from-the-env"}
        )
        assert alone.status_code == 503
        assert "run_forever(trigger, tapestry)" in alone.text
        # Served by run_forever, it takes requests, and only authenticated ones.
        stop = anyio.Event()
        trigger = WebhookTrigger(path="/run", serve=False)
        client_app = httpx.ASGITransport(app=trigger.app)
        async with (
            anyio.create_task_group() as tg,
            httpx.AsyncClient(transport=client_app, base_url="http://svc") as served,
        ):
            tg.start_soon(partial(run_forever, trigger, orders_tapestry(), stop=stop))
            await trigger.wait_ready()
            refused = await served.post("/run", json={"order": "B-2"})
            taken = await served.post(
                "/run?wait=true",
                json={"order": "B-2"},
                headers={"Authorization": "Bearer from-the-env"},
            )
            stop.set()
    assert refused.status_code == 401
    assert (taken.status_code, taken.json()["status"]) == (200, "succeeded")


async def test_emitters_snippet(kafka: KafkaBroker) -> None:
    from pirn_like import KafkaEmitter, LogEmitter, OpenTelemetryEmitter

    status, lineage, result = [await kafka.topic(dlq=False) for _ in range(3)]

    # Stream structured logs.
    log_emitter = LogEmitter(with_payload=False)

    # Publish to Kafka for downstream observability tools.
    kafka_emitter = KafkaEmitter(
        bootstrap_servers=kafka.bootstrap,
        topic_status=status,
        topic_lineage=lineage,
        topic_result=result,
    )

    # OpenTelemetry trace spans per knot.
    otel_emitter = OpenTelemetryEmitter()

    with Tapestry(emitters=[log_emitter, kafka_emitter, otel_emitter]) as t:
        handle_order(order=Parameter("order", str), _config=KnotConfig(id="h"))

    async with t:
        done = await t.run(RunRequest(parameters={"order": "C-3"}))
        assert await t.flush_emitters()
    with anyio.fail_after(20):
        (published,) = await kafka.read(result, 1)
    body = json.loads(published.value or b"")
    assert body["run_id"] == done.run_id
    assert body["status"] == "succeeded"


async def test_streaming_snippet(tmp_path: Path) -> None:
    from pirn_like.streaming import FileTailSource, IterableSource, run_stream

    log = tmp_path / "app.log"
    log.write_text("")
    tail = Tapestry()
    with tail:
        upper(line=Parameter("line", str), _config=KnotConfig(id="upper"))
    handled: list[str] = []
    two = anyio.Event()

    def handle(result: RunResult) -> None:
        handled.append(result.outputs["upper"])
        if len(handled) == 2:
            two.set()

    # Tail a log file forever.
    source = FileTailSource(str(log), parameter_name="line")
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(run_stream, source, tail, on_result=handle))
            # It follows the file from its end once open; nothing signals that moment.
            while source._tail is None:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            with log.open("a") as out:
                out.write("started\nstopped\n")
            await two.wait()
            tg.cancel_scope.cancel()
    assert handled == ["STARTED", "STOPPED"]

    # Wrap any iterable.
    tapestry = Tapestry()
    with tapestry:
        square(x=Parameter("x", int), _config=KnotConfig(id="square"))
    source = IterableSource([1, 2, 3], parameter_name="x")
    summary = await run_stream(source, tapestry)
    assert summary.succeeded == 3
