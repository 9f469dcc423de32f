"""Test flows every remote dispatcher's module runs with its own dispatcher.

Each check builds a small tapestry on the dispatcher it is given, runs it under a
deadline and asserts what every remote dispatcher promises; a module adds the
assertions particular to its dispatcher on the result or record a check returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
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
    report_then_mark,
    run_alongside,
)

from pirn_like import (
    ClosedResourceError,
    Err,
    ExceptionRecord,
    KnotConfig,
    KnotId,
    Ok,
    Result,
    RetryPolicy,
    RunId,
    RunResult,
    Tapestry,
    WorkerLostError,
    data_store_from_url,
)
from pirn_like.protocols import Dispatcher, KnotCall

_NO_RETRY_DELAY = {"initial_delay": 0, "jitter": 0}


async def check_knots_run_remotely(dispatcher: Dispatcher, name: str) -> None:
    """A sync and an async knot run off this process; lineage names ``name``."""
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
    assert {rec.dispatcher for rec in result.lineage} == {name} == {dispatcher.name}


async def run_failing_knots(dispatcher: Dispatcher, *, unimportable: bool) -> RunResult:
    """Run ``boom`` (a ValueError) and, if ``unimportable``, ``odd`` (an exception class
    that exists only inside the knot's call)."""
    async with Tapestry(dispatcher=dispatcher) as t:
        fail_with(message="bad row 7", _config=KnotConfig(id="boom"))
        if unimportable:
            fail_unimportable(message="odd one", _config=KnotConfig(id="odd"))
        with anyio.fail_after(30):
            return await t.run()


def assert_remote_value_error(record: ExceptionRecord) -> None:
    """``boom``'s failure kept its type, message and the worker's traceback."""
    assert record.type == "builtins.ValueError"
    assert record.message == "bad row 7"
    assert "remote traceback (worker " in record.traceback
    assert "raise ValueError(message)" in record.traceback


def assert_local_only_error(odd: Result) -> ExceptionRecord:
    """``odd``'s failure names the local class it was raised as."""
    assert isinstance(odd, Err)
    assert odd.record.type == "_dispatch_knots.plain_fail_unimportable.<locals>.LocalOnlyError"
    assert "raise LocalOnlyError(message)" in odd.record.traceback
    return odd.record


async def check_retry_policy_retries(dispatcher: Dispatcher, tmp_path: Path) -> None:
    """A knot failing twice succeeds on its third attempt: the engine retried, and the
    attempt file shows the dispatcher added no retries of its own."""
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=3, retry_on=(ConnectionError,), **_NO_RETRY_DELAY)
    async with Tapestry(dispatcher=dispatcher) as t:
        flaky(counter=str(counter), failures=2, _config=KnotConfig(id="flaky", retry=policy))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["flaky"] == 3
    assert result.lineage_for("flaky").attempts == 3
    assert counter.read_text() == "xxx"


async def check_timeout_kills_the_knot(
    dispatcher: Dispatcher, tmp_path: Path, *, timeout: float
) -> None:
    """A knot past its ``timeout`` fails, and its worker goes long before it would end."""
    marker = tmp_path / "finished"
    async with listening() as (port, listener), Tapestry(dispatcher=dispatcher) as t:
        report_then_mark(
            port=port,
            seconds=20,
            marker=str(marker),
            _config=KnotConfig(id="slow", timeout=timeout),
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


async def run_killing_the_worker(
    dispatcher: Dispatcher, tmp_path: Path, *, deadline: float = 30
) -> ExceptionRecord:
    """The WorkerLostError of a knot whose worker is SIGKILLed while it runs."""
    async with listening() as (port, listener), Tapestry(dispatcher=dispatcher) as t:
        die_on_first_attempt(
            port=port, counter=str(tmp_path / "attempts"), _config=KnotConfig(id="victim")
        )
        with anyio.fail_after(deadline):
            result = await run_alongside(t, partial(kill_reporting_worker, listener))
    failure = result.result("victim")
    assert isinstance(failure, Err)
    assert failure.record.type == "pirn_like.WorkerLostError"
    return failure.record


async def check_killed_worker_is_retried(
    dispatcher: Dispatcher, tmp_path: Path, *, deadline: float = 30
) -> None:
    """A knot whose worker is SIGKILLed succeeds on the retry its policy allows."""
    counter = tmp_path / "attempts"
    policy = RetryPolicy(attempts=2, retry_on=(WorkerLostError,), **_NO_RETRY_DELAY)
    async with listening() as (port, listener), Tapestry(dispatcher=dispatcher) as t:
        die_on_first_attempt(
            port=port, counter=str(counter), _config=KnotConfig(id="victim", retry=policy)
        )
        with anyio.fail_after(deadline):
            result = await run_alongside(t, partial(kill_reporting_worker, listener))
    assert result.result("victim") == Ok("survived")
    assert result.lineage_for("victim").attempts == 2
    assert counter.read_text() == "xx"


async def check_large_values_travel_by_reference(
    make: Callable[[str], Dispatcher], tmp_path: Path, n: int
) -> RunResult:
    """``n`` float64s (over the 1 MiB by-reference threshold) go worker -> caller ->
    worker through the store at the URL ``make`` is given, filed under their hash."""
    store_url = (tmp_path / "values").as_uri()
    async with Tapestry(dispatcher=make(store_url)) as t:
        values = big_array(n=n, _config=KnotConfig(id="values"))
        array_total(values=values, _config=KnotConfig(id="total"))
        with anyio.fail_after(30):
            result = await t.run()
    assert result.outputs["total"] == n * (n - 1) / 2
    output_hash = result.lineage_for("values").output_hash
    assert output_hash is not None
    # Nothing but the dispatcher and its workers write to this store.
    async with data_store_from_url(store_url) as store:
        assert await store.contains(output_hash)
    return result


async def check_refuses_work_unopened_or_closed(dispatcher: Dispatcher) -> None:
    """Running before open or after close, or reopening, raises ClosedResourceError."""
    call = KnotCall(RunId("r"), KnotId("k"), target=max, kwargs={}, is_async=False)
    with pytest.raises(ClosedResourceError, match="is not open"):
        await dispatcher.run(call)
    async with dispatcher:
        pass
    with pytest.raises(ClosedResourceError, match="was closed"):
        await dispatcher.run(call)
    with pytest.raises(ClosedResourceError, match="was closed"):
        await dispatcher.__aenter__()
