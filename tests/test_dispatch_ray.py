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
from _dispatch_checks import (
    assert_remote_value_error,
    check_killed_worker_is_retried,
    check_knots_run_remotely,
    check_large_values_travel_by_reference,
    check_refuses_work_unopened_or_closed,
    check_retry_policy_retries,
    check_timeout_kills_the_knot,
    run_failing_knots,
    run_killing_the_worker,
)
from _dispatch_knots import (
    accept_reporter,
    add,
    listening,
    report_then_mark,
)

from pirn_like import (
    Err,
    KnotConfig,
    RunRequest,
    RunStatus,
    Tapestry,
)
from pirn_like.dispatchers._ray import RayDispatcher
from pirn_like.dispatchers._remote import RemoteOptions

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.xdist_group("ray"),
    pytest.mark.usefixtures("ray_cluster"),
]
_TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture
def anyio_backend() -> str:
    """Ray's ObjectRefs are awaited on an asyncio loop."""
    return "asyncio"


async def test_knots_run_on_ray_workers_and_lineage_names_the_dispatcher() -> None:
    await check_knots_run_remotely(RayDispatcher(), "RayDispatcher")
    # The dispatcher found Ray running, so closing it leaves Ray to its owner.
    assert ray.is_initialized()


async def test_knot_failure_comes_back_with_remote_type_message_and_traceback() -> None:
    result = await run_failing_knots(RayDispatcher(), unimportable=False)
    assert isinstance(result.result("boom"), Err)
    (record,) = result.exceptions
    assert_remote_value_error(record)
    assert "_dispatch_knots.py" in record.traceback
    assert result.lineage_for("boom").dispatcher == "RayDispatcher"


async def test_retry_policy_retries_a_remote_knot(tmp_path: Path) -> None:
    await check_retry_policy_retries(RayDispatcher(), tmp_path)  # Ray itself retries nothing


async def test_timeout_kills_the_remote_knot(tmp_path: Path) -> None:
    # Long enough for a fresh worker to start and import the knot under load.
    await check_timeout_kills_the_knot(RayDispatcher(), tmp_path, timeout=5)


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
    record = await run_killing_the_worker(RayDispatcher(), tmp_path)
    assert "running knot 'victim'" in record.message
    assert "died: WorkerCrashedError" in record.message


async def test_killed_worker_is_retried_per_policy(tmp_path: Path) -> None:
    await check_killed_worker_is_retried(RayDispatcher(), tmp_path)


async def test_large_values_travel_by_reference(tmp_path: Path) -> None:
    def make(store_url: str) -> RayDispatcher:
        return RayDispatcher(options=RemoteOptions(data_store_url=store_url))

    n = 200_000  # 1.6 MB of float64
    result = await check_large_values_travel_by_reference(make, tmp_path, n)
    np.testing.assert_array_equal(result.outputs["values"], np.arange(n, dtype=np.float64))


async def test_knots_run_with_a_fractional_cpu_request() -> None:
    dispatcher = RayDispatcher(num_cpus=0.5)
    async with Tapestry(dispatcher=dispatcher) as t:
        add(a=1, b=1, _config=KnotConfig(id="half"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["half"] == 2


async def test_unopened_or_closed_dispatcher_refuses_work() -> None:
    await check_refuses_work_unopened_or_closed(RayDispatcher())


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
