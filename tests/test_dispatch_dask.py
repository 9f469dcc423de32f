"""DaskDispatcher: every knot runs as a task on a real local Dask cluster (asyncio only).

Knots report their worker's pid over a TCP connection they hold open until they end
(``_dispatch_knots.Reporter``), so a test learns a worker's pid as an event and sees
end-of-stream the moment that worker dies or the knot ends.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import distributed
import pytest
from _dispatch_knots import (
    accept_reporter,
    add,
    array_total,
    async_pid,
    big_array,
    die_on_first_attempt,
    fail_unimportable,
    fail_with,
    flaky,
    hold,
    kill_reporting_worker,
    listening,
    mark,
    process_exists,
    run_alongside,
    scheduler_keys,
)
from distributed.core import Status

from pirn_like import (
    ClosedResourceError,
    Err,
    KnotConfig,
    LocalDiskDataStore,
    MissingExtraError,
    Ok,
    RetryPolicy,
    RunRequest,
    RunResult,
    Tapestry,
    WorkerLostError,
)
from pirn_like.dispatchers._remote import RemoteOptions
from pirn_like.engine.dask_dispatcher import DaskDispatcher
from pirn_like.protocols import KnotCall

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("dask")]

_NO_RETRY_DELAY = {"initial_delay": 0, "jitter": 0}


@pytest.fixture
def anyio_backend() -> str:
    """Dask's asynchronous client runs on asyncio."""
    return "asyncio"


