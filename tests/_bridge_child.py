"""A bridge in a child process, for the kill-mid-push tests.

    python tests/_bridge_child.py <store.db> <kafka|valkey> <address> <topic|stream>
        <cursor url> <batch size> <step|run>

Pushes the store's events to the sink. In ``step`` mode it prints ``acked <seq>`` once
the sink has acknowledged each batch and then waits for a line on stdin before the
cursor may move, so the parent can kill it exactly between an acknowledgement and
the cursor write. In ``run`` mode it pushes everything and prints ``done <seq>``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Self

import anyio

from pirn_like.capabilities.events import (
    Bridge,
    BridgeMessage,
    BridgeSink,
    KafkaSink,
    SQLiteEventStore,
    ValKeySink,
)


class _Announcing:
    """A sink that reports each acknowledged batch and waits for the parent's go."""

    def __init__(self, inner: BridgeSink) -> None:
        self.inner = inner
        self.identity = inner.identity

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.inner.__aexit__(*exc_info)

    async def send(self, messages: Sequence[BridgeMessage]) -> None:
        await self.inner.send(messages)
        print(f"acked {messages[-1].event.seq}", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)


async def main(argv: list[str]) -> None:
    store_path, kind, address, target, cursor, batch, mode = argv
    sink: BridgeSink = (
        KafkaSink(target, bootstrap_servers=address)
        if kind == "kafka"
        else ValKeySink(address, stream=target)
    )
    if mode == "step":
        sink = _Announcing(sink)
    async with SQLiteEventStore(store_path) as store:
        bridge = Bridge(store, sink, name="kill-test", cursor=cursor, batch_size=int(batch))
        async with bridge:
            summary = await bridge.push()
    print(f"done {summary.to_seq}", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:], backend="asyncio")
