"""RayDispatcher: every knot runs as a Ray task on a real local cluster (asyncio only).

Knots report their worker's pid over a TCP connection they hold open until they end
(``_dispatch_knots.Reporter``), so a test learns a worker's pid as an event, and sees
end-of-stream the moment the worker dies (or finishes, after writing its marker file).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import anyio
import anyio.abc
import numpy as np
import pytest
import ray
from _dispatch_knots import (
    accept_reporter,
    add,
    array_total,
    async_pid,
    big_array,
    die_on_first_attempt,
    fail_with,
    flaky,
    kill_reporting_worker,
    listening,
    report_then_mark,
)

from pirn_like import (
    ClosedResourceError,
    Err,
    KnotConfig,
    KnotId,
    Ok,
    RetryPolicy,
    RunId,
    RunRequest,
    RunResult,
    RunStatus,
    Tapestry,
    WorkerLostError,
    data_store_from_url,
)
from pirn_like.dispatchers._ray import RayDispatcher
from pirn_like.dispatchers._remote import RemoteOptions
from pirn_like.protocols import KnotCall

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.xdist_group("ray"),
    pytest.mark.usefixtures("ray_cluster"),
]

_NO_RETRY_DELAY = {"initial_delay": 0, "jitter": 0}
_TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture
def anyio_backend() -> str:
    """Ray's ObjectRefs are awaited on an asyncio loop."""
    return "asyncio"


async def test_knots_run_on_ray_workers_and_lineage_names_the_dispatcher() -> None:
    dispatcher = RayDispatcher()
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
    assert {rec.dispatcher for rec in result.lineage} == {"RayDispatcher"} == {dispatcher.name}
    # The dispatcher found Ray running, so closing it leaves Ray to its owner.
    assert ray.is_initialized()


async def test_knot_failure_comes_back_with_remote_type_message_and_traceback() -> None:
    async with Tapestry(dispatcher=RayDispatcher()) as t:
        fail_with(message="bad row 7", _config=KnotConfig(id="boom"))
        with anyio.fail_after(30):
            result = await t.run()
    assert isinstance(result.result("boom"), Err)
    (record,) = result.exceptions
    assert record.type == "builtins.ValueError"
    assert record.message == "bad row 7"
    assert "remote traceback (worker " in record.traceback
    assert "_dispatch_knots.py" in record.traceback
    assert "raise ValueError(message)" in record.traceback
    assert result.lineage_for("boom").dispatcher == "RayDispatcher"


async def test_retry_policy_retries_a_remote_knot(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=3, retry_on=(ConnectionError,), **_NO_RETRY_DELAY)
    async with Tapestry(dispatcher=RayDispatcher()) as t:
        flaky(counter=str(counter), failures=2, _config=KnotConfig(id="flaky", retry=policy))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["flaky"] == 3
    assert result.lineage_for("flaky").attempts == 3
    assert counter.read_text() == "xxx"  # Ray itself retried nothing


