"""run_forever: deliveries become recorded runs, settled only once recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from _list_trigger import ListTrigger

from pirn_like import (
    InMemoryDataStore,
    KnotConfig,
    Parameter,
    RunRequest,
    RunStatus,
    Tapestry,
    knot,
)
from pirn_like.triggers import run_forever

pytestmark = pytest.mark.anyio

calls: Counter[int] = Counter()
gates: dict[int, anyio.Event] = {}
started: list[int] = []
waiters: list[anyio.Event] = []


@knot
async def work(x: int) -> int:
    calls[x] += 1
    started.append(x)
    for waiter in waiters:
        waiter.set()
    if x in gates:
        await gates[x].wait()
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * 10


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    gates.clear()
    started.clear()
    waiters.clear()


def _tapestry() -> Tapestry:
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        work(x=Parameter("x", int), _config=KnotConfig(id="work"))
    return t


def _requests(*xs: int) -> list[RunRequest]:
    return [RunRequest(parameters={"x": x}, run_id=f"run-{x}") for x in xs]


async def _wait_started(n: int) -> None:
    with anyio.fail_after(10):
        while len(started) < n:
            waiters.append(event := anyio.Event())
            await event.wait()
            waiters.remove(event)


async def _let_others_run(turns: int) -> None:
    for _ in range(turns):
        await anyio.lowlevel.checkpoint()


async def test_every_delivery_runs_and_is_settled_after_it_is_recorded() -> None:
    t = _tapestry()
    trigger = ListTrigger(_requests(1, 2, 3, -4), history=t.history)
    with anyio.fail_after(10):
        await run_forever(trigger, t, handle_signals=False)
    assert sorted(o.run_id for o in trigger.settled) == ["run--4", "run-1", "run-2", "run-3"]
    statuses = {o.run_id: o.status for o in trigger.settled}
    assert statuses["run-1"] is RunStatus.SUCCEEDED
    assert statuses["run--4"] is RunStatus.FAILED
    assert all(s is not RunStatus.RUNNING and s is not None for s in trigger.recorded_at_settle)
    failed = next(o for o in trigger.settled if o.run_id == "run--4")
    assert failed.errors == ["builtins.ValueError: negative: -4"]
    assert trigger.released == []
    assert trigger.entered
    assert trigger.exited


async def test_runs_record_their_trigger() -> None:
    t = _tapestry()
    request = RunRequest(parameters={"x": 1}, trigger={"source": "orders", "message_id": "7"})
    trigger = ListTrigger([request, *_requests(2)], kind="test-kind")
    async with t:
        await run_forever(trigger, t, handle_signals=False)
        records = {r.run_id: r for r in await t.history.list_runs()}
    by_x = {o.result.outputs["work"]: o for o in trigger.settled if o.result}
    first = records[by_x[10].run_id]
    assert first.trigger == {"kind": "test-kind", "source": "orders", "message_id": "7"}
    assert records["run-2"].trigger == {"kind": "test-kind"}


async def test_a_redelivered_request_whose_run_is_recorded_does_not_run_again() -> None:
    t = _tapestry()
    trigger = ListTrigger(_requests(1, 1, 2, 1), history=t.history)
    await run_forever(trigger, t, handle_signals=False, max_concurrent_runs=1)
    assert calls == Counter({1: 1, 2: 1})
    assert [o.duplicate for o in trigger.settled] == [False, True, False, True]
    assert all(o.status is RunStatus.SUCCEEDED for o in trigger.settled)


async def test_concurrent_deliveries_of_one_run_id_run_it_once() -> None:
    t = _tapestry()
    gates[5] = anyio.Event()
    trigger = ListTrigger(_requests(5, 5, 5))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_forever(trigger, t, handle_signals=False))
        with anyio.fail_after(10):
            await trigger.wait_for(lambda: trigger.pulled == 3)  # all taken while one runs
            await _let_others_run(20)
            assert trigger.settled == []  # copies wait for the run: nothing settled early
            gates[5].set()
            await trigger.wait_until(3)
    assert calls[5] == 1
    assert [o.duplicate for o in trigger.settled] == [False, True, True]
    assert {o.status for o in trigger.settled} == {RunStatus.SUCCEEDED}


async def test_a_request_that_cannot_run_is_settled_with_the_reason() -> None:
    t = _tapestry()
    trigger = ListTrigger([RunRequest(parameters={"y": 1}, run_id="bad")])
    await run_forever(trigger, t, handle_signals=False)
    (outcome,) = trigger.settled
    assert outcome.status is None
    assert not outcome.succeeded
    assert outcome.error is not None
    assert outcome.error.startswith("ParameterError:")
    assert "'x'" in outcome.error
    assert calls == Counter()


async def test_a_full_service_stops_pulling() -> None:
    t = _tapestry()
    for x in (1, 2, 3, 4):
        gates[x] = anyio.Event()
    trigger = ListTrigger(_requests(1, 2, 3, 4))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_forever(trigger, t, handle_signals=False, max_concurrent_runs=2))
        await _wait_started(2)
        await _let_others_run(50)  # every chance to pull more than it may
        assert trigger.pulled == 2
        gates[started[0]].set()
        await _wait_started(3)
        assert trigger.pulled == 3
        for gate in gates.values():
            gate.set()
    assert len(trigger.settled) == 4


async def test_stop_lets_runs_in_flight_finish_within_the_grace_period() -> None:
    t = _tapestry()
    gates[1] = anyio.Event()
    trigger = ListTrigger(_requests(1, 2), hold=True)
    stop = anyio.Event()

    async def finish_after_stop() -> None:
        await _wait_started(2)
        stop.set()
        await _let_others_run(10)
        gates[1].set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(finish_after_stop)
        with anyio.fail_after(10):
            await run_forever(trigger, t, handle_signals=False, stop=stop, grace_period=30)
    assert sorted(o.run_id for o in trigger.settled) == ["run-1", "run-2"]
    assert trigger.released == []


async def test_runs_still_going_after_the_grace_period_are_cancelled_and_released() -> None:
    t = _tapestry()
    gates[1] = anyio.Event()
    trigger = ListTrigger(_requests(1, 2), hold=True)
    stop = anyio.Event()

    async def stop_when_started() -> None:
        await _wait_started(2)
        stop.set()

    async with t:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_when_started)
            with anyio.fail_after(10):
                await run_forever(trigger, t, handle_signals=False, stop=stop, grace_period=0)
        assert [o.run_id for o in trigger.settled] == ["run-2"]
        assert [r.run_id for r in trigger.released] == ["run-1"]
        interrupted = await t.history.get_run("run-1")
        assert interrupted is not None
        assert interrupted.status is RunStatus.CANCELLED

        # Redelivered after a restart: the interrupted run is resumed under its id.
        gates.clear()
        again = ListTrigger(_requests(1))
        await run_forever(again, t, handle_signals=False)
        (outcome,) = again.settled
        assert (outcome.run_id, outcome.status, outcome.duplicate) == (
            "run-1",
            RunStatus.SUCCEEDED,
            False,
        )
        assert outcome.result is not None
        assert outcome.result.outputs["work"] == 10


async def test_several_triggers_feed_one_service() -> None:
    t = _tapestry()
    first, second = ListTrigger(_requests(1, 2), kind="a"), ListTrigger(_requests(3), kind="b")
    seen: list[str] = []

    async def on_outcome(outcome: object) -> None:
        seen.append(getattr(outcome, "run_id", ""))

    await run_forever([first, second], t, handle_signals=False, on_outcome=on_outcome)
    assert sorted(seen) == ["run-1", "run-2", "run-3"]
    assert calls == Counter({1: 1, 2: 1, 3: 1})


async def test_run_forever_opens_the_tapestry_and_leaves_it_open() -> None:
    t = _tapestry()
    await run_forever(ListTrigger(_requests(1)), t, handle_signals=False)
    assert t.is_open
    assert (await t.run(RunRequest(parameters={"x": 2}))).outputs["work"] == 20
    await t.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_concurrent_runs": 0}, "max_concurrent_runs must be at least 1"),
        ({"grace_period": -1}, "grace_period must not be negative"),
    ],
)
async def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await run_forever(ListTrigger([]), _tapestry(), **kwargs)  # type: ignore[arg-type]


async def test_no_trigger_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one trigger"):
        await run_forever([], _tapestry())


CHILD = """
import sys
import anyio
sys.path.insert(0, {tests!r})
from _list_trigger import ListTrigger
from pirn_like import KnotConfig, Parameter, RunRequest, Tapestry, knot
from pirn_like.triggers import run_forever

release = anyio.Event()

@knot
async def slow(x: int) -> int:
    print("started", flush=True)
    await anyio.sleep(0.2)  # the work a SIGTERM must let finish
    return x

async def main() -> None:
    t = Tapestry()
    with t:
        slow(x=Parameter("x", int), _config=KnotConfig(id="slow"))
    trigger = ListTrigger([RunRequest(parameters={{"x": 1}}, run_id="r")], hold=True)
    await run_forever(trigger, t, grace_period=30)
    print("settled", [o.status.value for o in trigger.settled], flush=True)
    print("released", len(trigger.released), flush=True)

anyio.run(main)
"""


def test_sigterm_stops_intake_and_lets_the_run_in_flight_finish(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent)))
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "settled ['succeeded']" in out
    assert "released 0" in out
