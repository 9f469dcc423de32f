"""ProcessDispatcher: every knot runs in a local worker process (asyncio and trio).

Knots report their worker's pid over a TCP connection they hold open until they end
(``_dispatch_knots.Reporter``), so a test learns a worker's pid as an event and sees
end-of-stream the moment that worker dies.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import anyio
import anyio.abc
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
    kill_reporting_worker,
    listening,
    process_exists,
    report_then_mark,
    run_alongside,
)

from pirn_like import (
    ClosedResourceError,
    Err,
    KnotConfig,
    LocalDiskDataStore,
    MissingExtraError,
    Ok,
    RetryPolicy,
    RunRequest,
    RunStatus,
    Tapestry,
    WorkerLostError,
)
from pirn_like.dispatchers._process import ProcessDispatcher
from pirn_like.dispatchers._remote import RemoteOptions
from pirn_like.protocols import KnotCall

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("process")]

_NO_RETRY_DELAY = {"initial_delay": 0, "jitter": 0}


async def test_knots_run_in_worker_processes_and_lineage_names_the_dispatcher() -> None:
    dispatcher = ProcessDispatcher(max_workers=2)
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
    assert {rec.dispatcher for rec in result.lineage} == {"ProcessDispatcher"} == {dispatcher.name}


async def test_code_can_travel_by_reference() -> None:
    dispatcher = ProcessDispatcher(1, options=RemoteOptions(code="reference"))
    async with Tapestry(dispatcher=dispatcher) as t:
        add(a=20, b=22, _config=KnotConfig(id="sum"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["sum"] == 42


async def test_knot_failure_comes_back_with_remote_type_message_and_traceback() -> None:
    async with Tapestry(dispatcher=ProcessDispatcher(2)) as t:
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
    assert odd.record.message == "odd one"
    assert "raise LocalOnlyError(message)" in odd.record.traceback


async def test_retry_policy_retries_a_remote_knot(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=3, retry_on=(ConnectionError,), **_NO_RETRY_DELAY)
    async with Tapestry(dispatcher=ProcessDispatcher(1)) as t:
        flaky(counter=str(counter), failures=2, _config=KnotConfig(id="flaky", retry=policy))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["flaky"] == 3
    assert result.lineage_for("flaky").attempts == 3
    assert counter.read_text() == "xxx"


async def test_timeout_kills_the_worker_process(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    async with listening() as (port, listener), Tapestry(dispatcher=ProcessDispatcher(1)) as t:
        report_then_mark(
            port=port,
            seconds=60,
            marker=str(marker),
            # Long enough for a fresh worker to start and import the knot under load.
            _config=KnotConfig(id="slow", timeout=3),
        )
        pids: list[int] = []
        with anyio.fail_after(30):
            result = await run_alongside(t, partial(_watch_worker, listener, pids))
    failure = result.result("slow")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.KnotTimeoutError"
    (pid,) = pids
    assert not process_exists(pid)
    assert not marker.exists()


async def _watch_worker(listener: anyio.abc.SocketListener, pids: list[int]) -> None:
    reporter = await accept_reporter(listener)
    pids.append(await reporter.pid())
    await reporter.closed()


async def test_cancelled_run_kills_the_worker_process(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    async with listening() as (port, listener), Tapestry(dispatcher=ProcessDispatcher(1)) as t:
        report_then_mark(port=port, seconds=60, marker=str(marker), _config=KnotConfig(id="s"))
        pids: list[int] = []
        with anyio.fail_after(30), anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(t.run, RunRequest(run_id="run-cancel"))
                reporter = await accept_reporter(listener)
                pids.append(await reporter.pid())
                scope.cancel()
        run = await t.history.get_run("run-cancel")
    assert scope.cancelled_caught
    # anyio kills and reaps the worker before the cancellation propagates.
    (pid,) = pids
    assert not process_exists(pid)
    assert not marker.exists()
    assert run is not None
    assert run.status is RunStatus.CANCELLED


async def test_killed_worker_fails_the_knot_with_worker_lost(tmp_path: Path) -> None:
    async with listening() as (port, listener), Tapestry(dispatcher=ProcessDispatcher(1)) as t:
        die_on_first_attempt(
            port=port, counter=str(tmp_path / "attempts"), _config=KnotConfig(id="victim")
        )
        with anyio.fail_after(30):
            result = await run_alongside(t, partial(kill_reporting_worker, listener))
    failure = result.result("victim")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.WorkerLostError"
    assert "running knot 'victim' of run" in failure.record.message
    assert "died:" in failure.record.message


async def test_killed_worker_is_retried_per_policy(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=2, retry_on=(WorkerLostError,), **_NO_RETRY_DELAY)
    async with listening() as (port, listener), Tapestry(dispatcher=ProcessDispatcher(1)) as t:
        die_on_first_attempt(
            port=port, counter=str(counter), _config=KnotConfig(id="victim", retry=policy)
        )
        with anyio.fail_after(30):
            result = await run_alongside(t, partial(kill_reporting_worker, listener))
    assert result.result("victim") == Ok("survived")
    assert result.lineage_for("victim").attempts == 2
    assert counter.read_text() == "xx"


async def test_large_values_travel_by_reference(tmp_path: Path) -> None:
    store = tmp_path / "values"
    dispatcher = ProcessDispatcher(2, options=RemoteOptions(data_store_url=store.as_uri()))
    n = 1 << 18  # 2 MiB of float64: over the 1 MiB by-reference threshold
    async with Tapestry(dispatcher=dispatcher) as t:
        values = big_array(n=n, _config=KnotConfig(id="values"))
        array_total(values=values, _config=KnotConfig(id="total"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["total"] == n * (n - 1) / 2
    output_hash = result.lineage_for("values").output_hash
    assert output_hash is not None
    # The array went worker -> caller -> worker through the store, filed under its hash.
    async with LocalDiskDataStore(store) as values_store:
        assert await values_store.contains(output_hash)


async def test_using_it_unopened_or_after_close_is_refused() -> None:
    dispatcher = ProcessDispatcher(1)
    call = KnotCall("r", "k", add.fn, {"a": 1, "b": 2}, False)  # type: ignore[arg-type]
    with pytest.raises(ClosedResourceError, match="is not open"):
        await dispatcher.run(call)
    async with dispatcher:
        with anyio.fail_after(30):
            assert await dispatcher.run(call) == 3
    with pytest.raises(ClosedResourceError, match="was closed"):
        await dispatcher.run(call)
    with pytest.raises(ClosedResourceError, match="was closed"):
        await dispatcher.__aenter__()
    with pytest.raises(ValueError, match="at least 1"):
        ProcessDispatcher(0)


async def test_without_cloudpickle_opening_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'pirn-like\[process\]'"):
        async with ProcessDispatcher(1):
            pass
    # Code by reference needs no cloudpickle.
    async with ProcessDispatcher(1, options=RemoteOptions(code="reference")):
        pass
