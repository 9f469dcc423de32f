"""DaskDispatcher: every knot runs as a task on a real local Dask cluster (asyncio only).

Knots report their worker's pid over a TCP connection they hold open until they end
(``_dispatch_knots.Reporter``), so a test learns a worker's pid as an event and sees
end-of-stream the moment that worker dies or the knot ends.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import distributed
import pytest
from _dispatch_checks import (
    assert_local_only_error,
    assert_remote_value_error,
    check_killed_worker_is_retried,
    check_knots_run_remotely,
    check_large_values_travel_by_reference,
    check_retry_policy_retries,
    run_failing_knots,
    run_killing_the_worker,
)
from _dispatch_knots import (
    accept_reporter,
    add,
    hold,
    listening,
    mark,
    process_exists,
    scheduler_keys,
)
from distributed.core import Status

from pirn_like import (
    ClosedResourceError,
    Err,
    KnotConfig,
    MissingExtraError,
    RunRequest,
    RunResult,
    Tapestry,
)
from pirn_like.dispatchers._remote import RemoteOptions
from pirn_like.engine.dask_dispatcher import DaskDispatcher
from pirn_like.protocols import KnotCall

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("dask")]


@pytest.fixture
def anyio_backend() -> str:
    """Dask's asynchronous client runs on asyncio."""
    return "asyncio"


async def test_knots_run_on_dask_workers_and_lineage_names_the_dispatcher(
    dask_scheduler: str,
) -> None:
    await check_knots_run_remotely(DaskDispatcher(dask_scheduler), "DaskDispatcher")


async def test_knot_failure_comes_back_with_remote_type_message_and_traceback(
    dask_scheduler: str,
) -> None:
    result = await run_failing_knots(DaskDispatcher(dask_scheduler), unimportable=True)
    boom = result.result("boom")
    assert isinstance(boom, Err)
    assert_remote_value_error(boom.record)
    assert_local_only_error(result.result("odd"))


async def test_retry_policy_retries_a_remote_knot(dask_scheduler: str, tmp_path: Path) -> None:
    await check_retry_policy_retries(DaskDispatcher(dask_scheduler), tmp_path)


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


async def test_a_cancelled_task_that_waits_for_a_worker_is_dropped_by_the_scheduler(
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
        # Whether the dropped task still ran is up to Dask (a task already handed to a
        # worker may start): not asserted here, and documented as such.


async def test_killed_worker_fails_the_knot_with_worker_lost(
    dask_scheduler: str, tmp_path: Path
) -> None:
    record = await run_killing_the_worker(DaskDispatcher(dask_scheduler), tmp_path, deadline=60)
    assert "worker dask running knot 'victim' of run" in record.message
    assert "died:" in record.message


async def test_killed_worker_is_retried_per_policy(dask_scheduler: str, tmp_path: Path) -> None:
    await check_killed_worker_is_retried(DaskDispatcher(dask_scheduler), tmp_path, deadline=60)


async def test_large_values_travel_by_reference(dask_scheduler: str, tmp_path: Path) -> None:
    def make(store_url: str) -> DaskDispatcher:
        return DaskDispatcher(dask_scheduler, options=RemoteOptions(data_store_url=store_url))

    # 2 MiB of float64
    await check_large_values_travel_by_reference(make, tmp_path, n=1 << 18)


async def test_a_given_client_is_used_and_left_open(dask_scheduler: str) -> None:
    client: Any = await distributed.Client(dask_scheduler, asynchronous=True)
    try:
        async with Tapestry(dispatcher=DaskDispatcher(client=client)) as t:
            add(a=1, b=2, _config=KnotConfig(id="sum"))
            with anyio.fail_after(30):
                result = await t.run()
        assert result.outputs["sum"] == 3
        assert client.status == "running"
        assert client.scheduler_comm.interval == 0.01  # the caller's settings, untouched
    finally:
        await client.close()


async def test_its_own_client_sends_to_the_scheduler_without_waiting_ten_ms(
    dask_scheduler: str,
) -> None:
    # Each knot is a submit right after a release: Dask's 10 ms batching would hold it.
    async with DaskDispatcher(dask_scheduler) as dispatcher:
        assert dispatcher.client.scheduler_comm.interval == 0.001


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
