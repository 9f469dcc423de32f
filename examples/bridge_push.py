"""Store writes pushed to a signed webhook, at least once, with lineage.

Each run writes an order event to a SQLite event store and pushes what is new to a
webhook receiver (a Starlette app served in-process). The receiver loses one answer,
so the bridge sends that event again; the receiver drops the repeat by its
``Idempotency-Key``. Run it with ``python examples/bridge_push.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pirn_like import KnotConfig, Parameter, RunRequest, Signature, Tapestry
from pirn_like.capabilities.events import (
    Bridge,
    BridgePush,
    PushSummary,
    SQLiteEventStore,
    StoreWrite,
    WebhookSink,
)

SECRET = "demo-secret"


class Receiver:
    """Verifies signatures and processes each idempotency key once; the first answer
    for ``lose_answer_for`` is lost (a 502 after the work was done)."""

    def __init__(self, lose_answer_for: str) -> None:
        self.processed: list[str] = []
        self.dropped = 0
        self.lose_answer_for = lose_answer_for
        self.app = Starlette(routes=[Route("/orders", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        Signature(SECRET).verify(request.headers, body)
        key = request.headers["Idempotency-Key"]
        if key in self.processed:
            self.dropped += 1
            return Response(status_code=204)
        self.processed.append(key)
        if key == self.lose_answer_for:
            self.lose_answer_for = ""
            return Response(status_code=502)
        return Response(status_code=204)


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "events.db"
    receiver = Receiver(lose_answer_for="order/A2@1")
    store = SQLiteEventStore(db)
    sink = WebhookSink(
        "http://receiver/orders",
        secret=SECRET,
        backoff=0,
        transport=httpx.ASGITransport(app=receiver.app),
    )
    bridge = Bridge(store, sink, name="orders-webhook", cursor=f"sqlite:///{db}")
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
        for order_id, total in [("A1", 10), ("A2", 25), ("A3", 40)]:
            result = await t.run(
                RunRequest(parameters={"order_id": order_id, "payload": {"total": total}})
            )
            summary = result.outputs["push"]
            assert isinstance(summary, PushSummary)
            push = result.lineage_for("push")
            print(
                f"run {order_id}: pushed seq {summary.from_seq}->{summary.to_seq} "
                f"({summary.sent} sent), output {push.output_hash[:19]}..., "
                f"input from 'write' {push.parent_input_hashes['written'][:19]}..."
            )
        position = await bridge.position()
    print(
        f"{len(receiver.processed)} events delivered, {receiver.dropped} resend dropped "
        f"by Idempotency-Key, cursor at seq {position}"
    )


if __name__ == "__main__":
    asyncio.run(main())
