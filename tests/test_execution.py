"""Scheduling, retries, timeouts, limits, cancellation and concurrent runs."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from pirn_like import (
    Err,
    ErrorPolicy,
    KnotConfig,
    Map,
    Ok,
    Outcome,
    Parameter,
    RetryPolicy,
    RunRequest,
    RunStatus,
    Skipped,
    SkipReason,
    Tapestry,
    ThreadDispatcher,
    knot,
)

pytestmark = pytest.mark.anyio


async def test_fast_branch_does_not_wait_for_slow_sibling() -> None:
    """The slow knot waits for an event only the fast branch's grandchild sets.

    Under wave scheduling the grandchild would wait for the slow knot: deadlock.
    """
    fast_done = anyio.Event()

    @knot
    async def slow() -> str:
        await fast_done.wait()
        return "slow"

    @knot
    async def fast() -> str:
        return "fast"

    @knot
    async def fast_child(v: str) -> str:
        return v + "-child"

    @knot
    async def fast_grandchild(v: str) -> str:
        fast_done.set()
        return v + "-grand"

    with Tapestry() as t:
        slow(_config=KnotConfig(id="slow"))
        f = fast(_config=KnotConfig(id="fast"))
        c = fast_child(v=f, _config=KnotConfig(id="child"))
        fast_grandchild(v=c, _config=KnotConfig(id="grand"))
    with anyio.fail_after(5):
        result = await t.run()
    assert result.outputs["grand"] == "fast-child-grand"
    assert result.outputs["slow"] == "slow"


async def test_knot_starts_when_its_own_parents_are_done() -> None:
    gate = anyio.Event()
    order: list[str] = []

    @knot
    async def blocked() -> int:
        await gate.wait()
        order.append("blocked")
        return 1

    @knot
    async def quick() -> int:
        return 2

    @knot
    async def uses_quick(v: int) -> int:
        order.append("uses_quick")
        gate.set()
        return v

    @knot
    async def join(a: int, b: int) -> int:
        order.append("join")
        return a + b

    with Tapestry() as t:
        b = blocked(_config=KnotConfig(id="blocked"))
        q = uses_quick(v=quick(_config=KnotConfig(id="quick")), _config=KnotConfig(id="uq"))
        join(a=b, b=q, _config=KnotConfig(id="join"))
    with anyio.fail_after(5):
        result = await t.run()
    assert order == ["uses_quick", "blocked", "join"]
    assert result.outputs["join"] == 3


async def test_retry_until_success_records_attempts() -> None:
    calls = 0

    @knot
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("try again")
        return "ok"

    policy = RetryPolicy(attempts=5, initial_delay=0, jitter=0, retry_on=(ConnectionError,))
    with Tapestry() as t:
        flaky(_config=KnotConfig(id="flaky", retry=policy))
    result = await t.run()
    assert result.outputs["flaky"] == "ok"
    assert result.lineage_for("flaky").attempts == 3


async def test_retry_gives_up_and_only_retries_listed_types() -> None:
    calls = {"conn": 0, "value": 0}

    @knot
    async def always(kind: str) -> str:
        calls[kind] += 1
        raise ConnectionError("down") if kind == "conn" else ValueError("bad")

    policy = RetryPolicy(attempts=3, initial_delay=0, jitter=0, retry_on=(ConnectionError,))
    with Tapestry() as t:
        always(kind="conn", _config=KnotConfig(id="conn", retry=policy))
        always(kind="value", _config=KnotConfig(id="value", retry=policy))
    result = await t.run()
    assert calls == {"conn": 3, "value": 1}
    assert isinstance(result.result("conn"), Err)
    assert result.lineage_for("conn").attempts == 3
    assert result.lineage_for("value").attempts == 1


async def test_async_knot_is_cancelled_at_its_deadline() -> None:
    cancelled = anyio.Event()

    @knot
    async def hangs() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with Tapestry() as t:
        hangs(_config=KnotConfig(id="hangs", timeout=0.05))
    result = await t.run()
    assert cancelled.is_set()
    err = result.result("hangs")
    assert isinstance(err, Err)
    assert err.record.type.endswith("KnotTimeoutError")
    assert "timed out after 0.05s" in err.record.message


async def test_sync_knot_timeout_is_recorded_and_late_result_discarded() -> None:
    release = threading.Event()
    finished = threading.Event()

    @knot
    def blocks() -> str:
        release.wait(10)
        finished.set()
        return "late"

    with Tapestry() as t:
        blocks(_config=KnotConfig(id="blocks", timeout=0.05))
    result = await t.run()
    err = result.result("blocks")
    assert isinstance(err, Err)
    assert "cannot be stopped" in err.record.message
    assert "blocks" not in result.outputs
    release.set()
    assert await anyio.to_thread.run_sync(finished.wait, 5)
    assert isinstance(result.result("blocks"), Err)


async def _max_in_flight(t: Tapestry, counter: dict[str, int], **run_kwargs: Any) -> int:
    await t.run(**run_kwargs)
    return counter["max"]


def _tracking_knot(counter: dict[str, int]) -> Any:
    @knot
    async def work(item: int) -> int:
        counter["now"] += 1
        counter["max"] = max(counter["max"], counter["now"])
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        counter["now"] -= 1
        return item

    return work


async def test_per_knot_concurrency_limit_bounds_map_items() -> None:
    counter = {"now": 0, "max": 0}
    work = _tracking_knot(counter)

    @knot
    async def items() -> list[int]:
        return list(range(50))

    with Tapestry() as t:
        Map(
            over=items(_config=KnotConfig(id="items")),
            each=work,
            _config=KnotConfig(id="m", max_concurrency=3),
        )
    assert await _max_in_flight(t, counter) == 3


async def test_global_and_tag_limits() -> None:
    counter = {"now": 0, "max": 0}
    work = _tracking_knot(counter)
    with Tapestry() as t:
        for i in range(20):
            work(item=i, _config=KnotConfig(id=f"w{i}", tags=frozenset({"db"})))
    assert await _max_in_flight(t, counter, max_concurrency=4) == 4
    counter.update(now=0, max=0)
    assert await _max_in_flight(t, counter, tag_limits={"db": 2}) == 2
    counter.update(now=0, max=0)
    assert await _max_in_flight(t, counter) > 4


async def test_cancelling_run_cancels_knots_records_them_and_reraises() -> None:
    started = anyio.Event()

    @knot
    async def forever() -> None:
        started.set()
        await anyio.sleep_forever()

    @knot
    async def quick() -> int:
        return 1

    with Tapestry() as t:
        forever(_config=KnotConfig(id="forever"))
        quick(_config=KnotConfig(id="quick"))
    run_ids: list[str] = []
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def go() -> None:
                await t.run(RunRequest(run_id="run-cancel-me"))

            tg.start_soon(go)
            await started.wait()
            run_ids.append("run-cancel-me")
            scope.cancel()
    assert scope.cancelled_caught
    run = await t.history.get_run("run-cancel-me")
    assert run is not None
    assert run.status is RunStatus.CANCELLED
    lineage = {r.knot_id: r for r in await t.history.get_lineage("run-cancel-me")}
    assert lineage["forever"].outcome is Outcome.CANCELLED
    assert lineage["quick"].outcome is Outcome.OK


async def test_run_timeout_cancels_and_reports_timed_out() -> None:
    @knot
    async def forever() -> None:
        await anyio.sleep_forever()

    with Tapestry() as t:
        forever(_config=KnotConfig(id="forever"))
    result = await t.run(timeout=0.05)
    assert result.status is RunStatus.TIMED_OUT
    assert not result.succeeded
    assert result.lineage_for("forever").outcome is Outcome.CANCELLED
    run = await t.history.get_run(result.run_id)
    assert run is not None
    assert run.status is RunStatus.TIMED_OUT


async def test_hundred_concurrent_runs_share_no_state() -> None:
    @knot
    async def square(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * x

    @knot
    async def plus(a: int, b: int) -> int:
        return a + b

    with Tapestry() as t:
        x = Parameter("x", int)
        s = square(x=x, _config=KnotConfig(id="s"))
        plus(a=s, b=x, _config=KnotConfig(id="out"))
    results: dict[int, Any] = {}

    async def one(i: int) -> None:
        results[i] = await t.run(RunRequest(parameters={"x": i}))

    async with anyio.create_task_group() as tg:
        for i in range(100):
            tg.start_soon(one, i)
    assert all(results[i].outputs["out"] == i * i + i for i in range(100))
    assert len({r.run_id for r in results.values()}) == 100
    assert all(len(r.lineage) == 3 for r in results.values())
    assert len(await t.history.list_runs(limit=1000)) == 100


async def test_hundred_thousand_item_map_runs() -> None:
    @knot
    def numbers() -> list[int]:
        return list(range(100_000))

    @knot
    async def bump(n: int) -> int:
        return n + 1

    with Tapestry() as t:
        Map(over=numbers(_config=KnotConfig(id="numbers")), each=bump, _config=KnotConfig(id="m"))
    result = await t.run()
    assert result.succeeded
    out = result.outputs["m"]
    assert len(out) == 100_000
    assert out[0] == 1
    assert out[-1] == 100_000
    assert len(result.lineage) == 100_002


async def test_map_item_failure_fails_the_map_naming_items() -> None:
    @knot
    async def items() -> list[int]:
        return [1, 0, 2, 0]

    @knot
    async def invert(n: int) -> float:
        return 1 / n

    with Tapestry() as t:
        Map(over=items(_config=KnotConfig(id="items")), each=invert, _config=KnotConfig(id="m"))
    result = await t.run()
    err = result.result("m")
    assert isinstance(err, Err)
    assert "2 of 4 items of 'm' did not succeed" in err.record.message
    assert "m[1] err (ZeroDivisionError" in err.record.message
    assert result.lineage_for("m[0]").outcome is Outcome.OK
    assert result.lineage_for("m[3]").outcome is Outcome.ERR


async def test_sync_knots_run_in_threads_and_async_in_the_loop() -> None:
    loop_thread = threading.get_ident()

    @knot
    def sync_knot() -> bool:
        return threading.get_ident() != loop_thread

    @knot
    async def async_knot() -> bool:
        return threading.get_ident() == loop_thread

    with Tapestry(dispatcher=ThreadDispatcher(max_workers=2)) as t:
        sync_knot(_config=KnotConfig(id="s"))
        async_knot(_config=KnotConfig(id="a"))
    result = await t.run()
    assert result.outputs == {"s": True, "a": True}
    assert result.lineage_for("s").dispatcher == "ThreadDispatcher"


async def test_thread_dispatcher_bounds_sync_knots() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    barrier = threading.Barrier(2, timeout=5)

    @knot
    def work(i: int) -> int:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        if i < 2:
            barrier.wait()  # the first two must overlap: proves two workers exist
        with lock:
            state["now"] -= 1
        return i

    with Tapestry(dispatcher=ThreadDispatcher(max_workers=2)) as t:
        for i in range(8):
            work(i=i, _config=KnotConfig(id=f"w{i}"))
    result = await t.run()
    assert result.succeeded
    assert state["max"] == 2


async def test_receive_errors_policy_gets_results() -> None:
    @knot
    async def boom() -> int:
        raise RuntimeError("nope")

    @knot
    async def fine() -> int:
        return 7

    @knot
    async def handler(a: Any, b: Any) -> str:
        assert isinstance(a, Err)
        assert isinstance(b, Ok)
        return f"{a.record.message}/{b.value}"

    with Tapestry() as t:
        handler(
            a=boom(_config=KnotConfig(id="boom")),
            b=fine(_config=KnotConfig(id="fine")),
            _config=KnotConfig(id="h", error_policy=ErrorPolicy.RECEIVE_ERRORS),
        )
    result = await t.run()
    assert result.outputs["h"] == "nope/7"
    assert "a" in result.lineage_for("h").parent_input_hashes


async def test_knot_may_return_skipped() -> None:
    @knot
    async def opt_out() -> Any:
        return Skipped(SkipReason.BY_KNOT, "nothing to do")

    with Tapestry() as t:
        opt_out(_config=KnotConfig(id="o"))
    result = await t.run()
    assert result.skipped == ["o"]
    assert result.lineage_for("o").skip_detail == "nothing to do"
    assert result.succeeded


async def test_lineage_reaches_history_while_the_run_is_in_progress() -> None:
    """A crash mid-run must not lose what finished: lineage is flushed in batches."""
    from collections.abc import Sequence

    from pirn_like import InMemoryHistory, KnotLineage

    class SignallingHistory(InMemoryHistory):
        def __init__(self) -> None:
            super().__init__()
            self.batch_arrived = anyio.Event()

        async def record_lineage(self, records: Sequence[KnotLineage]) -> None:
            await super().record_lineage(records)
            self.batch_arrived.set()

    release = anyio.Event()

    @knot
    async def quick(i: int) -> int:
        return i

    @knot
    async def waiter(v: int) -> int:
        await release.wait()
        return v

    history = SignallingHistory()
    with Tapestry(history=history) as t:
        first = quick(i=0, _config=KnotConfig(id="q0"))
        for i in range(1, 600):
            quick(i=i, _config=KnotConfig(id=f"q{i}"))
        waiter(v=first, _config=KnotConfig(id="waiter"))

    recorded_mid_run: list[int] = []

    async def watch() -> None:
        with anyio.fail_after(10):
            await history.batch_arrived.wait()
        recorded_mid_run.append(len(await history.get_lineage("run-live")))
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        result = await t.run(RunRequest(run_id="run-live"))
    assert recorded_mid_run[0] >= 512  # the waiter had not finished yet
    assert result.outputs["waiter"] == 0
    assert len(await history.get_lineage("run-live")) == 601
