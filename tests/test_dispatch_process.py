"""ProcessDispatcher: every knot runs in a local worker process (asyncio and trio).

Knots report their worker's pid over a TCP connection they hold open until they end
(``_dispatch_knots.Reporter``), so a test learns a worker's pid as an event and sees
end-of-stream the moment that worker dies.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import anyio
import anyio.abc
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
    listening,
    process_exists,
    report_then_mark,
    run_alongside,
)

from pirn_like import (
    ClosedResourceError,
    Err,
    KnotConfig,
    MissingExtraError,
    RunRequest,
    RunStatus,
    Tapestry,
)
from pirn_like.dispatchers._process import ProcessDispatcher
from pirn_like.dispatchers._remote import RemoteOptions
from pirn_like.protocols import KnotCall

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("process")]


async def test_knots_run_in_worker_processes_and_lineage_names_the_dispatcher() -> None:
    await check_knots_run_remotely(ProcessDispatcher(max_workers=2), "ProcessDispatcher")


async def test_code_can_travel_by_reference() -> None:
    dispatcher = ProcessDispatcher(1, options=RemoteOptions(code="reference"))
    async with Tapestry(dispatcher=dispatcher) as t:
        add(a=20, b=22, _config=KnotConfig(id="sum"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["sum"] == 42


async def test_knot_failure_comes_back_with_remote_type_message_and_traceback() -> None:
    result = await run_failing_knots(ProcessDispatcher(2), unimportable=True)
    boom = result.result("boom")
    assert isinstance(boom, Err)
    assert_remote_value_error(boom.record)
    assert assert_local_only_error(result.result("odd")).message == "odd one"


async def test_retry_policy_retries_a_remote_knot(tmp_path: Path) -> None:
    await check_retry_policy_retries(ProcessDispatcher(1), tmp_path)


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
    record = await run_killing_the_worker(ProcessDispatcher(1), tmp_path)
    assert "running knot 'victim' of run" in record.message
    assert "died:" in record.message


async def test_killed_worker_is_retried_per_policy(tmp_path: Path) -> None:
    await check_killed_worker_is_retried(ProcessDispatcher(1), tmp_path)


async def test_large_values_travel_by_reference(tmp_path: Path) -> None:
    def make(store_url: str) -> ProcessDispatcher:
        return ProcessDispatcher(2, options=RemoteOptions(data_store_url=store_url))

    # 2 MiB of float64
    await check_large_values_travel_by_reference(make, tmp_path, n=1 << 18)


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
