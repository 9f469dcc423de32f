"""Dispatchers decide where knot code runs: ThreadDispatcher for blocking, sync work.

Run it with ``python examples/dispatchers.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading

from pirn_like import KnotConfig, LocalDispatcher, Map, Tapestry, ThreadDispatcher, knot

THREADS: set[str] = set()
LOCK = threading.Lock()
IN_FLIGHT = {"now": 0, "peak": 0}


@knot
async def chunks() -> list[bytes]:
    return [bytes([i]) * 200_000 for i in range(16)]


@knot
def checksum(chunk: bytes) -> str:
    """A plain (sync) function: CPU-bound, so it runs in a worker thread."""
    with LOCK:
        THREADS.add(threading.current_thread().name)
        IN_FLIGHT["now"] += 1
        IN_FLIGHT["peak"] = max(IN_FLIGHT["peak"], IN_FLIGHT["now"])
    digest = chunk
    for _ in range(20):
        digest = hashlib.sha256(digest).digest()
    with LOCK:
        IN_FLIGHT["now"] -= 1
    return digest.hex()[:12]


@knot
async def count(items: list[str]) -> int:
    """An async knot stays in the event loop, whatever the dispatcher."""
    assert threading.current_thread() is threading.main_thread()
    return len(items)


async def main() -> None:
    # At most eight sync knots (or Map items) run at once, on threads of this dispatcher.
    with Tapestry(dispatcher=ThreadDispatcher(max_workers=8)) as t:
        sums = Map(
            over=chunks(_config=KnotConfig(id="chunks")),
            each=checksum,
            _config=KnotConfig(id="sums"),
        )
        count(items=sums, _config=KnotConfig(id="count"))

    result = await t.run()
    print("checksums:", result.outputs["count"], "first:", result.outputs["sums"][0])
    print(
        "dispatcher:",
        result.dispatcher,
        "| recorded per knot:",
        result.lineage_for("sums[0]").dispatcher,
    )
    print("ran off the main thread:", "MainThread" not in THREADS)
    assert IN_FLIGHT["peak"] <= 8
    print("at most 8 at once:", IN_FLIGHT["peak"] <= 8)

    # A dispatcher can also be chosen per run.
    again = await t.run(dispatcher=LocalDispatcher())
    print("per-run override:", again.dispatcher, again.outputs["sums"] == result.outputs["sums"])


if __name__ == "__main__":
    asyncio.run(main())
