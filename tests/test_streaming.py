"""run_stream and StreamingSourceTrigger: one recorded run per item, acknowledged after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Self

import anyio
import anyio.lowlevel
import pytest

from pirn_like import (
    InMemoryDataStore,
    KnotConfig,
    Parameter,
    RunOutcome,
    RunResult,
    RunStatus,
    Tapestry,
    knot,
)
from pirn_like.streaming import IterableSource, StreamingSourceTrigger, run_stream
from pirn_like.triggers import run_forever

pytestmark = pytest.mark.anyio


@dataclass
class Board:
    """What the knot did, and a way to hold chosen items back until told."""

    gates: dict[int, anyio.Event] = field(default_factory=dict[int, anyio.Event])
    finished: list[int] = field(default_factory=list[int])
    changed: anyio.Event = field(default_factory=anyio.Event)

    def touch(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(10):
            while not condition():
                await self.changed.wait()


board = Board()


@knot
async def square(x: int) -> int:
    if x in board.gates:
        await board.gates[x].wait()
    board.finished.append(x)
    board.touch()
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x


@pytest.fixture(autouse=True)
def _fresh_board() -> None:
    global board
    board = Board()


def _tapestry() -> Tapestry:
    t = Tapestry(data_store=InMemoryDataStore())
    with t:
        square(x=Parameter("x", int), _config=KnotConfig(id="square"))
    return t


@dataclass(frozen=True)
class TrackedItem:
    value: object
    position: str
    source: TrackedSource

    async def ack(self) -> None:
        self.source.acked.append(self.value)
        board.touch()


@dataclass
class TrackedSource:
    """A source that counts what was pulled and acknowledged; ``hold`` keeps it open."""

    values: list[object]
    parameter_name: str = "x"
    kind: str = "tracked"
    redelivers: bool = False
    origin: str = "the-list"
    hold: bool = False
    pulled: int = 0
    acked: list[object] = field(default_factory=list[object])

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def items(self) -> AsyncIterator[TrackedItem]:
        for index, value in enumerate(self.values):
            self.pulled += 1
            board.touch()
            yield TrackedItem(value, f"at-{index}", self)
        if self.hold:
            await anyio.sleep_forever()


async def test_seed_example_runs_each_item_and_returns_when_the_iterable_ends() -> None:
    tapestry = _tapestry()
    seen: list[int] = []

    async def handle(result: RunResult) -> None:
        seen.append(result.outputs["square"])

    source = IterableSource([1, 2, 3], parameter_name="x")
    summary = await run_stream(source, tapestry, on_result=handle)
    assert seen == [1, 4, 9]
    assert (summary.items, summary.succeeded, summary.failed) == (3, 3, 0)
    source = IterableSource([1, 2, 3], parameter_name="x")
    await run_stream(source, tapestry)  # the tapestry stays usable
    runs = await tapestry.history.list_runs()
    assert len(runs) == 6  # an iterable cannot redeliver: fresh run ids, runs again
    triggers = sorted(r.trigger["position"] for r in runs if r.trigger)
    assert triggers == ["0", "0", "1", "1", "2", "2"]
    assert runs[0].trigger == {"kind": "iterable", "source": "list", "position": "2"}
    await tapestry.aclose()


async def test_async_iterables_and_sync_handlers_work_too() -> None:
    async def numbers() -> AsyncIterator[int]:
        for n in (4, 5):
            yield n

    seen: list[int] = []
    await run_stream(
        IterableSource(numbers(), parameter_name="x"),
        _tapestry(),
        on_result=lambda r: seen.append(r.outputs["square"]),
    )
    assert seen == [16, 25]


async def test_a_failing_run_does_not_stop_the_stream_and_is_seen() -> None:
    tapestry = _tapestry()
    seen: list[tuple[RunStatus, int | None]] = []
    summary = await run_stream(
        IterableSource([1, -2, "not a number", 3], parameter_name="x"),
        tapestry,
        on_result=lambda r: seen.append((r.status, r.outputs.get("square"))),
    )
    assert seen == [
        (RunStatus.SUCCEEDED, 1),
        (RunStatus.FAILED, None),
        (RunStatus.SUCCEEDED, 9),
    ]
    assert (summary.items, summary.succeeded, summary.failed, summary.refused) == (4, 2, 1, 1)
    statuses = sorted(r.status for r in await tapestry.history.list_runs())
    assert statuses == [RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]


async def _stream_with_first_item_last(*, ordered: bool) -> tuple[list[int], TrackedSource]:
    """Three items in flight; items 1 and 2 end while item 0 is held back."""
    board.gates[0] = anyio.Event()
    source = TrackedSource([0, 1, 2])
    seen: list[int] = []

    async def hold_first_until_the_others_ended() -> None:
        await board.wait_for(lambda: sorted(board.finished) == [1, 2])
        if ordered:  # nothing may be reported or acknowledged before item 0
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            assert (seen, source.acked) == ([], [])
        else:  # each as it ends
            await board.wait_for(lambda: sorted(source.acked) == [1, 2])
            assert sorted(seen) == [1, 4]
        board.gates[0].set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold_first_until_the_others_ended)
        with anyio.fail_after(10):
            await run_stream(
                source,
                _tapestry(),
                on_result=lambda r: seen.append(r.outputs["square"]),
                max_in_flight=3,
                ordered=ordered,
            )
    return seen, source


async def test_ordered_mode_reports_and_acknowledges_in_source_order() -> None:
    seen, source = await _stream_with_first_item_last(ordered=True)
    assert board.finished[-1] == 0
    assert seen == [0, 1, 4]
    assert source.acked == [0, 1, 2]


async def test_unordered_mode_reports_and_acknowledges_as_runs_end() -> None:
    seen, source = await _stream_with_first_item_last(ordered=False)
    assert seen[-1] == 0
    assert source.acked[-1] == 0


async def test_at_most_max_in_flight_items_are_taken_from_the_source() -> None:
    for x in (1, 2, 3):
        board.gates[x] = anyio.Event()
    source = TrackedSource([1, 2, 3, 4])

    async def check_then_release() -> None:
        await board.wait_for(lambda: source.pulled == 2)
        for _ in range(50):  # every chance to pull more than it may
            await anyio.lowlevel.checkpoint()
        assert source.pulled == 2
        board.gates[1].set()
        await board.wait_for(lambda: source.pulled == 3)
        for gate in board.gates.values():
            gate.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(check_then_release)
        summary = await run_stream(source, _tapestry(), max_in_flight=2)
    assert summary.succeeded == 4


async def test_stop_ends_an_endless_stream_and_leaves_unfinished_items_unacknowledged() -> None:
    board.gates[1] = anyio.Event()  # item 1 never ends by itself
    source = TrackedSource([0, 1, 2], hold=True)
    stop = anyio.Event()

    async def stop_when_2_ended() -> None:
        await board.wait_for(lambda: sorted(board.finished) == [0, 2])
        stop.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_2_ended)
        with anyio.fail_after(10):
            summary = await run_stream(
                source, _tapestry(), max_in_flight=3, stop=stop, grace_period=0
            )
    # Item 1 was cancelled; item 2 ended but comes after it, so neither is acknowledged.
    assert source.acked == [0]
    assert summary.succeeded == 2


async def test_a_redelivering_source_gets_run_ids_from_its_positions() -> None:
    tapestry = _tapestry()
    seen: list[str] = []
    async with tapestry:
        first = await run_stream(TrackedSource([1, 2], redelivers=True), tapestry)
        again = TrackedSource([1, 2, 3], redelivers=True)  # a restart: 1 and 2 come again
        second = await run_stream(again, tapestry, on_result=lambda r: seen.append(r.run_id))
        runs = await tapestry.history.list_runs()
    assert (first.succeeded, second.succeeded, second.duplicates) == (2, 1, 2)
    assert again.acked == [1, 2, 3]  # duplicates are acknowledged: their runs are recorded
    assert board.finished == [1, 2, 3]
    assert len(seen) == 1
    assert seen[0].startswith("tracked-")
    assert sorted(r.run_id for r in runs)[0].startswith("tracked-")
    assert len(runs) == 3


async def test_an_on_result_that_raises_stops_the_stream_and_is_raised() -> None:
    source = TrackedSource([1, 2, 3])

    def handle(result: RunResult) -> None:
        if result.outputs["square"] == 4:
            raise RuntimeError("downstream is full")

    with anyio.fail_after(10), pytest.raises(RuntimeError, match="downstream is full"):
        await run_stream(source, _tapestry(), on_result=handle)
    assert source.acked == [1]  # the item whose handler failed stays unacknowledged


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_in_flight": 0}, ValueError, "max_in_flight must be at least 1, not 0"),
        ({"on_result": 3}, TypeError, "on_result must be a callable"),
    ],
)
async def test_bad_arguments_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await run_stream(IterableSource([], parameter_name="x"), _tapestry(), **kwargs)  # type: ignore[arg-type]


def test_iterable_source_refuses_what_it_cannot_iterate() -> None:
    with pytest.raises(TypeError, match="needs an iterable or async iterable, got int"):
        IterableSource(3, parameter_name="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="parameter_name"):
        IterableSource([1], parameter_name="")


async def test_streaming_source_trigger_serves_a_source_to_run_forever() -> None:
    tapestry = _tapestry()
    source = TrackedSource([2, 3], redelivers=True)
    outcomes: list[RunOutcome] = []
    trigger = StreamingSourceTrigger(source)
    assert trigger.kind == "tracked"
    async with tapestry:
        await run_forever(trigger, tapestry, handle_signals=False, on_outcome=outcomes.append)
        records = [await tapestry.history.get_run(o.run_id) for o in outcomes]
    assert [o.status for o in outcomes] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    assert source.acked == [2, 3]
    assert [r.trigger if r else None for r in records] == [
        {"kind": "tracked", "source": "the-list", "position": "at-0"},
        {"kind": "tracked", "source": "the-list", "position": "at-1"},
    ]
