"""Emitters never slow or fail a run: raising, hanging and overflowing emitters."""

from __future__ import annotations

import logging
from typing import Self

import anyio
import pytest

from pirn_like import (
    KnotConfig,
    KnotFinished,
    MemoryEmitter,
    Parameter,
    RunEvent,
    RunFinished,
    RunRequest,
    RunStarted,
    Tapestry,
    knot,
)

pytestmark = pytest.mark.anyio


@knot
async def double(x: int) -> int:
    return x * 2


class Recording(MemoryEmitter):
    """A MemoryEmitter that says when it has seen ``runs`` RunFinished events."""

    def __init__(self, runs: int = 1) -> None:
        super().__init__()
        self.runs = runs
        self.all_finished = anyio.Event()

    async def emit(self, event: RunEvent) -> None:
        await super().emit(event)
        if sum(isinstance(e, RunFinished) for e in self.events) == self.runs:
            self.all_finished.set()


class Raises:
    def __init__(self) -> None:
        self.calls = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: RunEvent) -> None:
        self.calls += 1
        raise RuntimeError("observability backend is down")


class Blocks:
    """Blocks in ``emit`` until ``release`` is set; counts the events it was handed."""

    def __init__(self, queue_size: int | None = None) -> None:
        self.release = anyio.Event()
        self.blocked = anyio.Event()
        self.received: list[RunEvent] = []
        if queue_size is not None:
            self.queue_size = queue_size

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def emit(self, event: RunEvent) -> None:
        self.received.append(event)
        self.blocked.set()
        await self.release.wait()


def chain() -> Tapestry:
    t = Tapestry()
    with t:
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        double(x=d, _config=KnotConfig(id="dd"))
    return t


def build(emitters: list[object], **options: int) -> Tapestry:
    with Tapestry(emitters=emitters, **options) as t:  # type: ignore[arg-type]
        x = Parameter("x", int)
        d = double(x=x, _config=KnotConfig(id="d"))
        double(x=d, _config=KnotConfig(id="dd"))
    return t


EVENTS_PER_RUN = 8  # RunStarted, 3 x (KnotStarted, KnotFinished), RunFinished


async def test_a_raising_and_a_hanging_emitter_leave_runs_and_other_emitters_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raises, hangs, memory = Raises(), Blocks(), Recording(runs=3)
    t = build([raises, hangs, memory])
    async with t:
        with anyio.fail_after(10):
            results = [await t.run(RunRequest(parameters={"x": n})) for n in range(3)]
            # Every run returned while the hanging emitter is still stuck in its first event.
            await hangs.blocked.wait()
            assert not hangs.release.is_set()
            assert len(hangs.received) == 1
            await memory.all_finished.wait()
        assert [r.outputs["dd"] for r in results] == [0, 4, 8]
        assert all(r.succeeded for r in results)
        assert len(memory.events) == 3 * EVENTS_PER_RUN
        for result in results:
            mine = [e for e in memory.events if _run_of(e) == result.run_id]
            assert isinstance(mine[0], RunStarted)
            assert isinstance(mine[-1], RunFinished)
            assert len(mine) == EVENTS_PER_RUN
        assert raises.calls == 3 * EVENTS_PER_RUN  # kept getting every event
        stats = {s.name: s for s in t.emitter_stats()}
        assert stats["Raises"].failed == 3 * EVENTS_PER_RUN
        assert stats["Recording"].delivered == 3 * EVENTS_PER_RUN
        assert stats["Blocks"].queued == 3 * EVENTS_PER_RUN - 1
        hangs.release.set()
        with anyio.fail_after(10):
            assert await t.flush_emitters()
        assert len(hangs.received) == 3 * EVENTS_PER_RUN
    # One log record per burst of failures, not one per event.
    failures = [r for r in caplog.records if "Raises failed" in r.getMessage()]
    assert len(failures) == 1
    assert "observability backend is down" in caplog.text


async def test_an_emitter_hanging_past_its_timeout_is_abandoned_per_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hangs, memory = Blocks(), Recording()
    hangs.emit_timeout = 0.01  # type: ignore[attr-defined]
    t = build([hangs, memory])
    result = await t.run(RunRequest(parameters={"x": 1}))
    assert result.succeeded
    with anyio.fail_after(10):
        assert await t.flush_emitters()
    assert len(hangs.received) == EVENTS_PER_RUN  # each event abandoned, the next handed on
    (stats,) = [s for s in t.emitter_stats() if s.name == "Blocks"]
    assert stats.timed_out == EVENTS_PER_RUN
    assert stats.delivered == 0
    assert len(memory.events) == EVENTS_PER_RUN
    assert "Blocks took over 0.01s on RunStarted" in caplog.text
    await t.aclose()


async def test_a_full_queue_drops_the_newest_events_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "pirn_like.engine")
    blocked, memory = Blocks(queue_size=5), Recording(runs=2)
    t = build([blocked, memory])
    async with t:
        with anyio.fail_after(10):
            await t.run(RunRequest(parameters={"x": 1}))
            await blocked.blocked.wait()  # holding the first event: 5 more fit in its queue
            await t.run(RunRequest(parameters={"x": 2}))
            await memory.all_finished.wait()
        (stats,) = [s for s in t.emitter_stats() if s.name == "Blocks"]
        assert stats.capacity == 5
        assert stats.queued == 5
        assert stats.dropped == 2 * EVENTS_PER_RUN - 6
        assert len(memory.events) == 2 * EVENTS_PER_RUN  # its own queue had room
        blocked.release.set()
        with anyio.fail_after(10):
            assert await t.flush_emitters()
    assert len(blocked.received) == 6  # the one it held, and the 5 its queue kept
    # The oldest events are kept, the newest dropped: the first run's start comes first.
    assert isinstance(blocked.received[0], RunStarted)
    warnings = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(warnings) == 1  # one warning per burst of drops


async def test_closing_cancels_an_emitter_that_does_not_drain_in_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pirn_like.engine._emit as emit_module

    monkeypatch.setattr(emit_module, "CLOSE_TIMEOUT", 0.01)
    hangs, memory = Blocks(), Recording()
    t = build([hangs, memory])
    async with t:
        await t.run(RunRequest(parameters={"x": 1}))
        with anyio.fail_after(10):
            await memory.all_finished.wait()
    # The tapestry closed although the emitter never returned; what it never got is counted.
    assert not hangs.release.is_set()
    (stats,) = [s for s in t.emitter_stats() if s.name == "Blocks"]
    assert stats.dropped == EVENTS_PER_RUN - 1
    assert "did not get 7 events before the tapestry closed" in caplog.text


async def test_without_emitters_nothing_is_queued() -> None:
    t = chain()
    result = await t.run(RunRequest(parameters={"x": 1}))
    assert result.succeeded
    assert t.emitter_stats() == ()
    assert await t.flush_emitters()


async def test_a_bad_queue_size_is_refused() -> None:
    with pytest.raises(ValueError, match="emitter_queue_size must be a positive number"):
        Tapestry(emitter_queue_size=0)
    t = build([Blocks(queue_size=-1)])
    with pytest.raises(ValueError, match=r"Blocks\.queue_size must be a positive number"):
        await t.open()


def _run_of(event: RunEvent) -> str:
    match event:
        case RunStarted(run=record):
            return record.run_id
        case KnotFinished(lineage=lineage):
            return lineage.run_id
        case RunFinished(result=result):
            return result.run_id
        case _:
            return event.run_id