async def test_knots_run_on_dask_workers_and_lineage_names_the_dispatcher(
    dask_scheduler: str,
) -> None:
    dispatcher = DaskDispatcher(dask_scheduler)
    async with Tapestry(dispatcher=dispatcher) as t:
        total = add(a=2, b=3, _config=KnotConfig(id="sum"))
        async_pid(x=total, _config=KnotConfig(id="double"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.succeeded
    assert result.outputs["sum"] == 5
    doubled, worker_pid = result.outputs["double"]
    assert doubled == 10
    assert worker_pid != os.getpid()
    assert {rec.dispatcher for rec in result.lineage} == {"DaskDispatcher"} == {dispatcher.name}


async def test_knot_failure_comes_back_with_remote_type_message_and_traceback(
    dask_scheduler: str,
) -> None:
    async with Tapestry(dispatcher=DaskDispatcher(dask_scheduler)) as t:
        fail_with(message="bad row 7", _config=KnotConfig(id="boom"))
        fail_unimportable(message="odd one", _config=KnotConfig(id="odd"))
        with anyio.fail_after(30):
            result = await t.run()
    boom, odd = result.result("boom"), result.result("odd")
    assert isinstance(boom, Err)
    assert boom.record.type == "builtins.ValueError"
    assert boom.record.message == "bad row 7"
    assert "remote traceback (worker " in boom.record.traceback
    assert "raise ValueError(message)" in boom.record.traceback
    assert isinstance(odd, Err)
    assert odd.record.type == "_dispatch_knots.plain_fail_unimportable.<locals>.LocalOnlyError"
    assert "raise LocalOnlyError(message)" in odd.record.traceback


async def test_retry_policy_retries_a_remote_knot(dask_scheduler: str, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=3, retry_on=(ConnectionError,), **_NO_RETRY_DELAY)
    async with Tapestry(dispatcher=DaskDispatcher(dask_scheduler)) as t:
        flaky(counter=str(counter), failures=2, _config=KnotConfig(id="flaky", retry=policy))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["flaky"] == 3
    assert result.lineage_for("flaky").attempts == 3
    assert counter.read_text() == "xxx"


async def test_timeout_fails_the_knot_but_a_running_task_runs_on(dask_scheduler: str) -> None:
    """Dask cannot interrupt a task running on a worker thread: the knot fails at its
    deadline, and the task keeps its worker busy until it ends by itself."""
    async with (
        listening() as (port, listener),
        Tapestry(dispatcher=DaskDispatcher(dask_scheduler)) as t,
    ):
        # Long enough for a worker to unpickle the knot and import it under load.
        hold(port=port, _config=KnotConfig(id="stuck", timeout=3))
        results: list[RunResult] = []
        finished = anyio.Event()

        async def run() -> None:
            results.append(await t.run())
            finished.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                reporter = await accept_reporter(listener)
                pid = await reporter.pid()
                await finished.wait()
                assert process_exists(pid)  # the worker, still running the task
                await reporter.stream.aclose()  # now let the task end
    (result,) = results
    failure = result.result("stuck")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.KnotTimeoutError"


async def test_a_cancelled_task_that_waits_for_a_worker_never_runs(
    dask_scheduler: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    dispatcher = DaskDispatcher(dask_scheduler)
    async with listening() as (port, listener):
        busy = Tapestry(dispatcher=dispatcher)
        hold(port=port, _config=KnotConfig(id="h1"), tapestry=busy)
        hold(port=port, _config=KnotConfig(id="h2"), tapestry=busy)
        waiting = Tapestry(dispatcher=dispatcher)
        mark(marker=str(marker), _config=KnotConfig(id="late", timeout=0.5), tapestry=waiting)
        async with busy, waiting:
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(busy.run)
                    # Both worker threads are taken once both holders have reported.
                    holders = [await accept_reporter(listener) for _ in range(2)]
                    result = await waiting.run(RunRequest(run_id="run-queued"))
                    keys: list[str] = await dispatcher.client.run_on_scheduler(scheduler_keys)
                    for holder in holders:
                        await holder.stream.aclose()
                    failure = result.result("late")
                    assert isinstance(failure, Err)
                    assert failure.record.type == "pirn_like.KnotTimeoutError"
                    assert not [key for key in keys if "run-queued" in key]  # dropped
        assert not marker.exists()


async def test_killed_worker_fails_the_knot_with_worker_lost(
    dask_scheduler: str, tmp_path: Path
) -> None:
    async with (
        listening() as (port, listener),
        Tapestry(dispatcher=DaskDispatcher(dask_scheduler)) as t,
    ):
        die_on_first_attempt(
            port=port, counter=str(tmp_path / "attempts"), _config=KnotConfig(id="victim")
        )
        with anyio.fail_after(60):
            result = await run_alongside(t, partial(kill_reporting_worker, listener))
    failure = result.result("victim")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.WorkerLostError"
    assert "worker dask running knot 'victim' of run" in failure.record.message
    assert "died:" in failure.record.message


async def test_killed_worker_is_retried_per_policy(dask_scheduler: str, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=2, retry_on=(WorkerLostError,), **_NO_RETRY_DELAY)
    async with (
        listening() as (port, listener),
        Tapestry(dispatcher=DaskDispatcher(dask_scheduler)) as t,
    ):
        die_on_first_attempt(
            port=port, counter=str(counter), _config=KnotConfig(id="victim", retry=policy)
        )
        with anyio.fail_after(60):
            result = await run_alongside(t, partial(kill_reporting_worker, listener))
    assert result.result("victim") == Ok("survived")
    assert result.lineage_for("victim").attempts == 2
    assert counter.read_text() == "xx"


async def test_large_values_travel_by_reference(dask_scheduler: str, tmp_path: Path) -> None:
    store = tmp_path / "values"
    options = RemoteOptions(data_store_url=store.as_uri())
    n = 1 << 18  # 2 MiB of float64: over the 1 MiB by-reference threshold
    async with Tapestry(dispatcher=DaskDispatcher(dask_scheduler, options=options)) as t:
        values = big_array(n=n, _config=KnotConfig(id="values"))
        array_total(values=values, _config=KnotConfig(id="total"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["total"] == n * (n - 1) / 2
    output_hash = result.lineage_for("values").output_hash
    assert output_hash is not None
    async with LocalDiskDataStore(store) as values_store:
        assert await values_store.contains(output_hash)


async def test_a_given_client_is_used_and_left_open(dask_scheduler: str) -> None:
    client: Any = await distributed.Client(dask_scheduler, asynchronous=True)
    try:
        async with Tapestry(dispatcher=DaskDispatcher(client=client)) as t:
            add(a=1, b=2, _config=KnotConfig(id="sum"))
            with anyio.fail_after(30):
                result = await t.run()
        assert result.outputs["sum"] == 3
        assert client.status == "running"
    finally:
        await client.close()


async def test_local_starts_its_own_cluster_and_stops_it() -> None:
    dispatcher = DaskDispatcher.local(n_workers=1, processes=False)
    async with Tapestry(dispatcher=dispatcher) as t:
        add(a=1, b=2, _config=KnotConfig(id="sum"))
        with anyio.fail_after(60):
            result = await t.run()
        client: Any = dispatcher.client
        assert client.cluster.status is Status.running
    assert result.outputs["sum"] == 3
    assert client.status == "closed"
    assert client.cluster.status is Status.closed


async def test_using_it_unopened_or_after_close_is_refused(dask_scheduler: str) -> None:
    dispatcher = DaskDispatcher(dask_scheduler)
    call = KnotCall("r", "k", add.fn, {"a": 1, "b": 2}, False)  # type: ignore[arg-type]
    with pytest.raises(ClosedResourceError, match="is not open"):
        await dispatcher.run(call)
    async with dispatcher:
        with anyio.fail_after(30):
            assert await dispatcher.run(call) == 3
    with pytest.raises(ClosedResourceError, match="was closed"):
        await dispatcher.run(call)
    with pytest.raises(ValueError, match=r"either a scheduler address or a client"):
        DaskDispatcher()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_opening_says_it_needs_asyncio(dask_scheduler: str) -> None:
    with pytest.raises(RuntimeError, match="asyncio only"):
        async with DaskDispatcher(dask_scheduler):
            pass


async def test_without_distributed_opening_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'pirn-like\[dask\]'"):
        async with DaskDispatcher("tcp://127.0.0.1:1"):
            pass