async def test_timeout_kills_the_remote_knot(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    async with listening() as (port, listener), Tapestry(dispatcher=RayDispatcher()) as t:
        report_then_mark(
            port=port,
            seconds=20,
            marker=str(marker),
            # Long enough for a fresh worker to start and import the knot under load.
            _config=KnotConfig(id="slow", timeout=5),
        )
        with anyio.fail_after(15):
            result = await t.run()
            reporter = await accept_reporter(listener)
            await reporter.pid()
            await reporter.closed()  # its worker is gone, long before the knot would end
    failure = result.result("slow")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.KnotTimeoutError"
    assert not marker.exists()


async def test_cancelled_run_kills_the_remote_knot(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    async with listening() as (port, listener), Tapestry(dispatcher=RayDispatcher()) as t:
        report_then_mark(port=port, seconds=20, marker=str(marker), _config=KnotConfig(id="s"))
        run_scope = anyio.CancelScope()

        async def run() -> None:
            with run_scope:
                await t.run(RunRequest(run_id="run-ray-cancel"))

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                reporter = await accept_reporter(listener)
                await reporter.pid()
                run_scope.cancel()
                await reporter.closed()
    assert run_scope.cancelled_caught
    assert not marker.exists()
    record = await t.history.get_run("run-ray-cancel")
    assert record is not None
    assert record.status is RunStatus.CANCELLED


async def test_killed_worker_fails_the_knot_with_worker_lost(tmp_path: Path) -> None:
    async with listening() as (port, listener), Tapestry(dispatcher=RayDispatcher()) as t:
        die_on_first_attempt(
            port=port, counter=str(tmp_path / "attempts"), _config=KnotConfig(id="victim")
        )
        with anyio.fail_after(30):
            result = await _run_killing_the_worker(t, listener)
    failure = result.result("victim")
    assert isinstance(failure, Err)
    record = failure.record
    assert record.type == "pirn_like.WorkerLostError"
    assert "running knot 'victim'" in record.message
    assert "died: WorkerCrashedError" in record.message


async def test_killed_worker_is_retried_per_policy(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=2, retry_on=(WorkerLostError,), **_NO_RETRY_DELAY)
    async with listening() as (port, listener), Tapestry(dispatcher=RayDispatcher()) as t:
        die_on_first_attempt(
            port=port, counter=str(counter), _config=KnotConfig(id="victim", retry=policy)
        )
        with anyio.fail_after(30):
            result = await _run_killing_the_worker(t, listener)
    assert result.result("victim") == Ok("survived")
    assert result.lineage_for("victim").attempts == 2
    assert counter.read_text() == "xx"


async def _run_killing_the_worker(t: Tapestry, listener: anyio.abc.SocketListener) -> RunResult:
    """Run ``t``, SIGKILLing the worker of the first knot that reports its pid."""
    results: list[RunResult] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_reporting_worker, listener)
        results.append(await t.run())
    return results[0]


async def test_large_values_travel_by_reference(tmp_path: Path) -> None:
    store_url = (tmp_path / "values").as_uri()
    dispatcher = RayDispatcher(options=RemoteOptions(data_store_url=store_url))
    n = 200_000  # 1.6 MB of float64: over the 1 MiB by-reference threshold
    async with Tapestry(dispatcher=dispatcher) as t:
        array_total(values=big_array(n=n, _config=KnotConfig(id="big")), _config=KnotConfig(id="t"))
        with anyio.fail_after(30):
            result = await t.run()
    np.testing.assert_array_equal(result.outputs["big"], np.arange(n, dtype=np.float64))
    assert result.outputs["t"] == n * (n - 1) / 2
    output_hash = result.lineage_for("big").output_hash
    assert output_hash is not None
    # Nothing but the dispatcher writes to this store: the array went through it.
    async with data_store_from_url(store_url) as store:
        assert await store.contains(output_hash)


async def test_knots_run_with_a_fractional_cpu_request() -> None:
    dispatcher = RayDispatcher(num_cpus=0.5)
    async with Tapestry(dispatcher=dispatcher) as t:
        add(a=1, b=1, _config=KnotConfig(id="half"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["half"] == 2


async def test_unopened_or_closed_dispatcher_refuses_work() -> None:
    dispatcher = RayDispatcher()
    call = KnotCall(RunId("r"), KnotId("k"), target=max, kwargs={}, is_async=False)
    with pytest.raises(ClosedResourceError, match="is not open"):
        await dispatcher.run(call)
    async with dispatcher:
        pass
    with pytest.raises(ClosedResourceError, match="was closed"):
        await dispatcher.run(call)
    with pytest.raises(ClosedResourceError, match="was closed"):
        await dispatcher.__aenter__()


_OWN_RAY = """
import sys

import anyio
import ray
from _dispatch_knots import add

from pirn_like import KnotConfig, Tapestry
from pirn_like.dispatchers._ray import RayDispatcher


async def main() -> None:
    init = {"num_cpus": 1, "include_dashboard": False, "log_to_driver": False,
            "object_store_memory": 80 * 1024 * 1024, "_temp_dir": sys.argv[1]}
    async with Tapestry(dispatcher=RayDispatcher(init_kwargs=init)) as t:
        add(a=1, b=2, _config=KnotConfig(id="sum"))
        result = await t.run()
        print("running", ray.is_initialized(), result.outputs["sum"])
    print("closed", ray.is_initialized())


anyio.run(main)
"""


async def test_dispatcher_starts_and_shuts_down_its_own_ray() -> None:
    """Without a Ray in the process, opening starts one and closing shuts it down."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_TESTS, env.get("PYTHONPATH")) if p)
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths live under it
    try:
        with anyio.fail_after(60):
            done = await anyio.run_process(
                [sys.executable, "-c", _OWN_RAY, temp_dir], env=env, check=False
            )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode().splitlines()[-2:] == ["running True 3", "closed False"]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_at_open() -> None:
    with pytest.raises(RuntimeError, match="needs asyncio"):
        async with RayDispatcher():
            pass
