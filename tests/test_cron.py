"""CronTrigger on a ManualClock: cadence, cron expressions, time zones and DST, missed
fires, backpressure, leases and run_forever. No test waits for real time to pass."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import anyio
import anyio.lowlevel
import pytest

from pirn_like import (
    ClosedResourceError,
    KnotConfig,
    Parameter,
    RunOutcome,
    RunStatus,
    Tapestry,
    knot,
)
from pirn_like.protocols import Delivery
from pirn_like.triggers import (
    CronTrigger,
    Lease,
    ManualClock,
    MissedFires,
    SystemClock,
    lease_from_url,
    run_forever,
)

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 1, 1, 0, 0, 10, tzinfo=UTC)
DEADLINE = 10.0
ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiosqlite


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def at(hhmm: str, day: str = "2025-01-01") -> datetime:
    return utc(f"{day}T{hhmm}:00+00:00")


def scheduled(delivery: Delivery) -> datetime:
    assert delivery.request.trigger is not None
    return utc(delivery.request.trigger["scheduled_at"])


@asynccontextmanager
async def following(clock: ManualClock) -> AsyncIterator[None]:
    """While the block runs, move the clock to each moment a task sleeps until."""
    async with anyio.create_task_group() as tg:

        async def follow() -> None:
            while True:
                clock.advance_to(await clock.wait_for_sleeper())
                await anyio.lowlevel.checkpoint()

        tg.start_soon(follow)
        yield
        tg.cancel_scope.cancel()


async def take(trigger: CronTrigger, clock: ManualClock, count: int) -> list[Delivery]:
    """The next ``count`` deliveries of an open trigger, each settled, the clock moved
    to each fire time as the trigger waits for it."""
    found: list[Delivery] = []
    deliveries = trigger.deliveries()
    try:
        with anyio.fail_after(DEADLINE):
            async with following(clock):
                for _ in range(count):
                    delivery = await anext(deliveries)
                    run_id = delivery.request.run_id or ""
                    await delivery.settle(RunOutcome(run_id, RunStatus.SUCCEEDED))
                    found.append(delivery)
    finally:
        await deliveries.aclose()  # type: ignore[attr-defined]
    return found


async def fire_times(trigger: CronTrigger, clock: ManualClock, count: int) -> list[datetime]:
    async with trigger:
        return [scheduled(d) for d in await take(trigger, clock, count)]


# -- schedules ------------------------------------------------------------------------


async def test_every_seconds_fires_at_multiples_of_the_period_since_the_epoch() -> None:
    clock = ManualClock(T0)
    trigger = CronTrigger(every_seconds=300, clock=clock)
    assert await fire_times(trigger, clock, 3) == [at("00:05"), at("00:10"), at("00:15")]
    assert trigger.name == "every 300s"


async def test_a_fire_carries_a_deterministic_run_id_and_what_triggered_it() -> None:
    clock = ManualClock(T0)
    async with CronTrigger(every_seconds=300, clock=clock, name="report") as trigger:
        (delivery,) = await take(trigger, clock, 1)
    request = delivery.request
    expected = hashlib.sha256(b"report\n2025-01-01T00:05:00+00:00").hexdigest()[:32]
    assert request.run_id == f"cron-{expected}"
    assert request.trigger == {
        "kind": "cron",
        "source": "report",
        "scheduled_at": "2025-01-01T00:05:00+00:00",
        "fired_at": "2025-01-01T00:05:00+00:00",
    }
    # Another process (another trigger) with the same name gives the fire the same id;
    # another name, another id.
    again = ManualClock(T0)
    async with CronTrigger(every_seconds=300, clock=again, name="report") as twin:
        assert (await take(twin, again, 1))[0].request.run_id == request.run_id
    other = ManualClock(T0)
    async with CronTrigger(every_seconds=300, clock=other, name="other") as different:
        assert (await take(different, other, 1))[0].request.run_id != request.run_id


async def test_parameters_are_a_mapping_or_a_function_of_the_local_scheduled_time() -> None:
    clock = ManualClock("2025-01-03T12:00:00+00:00")
    fixed = CronTrigger("0 9 * * *", timezone="Europe/Paris", clock=clock, parameters={"n": 1})
    async with fixed:
        assert (await take(fixed, clock, 1))[0].request.parameters == {"n": 1}

    def parameters(when: datetime) -> dict[str, Any]:
        return {"day": when.date().isoformat(), "hour": when.hour}

    clock = ManualClock("2025-01-03T12:00:00+00:00")
    computed = CronTrigger("0 9 * * *", timezone="Europe/Paris", clock=clock, parameters=parameters)
    async with computed:
        (delivery,) = await take(computed, clock, 1)
    assert delivery.request.parameters == {"day": "2025-01-04", "hour": 9}


@pytest.mark.parametrize(
    ("expression", "zone", "start", "expected"),
    [
        # Weekdays at 09:00 in Paris: 08:00 UTC in winter, 07:00 UTC in summer.
        (
            "0 9 * * MON-FRI",
            "Europe/Paris",
            "2025-03-28T10:00:00+01:00",
            ["2025-03-31T07:00Z", "2025-04-01T07:00Z"],
        ),
        (
            "0 9 * * MON-FRI",
            "Europe/Paris",
            "2025-01-03T08:30:00+01:00",
            ["2025-01-03T08:00Z", "2025-01-06T08:00Z"],
        ),
        ("@daily", "UTC", "2025-01-01T00:00:10+00:00", ["2025-01-02T00:00Z", "2025-01-03T00:00Z"]),
        # Six fields: seconds first.
        (
            "*/20 * * * * *",
            "UTC",
            "2025-01-01T00:00:10+00:00",
            ["2025-01-01T00:00:20Z", "2025-01-01T00:00:40Z"],
        ),
    ],
)
async def test_cron_expressions_fire_in_their_time_zone(
    expression: str, zone: str, start: str, expected: list[str]
) -> None:
    clock = ManualClock(start)
    trigger = CronTrigger(expression, timezone=zone, clock=clock)
    assert await fire_times(trigger, clock, len(expected)) == [utc(e) for e in expected]


@pytest.mark.parametrize(
    ("expression", "zone", "start", "expected"),
    [
        # Spring forward in Paris (2025-03-30, 02:00 -> 03:00): 02:30 does not exist
        # that day, so the fire is at the first minute after the gap, 03:00 CEST.
        (
            "30 2 * * *",
            "Europe/Paris",
            "2025-03-29T00:00:00+01:00",
            ["2025-03-29T02:30+01:00", "2025-03-30T03:00+02:00", "2025-03-31T02:30+02:00"],
        ),
        # Fall back in Paris (2025-10-26, 03:00 -> 02:00): 02:30 happens twice; the
        # fire runs once, at the first.
        (
            "30 2 * * *",
            "Europe/Paris",
            "2025-10-25T00:00:00+02:00",
            ["2025-10-25T02:30+02:00", "2025-10-26T02:30+02:00", "2025-10-27T02:30+01:00"],
        ),
        # Expressions without a fixed hour follow real time: the gap's local times
        # never happen, the overlap's happen twice.
        (
            "*/30 * * * *",
            "Europe/Paris",
            "2025-03-30T01:10:00+01:00",
            ["2025-03-30T01:30+01:00", "2025-03-30T03:00+02:00", "2025-03-30T03:30+02:00"],
        ),
        (
            "*/30 * * * *",
            "Europe/Paris",
            "2025-10-26T01:50:00+02:00",
            [
                "2025-10-26T02:00+02:00",
                "2025-10-26T02:30+02:00",
                "2025-10-26T02:00+01:00",
                "2025-10-26T02:30+01:00",
                "2025-10-26T03:00+01:00",
            ],
        ),
        # New York springs forward at 02:00 (2025-03-09): a 02:00 job runs at 03:00 EDT.
        (
            "0 2 * * *",
            "America/New_York",
            "2025-03-08T12:00:00-05:00",
            ["2025-03-09T03:00-04:00", "2025-03-10T02:00-04:00"],
        ),
    ],
    ids=["paris-gap", "paris-overlap", "real-time-gap", "real-time-overlap", "new-york-gap"],
)
async def test_daylight_saving_changes_follow_cronsim(
    expression: str, zone: str, start: str, expected: list[str]
) -> None:
    clock = ManualClock(start)
    trigger = CronTrigger(expression, timezone=zone, clock=clock)
    assert await fire_times(trigger, clock, len(expected)) == [utc(e) for e in expected]


# -- running under run_forever ----------------------------------------------------------

CATCH_UP_FIRES = [at("00:05"), at("00:10"), at("00:15"), at("00:20")]


@dataclass
class Service:
    """run_forever serving a trigger; ``outcomes`` in the order runs ended."""

    tapestry: Tapestry
    outcomes: list[RunOutcome] = field(default_factory=list)
    ended: anyio.Event = field(default_factory=anyio.Event)

    async def record(self, outcome: RunOutcome) -> None:
        self.outcomes.append(outcome)
        self.ended.set()
        self.ended = anyio.Event()

    async def wait_for_outcomes(self, count: int) -> None:
        with anyio.fail_after(DEADLINE):
            while len(self.outcomes) < count:
                await self.ended.wait()

    async def scheduled_times(self) -> list[datetime]:
        times: list[datetime] = []
        for outcome in self.outcomes:
            run = await self.tapestry.history.get_run(outcome.run_id)
            assert run is not None
            assert run.trigger is not None
            times.append(utc(run.trigger["scheduled_at"]))
        return times


@asynccontextmanager
async def serving(
    trigger: CronTrigger, *, gate: anyio.Event | None = None
) -> AsyncIterator[Service]:
    """run_forever with one run at a time; a run for 00:05 waits for ``gate``."""

    @knot
    async def work(at: str) -> str:
        if gate is not None and at == "2025-01-01T00:05:00+00:00":
            await gate.wait()
        return at

    tapestry = Tapestry()
    with tapestry:
        work(at=Parameter("at", str), _config=KnotConfig(id="work"))
    service = Service(tapestry)
    stop = anyio.Event()
    async with tapestry, anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: run_forever(
                trigger,
                tapestry,
                max_concurrent_runs=1,
                handle_signals=False,
                stop=stop,
                on_outcome=service.record,
            )
        )
        yield service
        stop.set()


def at_parameter(when: datetime) -> dict[str, str]:
    return {"at": when.isoformat()}


async def test_run_forever_records_each_fire_with_its_trigger() -> None:
    clock = ManualClock(T0)
    trigger = CronTrigger(every_seconds=300, clock=clock, parameters=at_parameter)
    async with serving(trigger) as service, following(clock):
        await service.wait_for_outcomes(3)
    # The clock moved on while the service stopped: a fourth run may have started.
    assert [o.status for o in service.outcomes[:3]] == [RunStatus.SUCCEEDED] * 3
    assert (await service.scheduled_times())[:3] == [at("00:05"), at("00:10"), at("00:15")]
    run = await service.tapestry.history.get_run(service.outcomes[0].run_id)
    assert run is not None
    assert run.trigger == {
        "kind": "cron",
        "source": "every 300s",
        "scheduled_at": "2025-01-01T00:05:00+00:00",
        "fired_at": "2025-01-01T00:05:00+00:00",
    }


@pytest.mark.parametrize(
    ("policy", "after_the_busy_run"),
    [
        (MissedFires.CATCH_UP, [at("00:10"), at("00:15"), at("00:20")]),
        (MissedFires.RUN_ONCE, [at("00:20")]),
        (MissedFires.SKIP, []),
    ],
)
async def test_a_busy_service_does_not_queue_fires_the_policy_decides(
    policy: MissedFires, after_the_busy_run: list[datetime]
) -> None:
    clock = ManualClock(T0)
    gate = anyio.Event()
    trigger = CronTrigger(
        every_seconds=300, clock=clock, parameters=at_parameter, missed_fires=policy
    )
    async with serving(trigger, gate=gate) as service:
        with anyio.fail_after(DEADLINE):
            clock.advance_to(await clock.wait_for_sleeper())  # 00:05: the run holds the slot
            # Full: the trigger is not asked for more, so nothing waits on the clock
            # (it is checked here and again after moving the clock).
            while clock.now() < at("00:22"):
                await anyio.wait_all_tasks_blocked()
                assert clock.sleepers == ()
                clock.advance(60)
            gate.set()
            # The trigger catches up (or not), then waits for the next fire to come.
            assert await clock.wait_for_sleeper() == at("00:25")
        assert await service.scheduled_times() == [at("00:05"), *after_the_busy_run]
        fired = [o.result.run_id for o in service.outcomes[1:] if o.result is not None]
        for run_id in fired:
            run = await service.tapestry.history.get_run(run_id)
            assert run is not None
            assert run.trigger is not None
            assert utc(run.trigger["fired_at"]) == at("00:22")  # late, and says so
        clock.advance_to(at("00:25"))
        await service.wait_for_outcomes(len(after_the_busy_run) + 2)
        assert (await service.scheduled_times())[-1] == at("00:25")


async def test_without_a_lease_a_restarted_trigger_starts_from_now() -> None:
    clock = ManualClock(T0)
    first = CronTrigger(every_seconds=300, clock=clock, missed_fires=MissedFires.CATCH_UP)
    assert await fire_times(first, clock, 1) == [at("00:05")]
    clock.advance(3600)  # down for an hour: nobody remembers the last fire
    second = CronTrigger(every_seconds=300, clock=clock, missed_fires=MissedFires.CATCH_UP)
    assert await fire_times(second, clock, 1) == [at("01:10")]


# -- with a lease -----------------------------------------------------------------------


@ASYNCIO_ONLY
@pytest.mark.parametrize(
    ("policy", "after_the_downtime"),
    [
        (MissedFires.CATCH_UP, [at("00:10") + timedelta(minutes=5 * i) for i in range(13)]),
        (MissedFires.RUN_ONCE, [at("01:05"), at("01:10")]),
        (MissedFires.SKIP, [at("01:10")]),
    ],
)
async def test_the_lease_store_remembers_the_last_fire_across_a_downtime(
    tmp_path: Path, policy: MissedFires, after_the_downtime: list[datetime]
) -> None:
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    clock = ManualClock(T0)
    before = CronTrigger(every_seconds=300, clock=clock, lease=url, missed_fires=policy)
    assert await fire_times(before, clock, 1) == [at("00:05")]
    clock.advance_to(at("01:07"))  # down for an hour: fires 00:10 to 01:05 missed
    after = CronTrigger(every_seconds=300, clock=clock, lease=url, missed_fires=policy)
    async with after:
        deliveries = await take(after, clock, len(after_the_downtime))
    assert [scheduled(d) for d in deliveries] == after_the_downtime
    fired = {scheduled(d): d.request.trigger and d.request.trigger["fired_at"] for d in deliveries}
    assert fired[at("01:10")] == at("01:10").isoformat()
    assert {when for t, when in fired.items() if t < at("01:07")} <= {at("01:07").isoformat()}


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_valkey_lease_keeps_the_last_fire_on_trio(valkey_url: str) -> None:
    name = f"cron-{uuid.uuid4().hex}"
    clock = ManualClock(T0)
    before = CronTrigger(every_seconds=300, clock=clock, lease=lease_from_url(valkey_url, name))
    assert await fire_times(before, clock, 2) == [at("00:05"), at("00:10")]
    clock.advance_to(at("00:31"))
    after = CronTrigger(
        every_seconds=300,
        clock=clock,
        lease=lease_from_url(valkey_url, name),
        missed_fires=MissedFires.CATCH_UP,
    )
    assert await fire_times(after, clock, 3) == [at("00:15"), at("00:20"), at("00:25")]


@dataclass
class SwitchableLease:
    """A real lease that can be made to lose its term on demand (as when the store
    becomes unreachable)."""

    lease: Lease
    available: bool = True

    @property
    def name(self) -> str:
        return self.lease.name

    @property
    def holder(self) -> str:
        return self.lease.holder

    @property
    def ttl(self) -> float:
        return self.lease.ttl

    @property
    def token(self) -> int | None:
        return self.lease.token

    async def acquire(self) -> bool:
        return self.available and await self.lease.acquire()

    async def renew(self) -> bool:
        return self.available and await self.lease.renew()

    async def release(self) -> None:
        await self.lease.release()

    async def leader(self) -> str | None:
        return await self.lease.leader()

    async def read_value(self) -> str | None:
        return await self.lease.read_value()

    async def write_value(self, value: str) -> bool:
        return self.available and await self.lease.write_value(value)

    async def __aenter__(self) -> Self:
        await self.lease.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.lease.__aexit__(*exc_info)


async def wait_for(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    with anyio.fail_after(DEADLINE):
        while True:
            found = condition()
            if found if isinstance(found, bool) else await found:
                return
            await anyio.sleep(0.01)


@ASYNCIO_ONLY
async def test_a_trigger_that_loses_its_lease_stops_firing_until_it_leads_again(
    tmp_path: Path,
) -> None:
    lease = SwitchableLease(lease_from_url(f"sqlite:///{tmp_path / 'l.db'}", "cron", ttl=0.9))
    clock = ManualClock(T0)
    trigger = CronTrigger(every_seconds=300, clock=clock, lease=lease)
    async with trigger:
        assert [scheduled(d) for d in await take(trigger, clock, 1)] == [at("00:05")]
        deliveries = trigger.deliveries()
        async with anyio.create_task_group() as tg:
            got: list[Delivery] = []

            async def next_delivery() -> None:
                got.append(await anext(deliveries))

            tg.start_soon(next_delivery)
            assert await clock.wait_for_sleeper() == at("00:10")
            lease.available = False
            # The next renewal fails: the trigger stops waiting to fire 00:10.
            await wait_for(lambda: clock.sleepers == ())
            clock.advance_to(at("00:12"))
            await anyio.wait_all_tasks_blocked()
            assert got == []
            lease.available = True  # leads again; 00:10 was missed meanwhile
            await wait_for(lambda: bool(got))
        await deliveries.aclose()  # type: ignore[attr-defined]
    assert scheduled(got[0]) == at("00:10")
    assert got[0].request.trigger is not None
    assert got[0].request.trigger["fired_at"] == at("00:12").isoformat()


@ASYNCIO_ONLY
async def test_only_the_leader_fires_and_its_successor_carries_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    clock = ManualClock(T0)
    first = CronTrigger(every_seconds=300, clock=clock, lease=lease_from_url(url, "c", ttl=1.5))
    second = CronTrigger(every_seconds=300, clock=clock, lease=lease_from_url(url, "c", ttl=1.5))
    by_first: list[datetime] = []
    led, stop_first = anyio.Event(), anyio.Event()
    got: list[Delivery] = []

    async def lead_then_stop() -> None:
        async with first:
            by_first.extend(scheduled(d) for d in await take(first, clock, 2))
            led.set()
            await stop_first.wait()
        # Leaving the block saved the last fire and released the lease.

    async with anyio.create_task_group() as tg:
        tg.start_soon(lead_then_stop)
        with anyio.fail_after(DEADLINE):
            await led.wait()
        async with second:
            assert second.lease is not None
            assert first.lease is not None
            assert await second.lease.leader() == first.lease.holder
            waiting = second.deliveries()

            async def next_delivery() -> None:
                got.append(await anext(waiting))

            tg.start_soon(next_delivery)
            await anyio.wait_all_tasks_blocked()
            assert clock.sleepers == ()  # the standby does not even wait for a fire
            stop_first.set()
            # The standby takes over and carries on after the leader's last fire.
            with anyio.fail_after(DEADLINE):
                assert await clock.wait_for_sleeper() == at("00:15")
            clock.advance_to(at("00:15"))
            await wait_for(lambda: bool(got))
            await waiting.aclose()  # type: ignore[attr-defined]
    assert by_first == [at("00:05"), at("00:10")]
    assert [scheduled(d) for d in got] == [at("00:15")]


# -- clocks, lifecycle and bad input ----------------------------------------------------


async def test_manual_clock_moves_only_forward_and_wakes_sleepers_in_order() -> None:
    clock = ManualClock(T0)
    woke: list[str] = []
    async with anyio.create_task_group() as tg:

        async def sleeper(name: str, moment: datetime) -> None:
            await clock.sleep_until(moment)
            woke.append(name)

        tg.start_soon(sleeper, "late", at("00:10"))
        tg.start_soon(sleeper, "early", at("00:05"))
        with anyio.fail_after(DEADLINE):
            while len(clock.sleepers) < 2:
                await clock.wait_for_sleeper()
                await anyio.lowlevel.checkpoint()
        assert clock.sleepers == (at("00:05"), at("00:10"))
        clock.advance_to(at("00:07"))
        assert clock.sleepers == (at("00:10"),)
        await anyio.wait_all_tasks_blocked()
        assert woke == ["early"]
        clock.advance(timedelta(minutes=3))
    assert woke == ["early", "late"]
    await clock.sleep_until(at("00:00"))  # a moment past returns at once
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance_to(T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2025, 1, 1))


async def test_system_clock_is_aware_and_returns_at_once_for_a_past_moment() -> None:
    clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is not None
    with anyio.fail_after(DEADLINE):
        await clock.sleep_until(now - timedelta(seconds=1))


async def test_a_trigger_delivers_only_while_open() -> None:
    trigger = CronTrigger(every_seconds=60, clock=ManualClock(T0))
    with pytest.raises(ClosedResourceError, match="is not open"):
        trigger.deliveries()
    async with trigger:
        pass
    with pytest.raises(ClosedResourceError, match="was closed"):
        trigger.deliveries()
    with pytest.raises(ClosedResourceError, match="opened before"):
        await trigger.__aenter__()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({}, ValueError, "exactly one of cron="),
        ({"cron": "* * * * *", "every_seconds": 60}, ValueError, "exactly one of cron="),
        ({"every_seconds": 0}, ValueError, "every_seconds must be a positive number"),
        ({"every_seconds": True}, ValueError, "every_seconds must be a positive number"),
        ({"cron": "61 * * * *"}, ValueError, "'61 \\* \\* \\* \\*' is not a valid cron"),
        ({"cron": "* * *"}, ValueError, "is not a valid cron expression"),
        ({"cron": " "}, ValueError, "non-empty cron expression"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, ValueError, "unknown time zone"),
        ({"every_seconds": 60, "timezone": "Europe/Paris"}, ValueError, "only applies to cron"),
        ({"every_seconds": 60, "name": " "}, ValueError, "must not be blank"),
        ({"every_seconds": 60, "missed_fires": "skip"}, TypeError, "must be a MissedFires"),
        ({"every_seconds": 60, "parameters": [1]}, TypeError, "parameters must be a mapping"),
        ({"every_seconds": 60, "lease": "mysql://db/x"}, ValueError, "no lease store for URL"),
    ],
)
def test_bad_arguments_are_refused_naming_the_problem(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        CronTrigger(**arguments)


async def test_a_failing_parameters_function_names_the_trigger_and_the_fire() -> None:
    def broken(when: datetime) -> dict[str, Any]:
        raise KeyError("no such report")

    clock = ManualClock(T0)
    async with CronTrigger(every_seconds=300, clock=clock, parameters=broken) as trigger:
        clock.advance_to(at("00:05"))  # due at once: no task needed to move the clock
        with pytest.raises(KeyError) as raised:
            await anext(trigger.deliveries())
    assert "CronTrigger('every 300s')" in "\n".join(raised.value.__notes__)
    assert "2025-01-01T00:05:00+00:00" in "\n".join(raised.value.__notes__)
