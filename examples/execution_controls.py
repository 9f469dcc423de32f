"""Retries, timeouts, concurrency limits, run timeouts and cancellation.

Run it with ``python examples/execution_controls.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from pirn_like import (
    Err,
    KnotConfig,
    Map,
    RetryPolicy,
    RunRequest,
    RunStatus,
    Tapestry,
    knot,
)


class Tracker:
    """Counts how many executions are in flight at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def visit(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        for _ in range(3):  # yield, so other ready knots get a chance to start
            await asyncio.sleep(0)
        self.now -= 1


async def retries() -> None:
    calls = 0

    @knot
    async def flaky_fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("connection reset")
        return "payload"

    policy = RetryPolicy(attempts=5, initial_delay=0.01, jitter=0, retry_on=(ConnectionError,))
    with Tapestry() as t:
        flaky_fetch(_config=KnotConfig(id="fetch", retry=policy))
    result = await t.run()
    print(
        "retry:", result.outputs["fetch"], "after", result.lineage_for("fetch").attempts, "attempts"
    )


async def timeouts() -> None:
    never = asyncio.Event()
    release = threading.Event()
    late = threading.Event()

    @knot
    async def waits_forever() -> str:
        await never.wait()
        return "unreachable"

    @knot
    def blocks() -> str:
        release.wait(10)
        late.set()
        return "too late"

    with Tapestry() as t:
        waits_forever(_config=KnotConfig(id="async_slow", timeout=0.1))
        blocks(_config=KnotConfig(id="sync_slow", timeout=0.1))
    result = await t.run()
    messages: dict[str, str] = {}
    for knot_id in ("async_slow", "sync_slow"):
        err = result.result(knot_id)
        assert isinstance(err, Err)
        messages[knot_id] = err.record.message
        print(f"timeout {knot_id}: {err.record.type} | {err.record.message.split(';')[0]}")
    print("sync knot abandoned:", "cannot be stopped" in messages["sync_slow"])
    # The abandoned thread finishes later; its result is discarded.
    release.set()
    await asyncio.to_thread(late.wait, 10)
    print("sync thread finished late; still an error:", isinstance(result.result("sync_slow"), Err))


async def concurrency_limits() -> None:
    tracker = Tracker()

    @knot
    async def work(item: int) -> int:
        await tracker.visit()
        return item

    @knot
    async def items() -> list[int]:
        return list(range(12))

    # Per knot: at most 3 executions of this knot at once (also across map items).
    with Tapestry() as t:
        Map(
            over=items(_config=KnotConfig(id="items")),
            each=work,
            _config=KnotConfig(id="m", max_concurrency=3),
        )
    await t.run()
    assert tracker.peak <= 3
    print("per-knot limit 3, peak:", tracker.peak)

    # Per run and per tag: tag knots, then cap the tag for a run.
    with Tapestry() as t:
        for i in range(8):
            tags = frozenset({"db"}) if i % 2 else frozenset()
            work(item=i, _config=KnotConfig(id=f"w{i}", tags=tags))
    tracker.peak = 0
    await t.run(max_concurrency=2)
    assert tracker.peak <= 2
    print("per-run limit 2, peak:", tracker.peak)

    db_tracker = Tracker()

    @knot
    async def query(n: int) -> int:
        await db_tracker.visit()
        return n

    with Tapestry(tag_limits={"db": 1}) as t:
        for i in range(6):
            query(n=i, _config=KnotConfig(id=f"q{i}", tags=frozenset({"db"})))
    await t.run()
    assert db_tracker.peak == 1
    print("tag 'db' limit 1, peak:", db_tracker.peak)


async def run_timeout_and_cancellation() -> None:
    started = asyncio.Event()

    @knot
    async def endless() -> None:
        started.set()
        await asyncio.Event().wait()

    @knot
    async def quick() -> int:
        return 1

    with Tapestry() as t:
        endless(_config=KnotConfig(id="endless"))
        quick(_config=KnotConfig(id="quick"))

    # A run timeout cancels what is still running and ends the run as timed_out.
    result = await t.run(timeout=0.2)
    print(
        "run timeout:",
        result.status.value,
        "| endless:",
        result.lineage_for("endless").outcome.value,
        "| quick:",
        result.outputs["quick"],
    )

    # Cancelling the task that awaits run() cancels the knots and records the run.
    started.clear()
    task = asyncio.create_task(t.run(RunRequest(run_id="run-to-cancel")))
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    run = await t.history.get_run("run-to-cancel")
    assert run is not None
    assert run.status is RunStatus.CANCELLED
    outcomes = {r.knot_id: r.outcome.value for r in await t.history.get_lineage("run-to-cancel")}
    print("cancelled run:", run.status.value, outcomes)


async def main() -> None:
    await retries()
    await timeouts()
    await concurrency_limits()
    await run_timeout_and_cancellation()


if __name__ == "__main__":
    asyncio.run(main())
