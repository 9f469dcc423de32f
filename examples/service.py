"""A complete trigger service: one tapestry, three triggers, SQLite history.

Orders arrive on a Kafka topic and through an authenticated webhook; a cron
schedule totals them every second. Every run is recorded, with what started it,
in a SQLite history; offsets are committed only once runs are recorded, and a
failed order goes to the dead-letter topic.

    PIRN_LIKE_KAFKA=127.0.0.1:9092 python examples/service.py

The script plays the clients too: it posts an order to the webhook, produces two
to Kafka (one of them malformed), waits for a cron fire, then stops the service
as SIGTERM would and prints what history holds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import anyio
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pirn_like import KnotConfig, Parameter, RunOutcome, Tapestry, knot
from pirn_like.triggers import CronTrigger, KafkaTrigger, WebhookTrigger, run_forever

TOKEN = "example-token"


@knot
async def price(order: str, quantity: int) -> float:
    """The order's price; quantities must be positive."""
    if quantity <= 0:
        raise ValueError(f"order {order}: quantity must be positive, got {quantity}")
    return round(quantity * 2.5, 2)


def build(workdir: Path) -> Tapestry:
    tapestry = Tapestry(
        history=f"sqlite:///{workdir / 'runs.db'}",
        data_store=f"file://{workdir / 'values'}",
    )
    with tapestry:
        price(
            order=Parameter("order", str, default="scheduled"),
            quantity=Parameter("quantity", int, default=1),
            _config=KnotConfig(id="price"),
        )
    return tapestry


async def main(bootstrap: str) -> None:
    topic = f"orders-{os.getpid()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in (topic, f"{topic}.dlq")])
    finally:
        await admin.close()

    with tempfile.TemporaryDirectory() as tmp:
        tapestry = build(Path(tmp))
        webhook = WebhookTrigger(path="/orders", token=TOKEN, port=0, tapestry=tapestry)
        orders = KafkaTrigger(topic, bootstrap_servers=bootstrap, group_id="billing")
        cron = CronTrigger(every_seconds=1, name="totals")
        stop = anyio.Event()
        outcomes: list[RunOutcome] = []
        seen = anyio.Event()

        async def on_outcome(outcome: RunOutcome) -> None:
            outcomes.append(outcome)
            seen.set()

        async def wait_for(kind: str, count: int = 1) -> None:
            nonlocal seen
            with anyio.fail_after(30):
                while sum(_kind(o) == kind for o in outcomes) < count:
                    seen = anyio.Event()
                    await seen.wait()

        async def clients() -> None:
            await webhook.wait_ready()
            async with httpx.AsyncClient() as client:
                answer = await client.post(
                    f"{webhook.url}?wait=true",
                    json={"order": "web-1", "quantity": 4},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                print("webhook answered", answer.status_code, answer.json()["status"])
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            try:
                for body in ({"order": "k-1", "quantity": 3}, {"order": "k-2", "quantity": -1}):
                    await producer.send_and_wait(topic, json.dumps(body).encode())
            finally:
                await producer.stop()
            await wait_for("kafka", 2)
            await wait_for("cron")
            stop.set()  # what SIGTERM does: stop intake, let runs in flight finish

        async with tapestry:
            async with anyio.create_task_group() as tg:
                tg.start_soon(clients)
                await run_forever(
                    [cron, orders, webhook],
                    tapestry,
                    max_concurrent_runs=4,
                    stop=stop,
                    on_outcome=on_outcome,
                )
            runs = await tapestry.history.list_runs()
        by_kind = sorted({(r.trigger or {}).get("kind", "?") for r in runs})
        print("runs recorded by trigger:", by_kind)
        for run in sorted(runs, key=lambda r: r.started_at):
            if run.trigger and run.trigger["kind"] != "cron":
                print(f"  {run.trigger['kind']:>7} {run.status.value}")
        print("dead letters:", await _dead_letters(bootstrap, f"{topic}.dlq"))


def _kind(outcome: RunOutcome) -> str:
    result = outcome.result
    trigger = result.trigger if result is not None else None
    return str((trigger or {}).get("kind", "?"))


async def _dead_letters(bootstrap: str, topic: str) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000, max_records=1)
        return [
            dict(record.headers)["pirn_like.error.type"].decode()
            for records in batch.values()
            for record in records
        ]
    finally:
        await consumer.stop()


if __name__ == "__main__":
    address = os.environ.get("PIRN_LIKE_KAFKA")
    if not address:
        sys.exit("set PIRN_LIKE_KAFKA to a Kafka broker's host:port")
    anyio.run(main, address, backend="asyncio")
